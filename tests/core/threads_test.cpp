// Tasks and threads: resumes from other threads, early resumes racing the
// switch-out, a thread blocked in join. Runs under TSan (label "threads").
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"

namespace {

using heddle::Resumer;

TEST(Threads, ResumeFromAnotherThreadRunsTheTaskThere) {
  std::atomic<bool> published{false};
  Resumer parked;
  std::thread::id ran_on;
  auto task = heddle::spawn([&] {
    heddle::suspend([&](const Resumer& r) {
      parked = r;
      published.store(true, std::memory_order_release);
    });
    ran_on = std::this_thread::get_id();
    return 5;
  });
  std::thread other([&] {
    while (!published.load(std::memory_order_acquire)) std::this_thread::yield();
    EXPECT_TRUE(parked.resume());
  });
  other.join();
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_EQ(task.join(), 5);
}

TEST(Threads, ResumeRacingTheSwitchOutIsNeverLostOrDoubled) {
  // The hook publishes the Resumer while the task is still "parking"; the
  // other thread resumes as early as it can. Exactly one resume wins each
  // round, and the task always continues.
  constexpr int kRounds = 20000;
  std::atomic<const Resumer*> slot{nullptr};
  std::atomic<bool> done{false};
  std::atomic<int> wins{0};
  std::thread resumer([&] {
    while (!done.load(std::memory_order_acquire)) {
      const Resumer* r = slot.exchange(nullptr, std::memory_order_acq_rel);
      if (r && r->resume()) wins.fetch_add(1, std::memory_order_relaxed);
    }
  });
  int rounds = 0;
  auto task = heddle::spawn([&] {
    for (int i = 0; i < kRounds; ++i) {
      Resumer mine;
      heddle::suspend([&](const Resumer& r) {
        mine = r;
        slot.store(&mine, std::memory_order_release);
        for (int spin = 0; spin < (i % 64); ++spin) asm volatile("" ::: "memory");
      });
      ++rounds;
    }
  });
  while (!task.finished()) std::this_thread::yield();
  done.store(true, std::memory_order_release);
  resumer.join();
  task.join();
  EXPECT_EQ(rounds, kRounds);
  EXPECT_EQ(wins.load(), kRounds);
}

TEST(Threads, ThreadBlocksInJoinUntilAnotherThreadFinishesTheTask) {
  std::atomic<bool> published{false};
  Resumer parked;
  auto task = heddle::spawn([&] {
    heddle::suspend([&](const Resumer& r) {
      parked = r;
      published.store(true, std::memory_order_release);
    });
    return 9;
  });
  std::thread other([&] {
    while (!published.load(std::memory_order_acquire)) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    parked.resume();
  });
  EXPECT_EQ(task.join(), 9);  // blocks this thread on a futex meanwhile
  other.join();
}

TEST(Threads, CancelRacingResume) {
  constexpr int kRounds = 5000;
  for (int i = 0; i < kRounds; ++i) {
    std::atomic<bool> published{false};
    Resumer parked;
    int continued = 0;
    auto task = heddle::spawn([&] {
      heddle::suspend([&](const Resumer& r) {
        parked = r;
        published.store(true, std::memory_order_release);
      });
      ++continued;
    });
    std::thread other([&] {
      while (!published.load(std::memory_order_acquire)) {
      }
      parked.resume();
    });
    task.cancel();
    other.join();
    // Exactly one of the two won: either the task continued, or it unwound.
    bool cancelled = false;
    try {
      task.join();
    } catch (const heddle::Cancelled&) {
      cancelled = true;
    }
    ASSERT_NE(cancelled, continued == 1) << "round " << i;
  }
}

TEST(Threads, TasksSpawnedOnManyThreads) {
  std::vector<std::thread> threads;
  std::atomic<long> sum{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) sum.fetch_add(heddle::spawn([i] { return i; }).join());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(sum.load(), 4L * (19999L * 20000 / 2));
}

}  // namespace
