// SharedMutex between threads and tasks: consistency under mixed readers
// and writers, and a writer is not starved by overlapping readers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/shared_mutex.hpp"

namespace {

using namespace std::chrono_literals;

TEST(SharedMutexThreads, ReadersNeverSeeAHalfDoneWrite) {
  constexpr int kThreads = 4;
  constexpr int kTasksPerThread = 8;
  constexpr int kIterations = 300;
  heddle::SharedMutex mutex;
  long a = 0, b = 0;  // a writer keeps them equal
  std::atomic<long> torn{0};
  std::atomic<long> writes{0};
  auto work = [&](int seed) {
    for (int i = 0; i < kIterations; ++i) {
      if ((i + seed) % 4 == 0) {
        std::unique_lock lock(mutex);
        ++a;
        ++b;
        writes.fetch_add(1, std::memory_order_relaxed);
      } else {
        std::shared_lock lock(mutex);
        if (a != b) torn.fetch_add(1);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<heddle::Task<void>> tasks;
      for (int k = 0; k < kTasksPerThread; ++k) tasks.push_back(heddle::spawn([&, k] { work(t + k); }));
      work(t);
      for (auto& task : tasks) task.join();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(a, writes.load());
  EXPECT_EQ(b, writes.load());
  EXPECT_EQ(mutex.readers(), 0u);
}

// Readers overlap so that some reader always holds the mutex; a
// reader-preferring lock would keep the writer out for as long as they run.
TEST(SharedMutexThreads, OverlappingReadersDoNotStarveAWriter) {
  constexpr int kReaders = 3;
  heddle::SharedMutex mutex;
  std::atomic<bool> writer_done{false};
  std::atomic<bool> gave_up{false};
  std::atomic<int> reading{0};
  const auto give_up_at = std::chrono::steady_clock::now() + 5s;
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      while (!writer_done) {
        if (std::chrono::steady_clock::now() > give_up_at) {
          gave_up = true;
          return;
        }
        std::shared_lock lock(mutex);
        reading.fetch_add(1);
        std::this_thread::sleep_for(200us);
        reading.fetch_sub(1);
      }
    });
  }
  while (reading.load() == 0) std::this_thread::yield();
  std::thread writer([&] {
    std::unique_lock lock(mutex);
    EXPECT_EQ(reading.load(), 0);
    writer_done = true;
  });
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_TRUE(writer_done);
  EXPECT_FALSE(gave_up) << "the writer waited 5 s behind the readers";
}

}  // namespace
