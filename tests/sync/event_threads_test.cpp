// Event between threads and tasks: every mix, and timed waits on threads.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/event.hpp"

namespace {

using namespace std::chrono_literals;

TEST(EventThreads, ThreadWaitsTaskSets) {
  heddle::Event event;
  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    event.wait();
    woke = true;
  });
  while (event.waiters() == 0) std::this_thread::yield();
  auto task = heddle::spawn([&] { event.set(); });
  waiter.join();
  EXPECT_TRUE(woke);
  task.join();
}

TEST(EventThreads, TaskWaitsThreadSets) {
  heddle::Event event;
  auto task = heddle::spawn([&] { event.wait(); return 5; });
  std::thread setter([&] { event.set(); });  // runs the task on the setter thread (no scheduler)
  setter.join();
  EXPECT_EQ(task.join(), 5);
}

TEST(EventThreads, ThreadTimedWaitTimesOutAndLeavesNoWaiter) {
  heddle::Event event;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(event.wait_until(start + 30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  EXPECT_EQ(event.waiters(), 0u);
}

TEST(EventThreads, AutoResetHandsEachSetToExactlyOneWaiter) {
  constexpr int kThreads = 4;
  constexpr int kSets = 2000;
  heddle::Event event(heddle::Event::Reset::automatic);
  std::atomic<int> taken{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      while (!done.load()) {
        if (event.wait_until(std::chrono::steady_clock::now() + 5ms)) taken.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < kSets; ++i) {
    while (event.is_set()) std::this_thread::yield();  // one set at a time
    event.set();
  }
  while (event.is_set()) std::this_thread::yield();
  done = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(taken.load(), kSets);
}

}  // namespace
