// High-water marks: byte-granular from paint, page-granular from residency.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "heddle/stack/stack.hpp"

namespace heddle {
namespace {

std::size_t page_bytes() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

alignas(64) std::byte span_storage[16384];

TEST(HighWater, PaintedStackReportsTheDepthToTheWord) {
  StackPool pool(StackPool::Options{.paint = true});
  Stack stack = pool.acquire();
  ASSERT_TRUE(stack.painted);
  constexpr std::size_t kDepth = 10000;
  std::memset(stack.high() - kDepth, 0x11, kDepth);
  StackUsage usage = high_water(stack);
  EXPECT_EQ(usage.granularity, 8u);
  EXPECT_GE(usage.bytes, kDepth);
  EXPECT_LE(usage.bytes, kDepth + 64);
  pool.release(stack);
}

TEST(HighWater, FreshlyPaintedStackIsUnused) {
  StackPool pool(StackPool::Options{.paint = true});
  Stack stack = pool.acquire();
  EXPECT_EQ(high_water(stack).bytes, 0u);
  pool.release(stack);
}

TEST(HighWater, PaintingKeepsTheLiveTopAndTheCanary) {
  Stack stack = stack_from_span(span_storage);
  constexpr std::size_t kLiveTop = 256;
  std::memset(stack.high() - kLiveTop, 0x11, kLiveTop);
  paint(stack, kLiveTop);
  EXPECT_TRUE(stack.painted);
  EXPECT_TRUE(canary_intact(stack));
  EXPECT_EQ(stack.high()[-1], std::byte{0x11});
  EXPECT_EQ(stack.high()[-static_cast<std::ptrdiff_t>(kLiveTop)], std::byte{0x11});
  EXPECT_EQ(stack.high()[-static_cast<std::ptrdiff_t>(kLiveTop) - 1], kPaintByte);
  EXPECT_EQ(stack.low[kCanaryBytes], kPaintByte);
  StackUsage usage = high_water(stack);
  EXPECT_EQ(usage.bytes, kLiveTop);
  EXPECT_EQ(usage.granularity, 8u);
}

TEST(HighWater, UnpaintedSpanIsUnknown) {
  Stack stack = stack_from_span(span_storage);
  EXPECT_EQ(high_water(stack).granularity, 0u);
}

class ResidentHighWater : public testing::TestWithParam<StackPool::Guard> {};

TEST_P(ResidentHighWater, UnpaintedPoolStackReportsItsTouchedPages) {
  StackPool pool(StackPool::Options{.guard = GetParam()});
  Stack stack = pool.acquire();
  ASSERT_FALSE(stack.painted);
  const std::size_t depth = 5 * page_bytes() + 100;
  // One byte per page, from the top down to `depth`, as a growing stack would.
  for (std::size_t offset = 1; offset <= depth; offset += page_bytes()) {
    stack.high()[-static_cast<std::ptrdiff_t>(offset)] = std::byte{1};
  }
  StackUsage usage = high_water(stack);
  EXPECT_EQ(usage.granularity, page_bytes());
  EXPECT_GE(usage.bytes, depth - page_bytes());
  EXPECT_LE(usage.bytes, depth + page_bytes());
  pool.release(stack);
}

INSTANTIATE_TEST_SUITE_P(Guard, ResidentHighWater,
                         testing::Values(StackPool::Guard::automatic, StackPool::Guard::never),
                         [](const auto& info) {
                           return info.param == StackPool::Guard::never ? "canary" : "guarded";
                         });

}  // namespace

}  // namespace heddle
