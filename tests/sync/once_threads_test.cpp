// Once between threads and tasks: exactly one run among many racing
// callers, and retries after failures across threads.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/once.hpp"

namespace {

TEST(OnceThreads, ExactlyOneRunAmongThreadsAndTasks) {
  constexpr int kThreads = 4;
  constexpr int kTasksPerThread = 10;
  heddle::Once once;
  std::atomic<int> runs{0};
  long value = 0;  // written by the run, read by everyone after call_once
  std::atomic<int> wrong{0};
  auto call = [&] {
    once.call_once([&] {
      runs.fetch_add(1);
      std::this_thread::yield();
      value = 99;
    });
    if (value != 99) wrong.fetch_add(1);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::vector<heddle::Task<void>> tasks;
      for (int k = 0; k < kTasksPerThread; ++k) tasks.push_back(heddle::spawn(call));
      call();
      for (auto& task : tasks) task.join();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(wrong.load(), 0);
}

TEST(OnceThreads, FailuresAreRetriedUntilOneRunSucceeds) {
  constexpr int kThreads = 4;
  constexpr int kFailures = 5;
  heddle::Once once;
  std::atomic<int> attempts{0};
  std::atomic<int> successes{0};
  std::atomic<int> failures_seen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        try {
          once.call_once([&] {
            if (attempts.fetch_add(1) < kFailures) throw std::runtime_error("not yet");
            successes.fetch_add(1);
          });
          return;
        } catch (const std::runtime_error&) {
          failures_seen.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(successes.load(), 1);
  EXPECT_EQ(failures_seen.load(), kFailures);
  EXPECT_EQ(attempts.load(), kFailures + 1);
  EXPECT_TRUE(once.is_done());
}

}  // namespace
