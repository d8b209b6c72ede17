// Scale: a million spawn+join cycles leak nothing; 200,000 tasks parked at once.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "heddle/arch/sanitizer.hpp"
#include "heddle/heddle.hpp"
#include "resident_memory.hpp"

namespace {

using heddle::Resumer;

TEST(Scale, MillionSpawnJoinCyclesLeakNoStacks) {
  heddle::StackPool pool(heddle::StackPool::Options{.stack_bytes = 16 * 1024});
  heddle::SpawnOptions options{.pool = &pool};
  long sum = 0;
  for (int i = 0; i < 1'000'000; ++i) sum += heddle::spawn([i] { return i & 1; }, options).join();
  EXPECT_EQ(sum, 500'000);
  const auto stats = pool.stats();
  EXPECT_EQ(stats.live, 0u);
  EXPECT_EQ(stats.idle, 1u) << "a warm pool reuses one stack for sequential tasks";
  EXPECT_EQ(stats.guarded_created + stats.canary_created, 1u);
}

TEST(Scale, MillionSpawnParkResumeJoinCycles) {
  heddle::StackPool pool(heddle::StackPool::Options{.stack_bytes = 16 * 1024});
  heddle::SpawnOptions options{.pool = &pool};
  Resumer parked;
  for (int i = 0; i < 1'000'000; ++i) {
    auto task = heddle::spawn([&] { heddle::suspend([&](const Resumer& r) { parked = r; }); }, options);
    ASSERT_TRUE(parked.resume());
    task.join();
  }
  EXPECT_EQ(pool.stats().live, 0u);
}

TEST(Scale, TwoHundredThousandTasksParkedAtOnce) {
  // More stacks than the default vm.max_map_count allows guarded mappings
  // for: the pool must switch to canary stacks and keep going.
  constexpr int kTasks = 200'000;
  heddle::StackPool pool(heddle::StackPool::Options{.stack_bytes = 16 * 1024});
  heddle::SpawnOptions options{.pool = &pool};
  std::vector<Resumer> parked(kTasks);
  std::vector<heddle::Task<int>> tasks;
  tasks.reserve(kTasks);
  for (int i = 0; i < kTasks; ++i) {
    tasks.push_back(heddle::spawn(
        [&parked, i] {
          heddle::suspend([&](const Resumer& r) { parked[i] = r; });
          return 1;
        },
        options));
  }
  EXPECT_EQ(pool.stats().live, static_cast<std::size_t>(kTasks));
  for (auto& r : parked) ASSERT_TRUE(r.resume());
  long sum = 0;
  for (auto& t : tasks) sum += t.join();
  EXPECT_EQ(sum, kTasks);
  EXPECT_EQ(pool.stats().live, 0u);
}

using heddle::support::resident_kib;

TEST(Scale, ParkedTaskOnAPoolCanaryStackKeepsOnePage) {
  // A pool canary stack's zone is the end of its lower neighbour's top page
  // (StackPool::make_canary), so only each task's top page (its frames)
  // becomes resident, also where reading a never-written page allocates it
  // (kernels without the shared zero page: there, a zone on the stack's
  // own bottom page cost every parked task a second page).
#if HEDDLE_ASAN || HEDDLE_TSAN
  GTEST_SKIP() << "sanitizer shadow memory dominates resident memory; the check preset runs this";
#endif
  constexpr int kTasks = 20'000;
  heddle::StackPool pool(
      heddle::StackPool::Options{.stack_bytes = 64 * 1024, .guard = heddle::StackPool::Guard::never});
  std::vector<Resumer> parked(kTasks);
  std::vector<heddle::Task<void>> tasks;
  tasks.reserve(kTasks);
  const long before = resident_kib();
  for (int i = 0; i < kTasks; ++i) {
    tasks.push_back(heddle::spawn([&parked, i] { heddle::suspend([&](const Resumer& r) { parked[i] = r; }); },
                                  heddle::SpawnOptions{.pool = &pool}));
  }
  const double per_task = (resident_kib() - before) * 1024.0 / kTasks;
  EXPECT_LT(per_task, 6 * 1024.0) << "two pages per parked task: the canary page was written";
  for (auto& r : parked) ASSERT_TRUE(r.resume());
  for (auto& t : tasks) t.join();
}

}  // namespace
