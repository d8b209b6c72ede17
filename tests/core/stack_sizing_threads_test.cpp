// Learned size classes and sub-page slab stacks under a work-stealing Pool:
// tasks spawned, measured and released on both workers at once, moving
// between them while they run. Runs under TSan (label "threads").
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"

namespace {

TEST(StackSizingThreads, LearnedTasksOnAPoolLearnAndMoveBetweenWorkers) {
  heddle::Pool pool(2);
  std::atomic<int> done{0};
  std::vector<heddle::Task<int>> tasks;
  const auto body = [&done](int i) {
    int sum = 0;
    for (int round = 0; round < 10; ++round) {
      heddle::this_task::yield();  // may come back on the other worker
      sum += i;
    }
    done.fetch_add(1);
    return sum;
  };
  // In waves: a task spawned from outside the Pool starts on a worker
  // later, so the first wave must finish (and be measured) before later
  // spawns can use what it taught.
  constexpr int kWaves = 3, kWave = 100;
  std::size_t learned_stacks = 0;
  for (int wave = 0; wave < kWaves; ++wave) {
    for (int i = 0; i < kWave; ++i) {
      tasks.push_back(pool.spawn([i, &body] { return body(i); }, {.stack_policy = heddle::StackPolicy::learned}));
    }
    for (int i = 0; i < kWave; ++i) {
      heddle::Task<int>& task = tasks[static_cast<std::size_t>(wave * kWave + i)];
      if (task.stack().size < heddle::StackPool::default_pool().options().stack_bytes) ++learned_stacks;
      EXPECT_EQ(task.join(), 10 * i);
    }
  }
  EXPECT_EQ(done.load(), kWaves * kWave);
  EXPECT_GT(learned_stacks, 0u) << "no task got a learned size class";
}

TEST(StackSizingThreads, SlabStacksAreSharedByTasksOnBothWorkers) {
  // Sized from a measured warm task of the same shape (sanitizer builds
  // have large frames): a sub-page slab stack wherever that fits.
  heddle::Pool pool(2);
  // What a task of this shape uses on this Pool (tasks on a Pool also run
  // the scheduler's and other tasks' switch work), measured on painted
  // stacks once warm, and twice that for the slab stacks.
  std::size_t used = 0;
  for (int i = 0; i < 8; ++i) {
    auto sample = pool.spawn([] { for (int round = 0; round < 5; ++round) heddle::this_task::yield(); },
                             {.paint = true});
    while (!sample.finished()) std::this_thread::yield();
    used = std::max(used, sample.stack_high_water().bytes);
    sample.join();
  }
  heddle::StackPool slabs({.stack_bytes = (2 * used + heddle::kCanaryBytes + 1024 + 63) / 64 * 64, .bounded = true});
  std::atomic<int> done{0};
  std::vector<heddle::Task<int>> tasks;
  for (int i = 0; i < 200; ++i) {
    tasks.push_back(pool.spawn(
        [i, &done] {
          for (int round = 0; round < 5; ++round) heddle::this_task::yield();
          done.fetch_add(1);
          return i;
        },
        {.pool = &slabs}));
  }
  for (int i = 0; i < 200; ++i) EXPECT_EQ(tasks[i].join(), i);
  EXPECT_EQ(done.load(), 200);
  EXPECT_EQ(slabs.stats().live, 0u);
}

}  // namespace
