// CondVar between threads and tasks: every mix, timed waits on threads, and
// a bounded queue shared by producer and consumer threads and tasks.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/cond_var.hpp"
#include "heddle/sync/mutex.hpp"

namespace {

using namespace std::chrono_literals;

TEST(CondVarThreads, ThreadWaitsTaskNotifies) {
  heddle::Mutex mutex;
  heddle::CondVar condition;
  bool ready = false;
  std::thread waiter([&] {
    std::unique_lock lock(mutex);
    condition.wait(lock, [&] { return ready; });
    EXPECT_TRUE(mutex.held_by_caller());
  });
  while (condition.waiters() == 0) std::this_thread::yield();
  auto notifier = heddle::spawn([&] {
    std::lock_guard guard(mutex);
    ready = true;
    condition.notify_one();
  });
  waiter.join();
  notifier.join();
}

TEST(CondVarThreads, TaskWaitsThreadNotifies) {
  heddle::Mutex mutex;
  heddle::CondVar condition;
  bool ready = false;
  auto waiter = heddle::spawn([&] {
    std::unique_lock lock(mutex);
    condition.wait(lock, [&] { return ready; });
    return 7;
  });
  std::thread notifier([&] {
    std::lock_guard guard(mutex);
    ready = true;
    condition.notify_all();
  });
  notifier.join();
  EXPECT_EQ(waiter.join(), 7);
}

TEST(CondVarThreads, WaitUntilTimesOutHoldingTheMutexAndLeavesNoWaiter) {
  heddle::Mutex mutex;
  heddle::CondVar condition;
  std::unique_lock lock(mutex);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(condition.wait_until(lock, start + 20ms), std::cv_status::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  EXPECT_TRUE(mutex.held_by_caller());
  EXPECT_EQ(condition.waiters(), 0u);
  EXPECT_FALSE(condition.wait_for(lock, 5ms, [] { return false; }));
  EXPECT_TRUE(condition.wait_for(lock, 5ms, [] { return true; }));
}

TEST(CondVarThreads, WaitUntilReturnsNoTimeoutWhenNotified) {
  heddle::Mutex mutex;
  heddle::CondVar condition;
  bool ready = false;
  std::thread waiter([&] {
    std::unique_lock lock(mutex);
    EXPECT_TRUE(condition.wait_until(lock, std::chrono::steady_clock::now() + 10s, [&] { return ready; }));
  });
  while (condition.waiters() == 0) std::this_thread::yield();
  {
    std::lock_guard guard(mutex);
    ready = true;
  }
  condition.notify_one();
  waiter.join();
}

// Producers and consumers, threads and tasks spawned from them, over a
// bounded queue with two conditions: every item is consumed exactly once.
TEST(CondVarThreads, BoundedQueueBetweenThreadsAndTasks) {
  constexpr int kThreads = 4;
  constexpr int kTasksPerThread = 6;
  constexpr int kItemsPerProducer = 300;
  constexpr std::size_t kCapacity = 8;
  heddle::Mutex mutex;
  heddle::CondVar not_full, not_empty;
  std::deque<long> queue;
  long produced_sum = 0, consumed_sum = 0;
  long consumed_count = 0;
  const long total_items = long{kThreads} * (kTasksPerThread / 2 + 1) * kItemsPerProducer;
  // Consumers stop when every item is consumed.
  auto produce = [&](long base) {
    for (int i = 0; i < kItemsPerProducer; ++i) {
      std::unique_lock lock(mutex);
      not_full.wait(lock, [&] { return queue.size() < kCapacity; });
      queue.push_back(base + i);
      produced_sum += base + i;
      not_empty.notify_one();
    }
  };
  auto consume = [&] {
    for (;;) {
      std::unique_lock lock(mutex);
      not_empty.wait(lock, [&] { return !queue.empty() || consumed_count == total_items; });
      if (queue.empty()) return;
      consumed_sum += queue.front();
      queue.pop_front();
      if (++consumed_count == total_items) not_empty.notify_all();  // let the other consumers finish
      not_full.notify_one();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<heddle::Task<void>> tasks;
      for (int k = 0; k < kTasksPerThread; ++k) {
        if (k % 2 == 0) {
          tasks.push_back(heddle::spawn([&, t, k] { produce((t * 100 + k) * 1000L); }));
        } else {
          tasks.push_back(heddle::spawn(consume));
        }
      }
      if (t % 2 == 0) {
        produce((t * 100 + 99) * 1000L);
      } else {
        produce((t * 100 + 98) * 1000L);
        consume();
      }
      for (auto& task : tasks) task.join();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(consumed_count, total_items);
  EXPECT_EQ(consumed_sum, produced_sum);
  EXPECT_TRUE(queue.empty());
}

}  // namespace
