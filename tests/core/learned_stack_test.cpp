// StackPolicy::learned: size classes from the stack use measured per
// callable type (for a lambda, its spawn site).
#include <alloca.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "heddle/heddle.hpp"

namespace {

// Uses `bytes` of stack below this frame, and writes its lowest byte, so a
// painted stack's high-water mark sees all of it.
__attribute__((noinline)) void use_stack(std::size_t bytes) {
  auto* region = static_cast<volatile char*>(alloca(bytes));
  region[0] = 1;
  region[bytes - 1] = 1;
}

constexpr heddle::SpawnOptions kLearned{.stack_policy = heddle::StackPolicy::learned};

std::size_t default_stack_bytes() { return heddle::StackPool::default_pool().options().stack_bytes; }

TEST(LearnedStack, TheFirstTasksAreMeasuredOnDefaultStacksThenASizeClassIsUsed) {
  const auto body = [] { use_stack(4500); };
  std::size_t deepest = 0;
  for (std::uint32_t i = 0; i < heddle::detail::kLearnedSamples; ++i) {
    auto task = heddle::spawn(body, kLearned);
    EXPECT_EQ(task.stack().size, default_stack_bytes()) << "task " << i << " is still learning";
    EXPECT_TRUE(task.stack().painted) << "a learning task is measured to the byte";
    deepest = std::max(deepest, task.stack_high_water().bytes);
    task.join();
  }
  EXPECT_GE(deepest, 4500u);
  auto task = heddle::spawn(body, kLearned);
  const std::size_t class_bytes = heddle::detail::learned_class_bytes(deepest);
  EXPECT_EQ(task.stack().size, class_bytes);
  EXPECT_GE(class_bytes, deepest + deepest / 4) << "never below what was seen plus the margin";
  EXPECT_LE(class_bytes, 2 * (deepest + deepest / 4)) << "the smallest class that holds it";
  EXPECT_LT(class_bytes, default_stack_bytes());
  task.join();
}

TEST(LearnedStack, WhileLearningAtMostTheSampleCountIsMeasuredAtOnce) {
  // Tasks that stay parked: none comes back with a sample while the rest
  // are spawned, and a painted default stack is resident whole.
  heddle::Event release;
  const auto body = [&release] { release.wait(); };
  std::vector<heddle::Task<void>> tasks;
  for (int i = 0; i < 20; ++i) tasks.push_back(heddle::spawn(body, kLearned));
  std::size_t painted = 0;
  for (const auto& task : tasks) {
    EXPECT_EQ(task.stack().size, default_stack_bytes()) << "still learning: the default pool";
    painted += task.stack().painted ? 1 : 0;
  }
  EXPECT_EQ(painted, heddle::detail::kLearnedSamples);
  release.set();
  for (auto& task : tasks) task.join();
  // Their samples are in: the next one gets a size class.
  auto task = heddle::spawn(body, kLearned);  // the Event stays set: it finishes at once
  EXPECT_LT(task.stack().size, default_stack_bytes());
  task.join();
}

TEST(LearnedStack, ASmallTaskGetsAPageNeverLess) {
  const auto body = [] { use_stack(100); };
  std::size_t deepest = 0;
  for (std::uint32_t i = 0; i < heddle::detail::kLearnedSamples; ++i) {
    auto task = heddle::spawn(body, kLearned);
    deepest = std::max(deepest, task.stack_high_water().bytes);
    task.join();
  }
  auto task = heddle::spawn(body, kLearned);
  EXPECT_EQ(task.stack().size, heddle::detail::learned_class_bytes(deepest));
  EXPECT_GE(task.stack().size, 4096u);
  EXPECT_NE(task.stack().kind, heddle::StackKind::slab) << "a learned size is never sub-page";
  task.join();
}

std::size_t depth_now = 0;

TEST(LearnedStack, ASiteThatGoesDeeperMovesUpAClassAndNeverBelowWhatWasSeen) {
  const auto body = [] { use_stack(depth_now); };
  depth_now = 100;
  std::size_t first = 0;
  std::size_t least = SIZE_MAX;  // the first task on a thread may use more (lazy binding, first-use set-up)
  for (std::uint32_t i = 0; i < heddle::detail::kLearnedSamples; ++i) {
    auto task = heddle::spawn(body, kLearned);
    first = std::max(first, task.stack_high_water().bytes);
    least = std::min(least, task.stack_high_water().bytes);
    task.join();
  }
  const std::size_t first_class = heddle::detail::learned_class_bytes(first);
  {
    auto task = heddle::spawn(body, kLearned);
    EXPECT_EQ(task.stack().size, first_class);
    task.join();
  }
  // Deeper, still within the first class (a guard page or canary would
  // catch more), but past what that class holds with its margin. Within
  // kLearnedSampleEvery spawns on this thread one is measured.
  const std::size_t task_frames = least - 100;
  depth_now = first_class - heddle::kCanaryBytes - task_frames - 200;
  for (std::uint32_t i = 0; i < heddle::detail::kLearnedSampleEvery; ++i) heddle::spawn(body, kLearned).join();
  auto task = heddle::spawn(body, kLearned);
  const std::size_t second_class = task.stack().size;
  EXPECT_GT(second_class, first_class);
  EXPECT_GE(second_class, depth_now + task_frames + 1024);
  task.join();
  // And the class never goes back down, whatever later tasks use.
  depth_now = 100;
  for (std::uint32_t i = 0; i < 2 * heddle::detail::kLearnedSampleEvery; ++i) heddle::spawn(body, kLearned).join();
  auto after = heddle::spawn(body, kLearned);
  EXPECT_EQ(after.stack().size, second_class);
  after.join();
}

TEST(LearnedStack, NamingAPoolOrAStackWins) {
  const auto body = [] { use_stack(100); };
  for (std::uint32_t i = 0; i < heddle::detail::kLearnedSamples; ++i) heddle::spawn(body, kLearned).join();
  heddle::StackPool pool;
  heddle::SpawnOptions options = kLearned;
  options.pool = &pool;
  auto task = heddle::spawn(body, options);
  EXPECT_EQ(task.stack().pool, &pool);
  task.join();
}

TEST(LearnedStack, ClassesArePowersOfTwoFromAPageToAMebibyteWithAMargin) {
  using heddle::detail::learned_class_bytes;
  EXPECT_EQ(learned_class_bytes(0), 4096u);
  EXPECT_EQ(learned_class_bytes(3072), 4096u);   // 3072 + 1024
  EXPECT_EQ(learned_class_bytes(3073), 8192u);
  EXPECT_EQ(learned_class_bytes(6553), 8192u);   // 6553 + 1638
  EXPECT_EQ(learned_class_bytes(6556), 16384u);  // 6556 + 1639
  EXPECT_EQ(learned_class_bytes(800 * 1024), 1024u * 1024);
}

}  // namespace
