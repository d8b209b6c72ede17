// Semaphore between threads and tasks: every mix, and exact permit
// accounting under contention.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/semaphore.hpp"

namespace {

TEST(SemaphoreThreads, ThreadWaitsTaskReleases) {
  heddle::Semaphore semaphore(0);
  std::thread waiter([&] { semaphore.acquire(); });
  while (semaphore.waiters() == 0) std::this_thread::yield();
  auto releaser = heddle::spawn([&] { semaphore.release(); });
  waiter.join();
  releaser.join();
  EXPECT_EQ(semaphore.available(), 0);
}

TEST(SemaphoreThreads, TaskWaitsThreadReleases) {
  heddle::Semaphore semaphore(0);
  auto waiter = heddle::spawn([&] {
    semaphore.acquire();
    return 3;
  });
  std::thread releaser([&] { semaphore.release(); });
  releaser.join();
  EXPECT_EQ(waiter.join(), 3);
}

TEST(SemaphoreThreads, ThreadsOnlyProducersAndConsumersBalance) {
  constexpr int kPairs = 3;
  constexpr int kItems = 5000;
  heddle::Semaphore semaphore(0);
  std::atomic<long> acquired{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kPairs; ++p) {
    threads.emplace_back([&] {
      for (int i = 0; i < kItems; ++i) semaphore.release();
    });
    threads.emplace_back([&] {
      for (int i = 0; i < kItems; ++i) {
        semaphore.acquire();
        acquired.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(acquired.load(), long{kPairs} * kItems);
  EXPECT_EQ(semaphore.available(), 0);
  EXPECT_EQ(semaphore.waiters(), 0u);
}

// At most `limit` holders at once, across threads and their tasks.
TEST(SemaphoreThreads, NeverMoreHoldersThanPermits) {
  constexpr int kLimit = 3;
  constexpr int kThreads = 4;
  constexpr int kTasksPerThread = 10;
  constexpr int kIterations = 200;
  heddle::Semaphore semaphore(kLimit, kLimit);
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  std::atomic<long> passes{0};
  auto work = [&] {
    for (int i = 0; i < kIterations; ++i) {
      semaphore.acquire();
      const int now = inside.fetch_add(1) + 1;
      int seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now)) {
      }
      passes.fetch_add(1);
      inside.fetch_sub(1);
      semaphore.release();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::vector<heddle::Task<void>> tasks;
      for (int k = 0; k < kTasksPerThread; ++k) tasks.push_back(heddle::spawn(work));
      work();
      for (auto& task : tasks) task.join();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), kLimit);
  EXPECT_EQ(passes.load(), long{kThreads} * (kTasksPerThread + 1) * kIterations);
  EXPECT_EQ(semaphore.available(), kLimit);
}

}  // namespace
