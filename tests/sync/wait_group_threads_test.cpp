// WaitGroup between threads and tasks: a thread waits for tasks, tasks wait
// for threads, and many rounds of reuse across threads.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/event.hpp"
#include "heddle/sync/wait_group.hpp"

namespace {

TEST(WaitGroupThreads, ThreadWaitsForTasksFinishedByAnotherThread) {
  constexpr int kTasks = 20;
  heddle::WaitGroup group;
  heddle::Event go;
  std::atomic<int> done{0};
  group.add(kTasks);
  std::vector<heddle::Task<void>> tasks;
  for (int i = 0; i < kTasks; ++i) {
    tasks.push_back(heddle::spawn([&] {
      go.wait();
      done.fetch_add(1);
      group.done();
    }));
  }
  std::thread waiter([&] {
    group.wait();
    EXPECT_EQ(done.load(), kTasks);
  });
  std::thread starter([&] { go.set(); });  // the tasks run on this thread
  starter.join();
  waiter.join();
  for (auto& t : tasks) t.join();
}

TEST(WaitGroupThreads, TasksWaitForThreads) {
  constexpr int kThreads = 4;
  constexpr int kWaiters = 10;
  heddle::WaitGroup group;
  group.add(kThreads);
  std::atomic<int> work{0};
  std::vector<heddle::Task<int>> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.push_back(heddle::spawn([&] {
      group.wait();
      return work.load();
    }));
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      work.fetch_add(1);
      group.done();
    });
  }
  for (auto& t : threads) t.join();
  for (auto& w : waiters) EXPECT_EQ(w.join(), kThreads);
}

TEST(WaitGroupThreads, ManyRoundsOfFanOutAndWait) {
  constexpr int kRounds = 200;
  constexpr int kWorkers = 3;
  heddle::WaitGroup group;
  std::atomic<long> total{0};
  for (int round = 0; round < kRounds; ++round) {
    group.add(kWorkers);
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w) {
      workers.emplace_back([&] {
        total.fetch_add(1);
        group.done();
      });
    }
    auto waiter = heddle::spawn([&] { group.wait(); });
    group.wait();
    EXPECT_EQ(total.load(), long{round + 1} * kWorkers);
    for (auto& t : workers) t.join();
    waiter.join();
  }
}

}  // namespace
