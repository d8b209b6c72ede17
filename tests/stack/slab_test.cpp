// Sub-page slab stacks: StackPool::Options::bounded below a page.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <stdexcept>
#include <vector>

#include "heddle/stack/stack.hpp"

namespace heddle {
namespace {

std::size_t page_bytes() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

StackPool::Options bounded(std::size_t bytes) {
  StackPool::Options options;
  options.stack_bytes = bytes;
  options.bounded = true;
  return options;
}

TEST(SlabStacks, ABoundedPoolBelowAPageCarvesManyStacksToAPage) {
  StackPool pool(bounded(512));
  EXPECT_EQ(pool.options().stack_bytes, 512u);
  EXPECT_EQ(pool.options().guard, StackPool::Guard::never);
  std::vector<Stack> stacks;
  std::set<std::uintptr_t> pages;
  for (int i = 0; i < 32; ++i) {
    stacks.push_back(pool.acquire());
    const Stack& stack = stacks.back();
    EXPECT_EQ(stack.kind, StackKind::slab);
    EXPECT_EQ(stack.size, 512u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(stack.low) % kSlabStackAlignment, 0u);
    EXPECT_TRUE(canary_intact(stack));
    pages.insert(reinterpret_cast<std::uintptr_t>(stack.low) / page_bytes());
  }
  // 32 stacks of 512 bytes fill 4 pages (plus at most one at each end).
  EXPECT_LE(pages.size(), 32 * 512 / page_bytes() + 1);
  for (const Stack& stack : stacks) pool.release(stack);
  EXPECT_EQ(pool.stats().live, 0u);
  EXPECT_EQ(pool.stats().idle, 32u);
}

TEST(SlabStacks, ASizeIsRoundedUpToTheSlabAlignment) {
  static_assert(kSlabStackAlignment == 16, "the figures below are for a 16-byte stride");
  StackPool pool(bounded(300));
  EXPECT_EQ(pool.options().stack_bytes, 304u);
  Stack stack = pool.acquire();
  EXPECT_EQ(stack.size, 304u);
  pool.release(stack);
}

TEST(SlabStacks, TheCanaryIsAPatternBecauseNeighboursShareThePage) {
  StackPool pool(bounded(512));
  Stack stack = pool.acquire();
  std::uint64_t word;
  std::memcpy(&word, stack.low, sizeof word);
  EXPECT_EQ(word, kCanaryWord);
  EXPECT_EQ(canary_word(stack), kCanaryWord);
  // A write into the zone, as an overflow from above would make, is seen.
  stack.low[kCanaryBytes - 1] = std::byte{0};
  EXPECT_FALSE(canary_intact(stack));
  arm_canary(stack);
  EXPECT_TRUE(canary_intact(stack));
  pool.release(stack);
}

TEST(SlabStacks, AReleasedSlabStackIsReusedAndRearmed) {
  StackPool pool(bounded(256));
  Stack first = pool.acquire();
  std::memset(first.low, 0x77, first.size);  // a tenant that overflowed into its own zone
  pool.release(first);
  Stack again = pool.acquire();
  EXPECT_EQ(again.low, first.low);
  EXPECT_TRUE(canary_intact(again));
  pool.release(again);
}

TEST(SlabStacks, WithoutABoundASubPageStackIsRefused) {
  StackPool::Options options;
  options.stack_bytes = 512;
  try {
    StackPool pool(options);
    FAIL() << "a 512-byte stack without a bound was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("needs a proven bound"), std::string::npos) << error.what();
  }
}

TEST(SlabStacks, BelowTheBoundedMinimumIsRefused) {
  EXPECT_THROW(StackPool pool(bounded(kMinimumBoundedStackBytes - 1)), std::invalid_argument);
}

TEST(SlabStacks, ASubPageStackCannotHaveAGuardPage) {
  StackPool::Options options = bounded(1024);
  options.guard = StackPool::Guard::always;
  try {
    StackPool pool(options);
    FAIL() << "Guard::always was accepted for a sub-page stack";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("guard page"), std::string::npos) << error.what();
  }
}

TEST(SlabStacks, ABoundOfAPageOrMoreMakesOrdinaryPoolStacks) {
  StackPool pool(bounded(page_bytes() + 100));
  EXPECT_EQ(pool.options().stack_bytes, 2 * page_bytes());
  Stack stack = pool.acquire();
  EXPECT_NE(stack.kind, StackKind::slab);
  EXPECT_EQ(stack.size, 2 * page_bytes());
  pool.release(stack);
}

TEST(SlabStacks, KindHasAName) { EXPECT_STREQ(to_string(StackKind::slab), "slab"); }

}  // namespace
}  // namespace heddle
