// StackPool: recycling, sizes, kinds, the mapping budget and returned memory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/arch/sanitizer.hpp"
#include "heddle/stack/stack.hpp"

#if HEDDLE_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace heddle {
namespace {

std::size_t page_bytes() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

long max_map_count() {
  int file = ::open("/proc/sys/vm/max_map_count", O_RDONLY);
  char text[32] = {};
  if (file >= 0) {
    [[maybe_unused]] ssize_t length = ::read(file, text, sizeof text - 1);
    ::close(file);
  }
  return std::strtol(text, nullptr, 10);
}

// The bytes a task may use: everything above the canary zone, if any.
std::byte* usable_bottom(const Stack& stack) {
  return stack.has_guard_page() ? stack.low : stack.low + kCanaryBytes;
}

bool all_bytes_equal(const std::byte* begin, const std::byte* end, std::byte value) {
  return std::all_of(begin, end, [value](std::byte byte) { return byte == value; });
}

TEST(StackPool, WarmAcquireHandsBackTheSameStackWithoutMakingOne) {
  StackPool pool;
  Stack first = pool.acquire();
  pool.release(first);
  StackPool::Stats warm = pool.stats();
  Stack second = pool.acquire();
  StackPool::Stats after = pool.stats();
  EXPECT_EQ(second.low, first.low);
  EXPECT_EQ(second.size, first.size);
  EXPECT_EQ(after.guarded_created, warm.guarded_created);
  EXPECT_EQ(after.canary_created, warm.canary_created);
  EXPECT_EQ(after.idle, 0u);
  EXPECT_EQ(after.live, 1u);
  pool.release(second);
}

TEST(StackPool, RoundsStackSizesUpToWholePages) {
  StackPool pool(StackPool::Options{.stack_bytes = 2 * page_bytes() + 1});
  EXPECT_EQ(pool.options().stack_bytes, 3 * page_bytes());
  Stack stack = pool.acquire();
  EXPECT_EQ(stack.size, 3 * page_bytes());
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(stack.low) % page_bytes(), 0u);
  EXPECT_EQ(stack.pool, &pool);
  pool.release(stack);
}

TEST(StackPool, RejectsStacksBelowTheMinimum) {
  EXPECT_THROW(StackPool(StackPool::Options{.stack_bytes = 100}), std::invalid_argument);
}

TEST(StackPool, MakesGuardedStacksByDefault) {
  StackPool pool;
  Stack stack = pool.acquire();
  EXPECT_EQ(stack.kind, StackKind::guarded);
  EXPECT_EQ(stack.size, 64u * 1024);
  EXPECT_FALSE(stack.painted);
  pool.release(stack);
}

TEST(StackPool, GuardAlwaysMakesGuardedStacks) {
  StackPool pool(StackPool::Options{.guard = StackPool::Guard::always});
  Stack stack = pool.acquire();
  EXPECT_EQ(stack.kind, StackKind::guarded);
  pool.release(stack);
}

TEST(StackPool, GuardNeverMakesCanaryStacks) {
  StackPool pool(StackPool::Options{.guard = StackPool::Guard::never});
  Stack first = pool.acquire();
  Stack second = pool.acquire();
  EXPECT_EQ(first.kind, StackKind::canary);
  EXPECT_TRUE(canary_intact(first));
  EXPECT_NE(first.low, second.low);
  // Carved from one chunk: neighbours, not overlapping.
  std::size_t distance = first.low > second.low ? first.low - second.low : second.low - first.low;
  EXPECT_GE(distance, first.size);
  EXPECT_EQ(pool.stats().canary_created, 2u);
  EXPECT_EQ(pool.stats().guarded_created, 0u);
  pool.release(first);
  pool.release(second);
}

TEST(StackPool, ACanaryStacksZoneIsTheEndOfItsLowerNeighboursTopPage) {
  // So that checking it reads no page of its own: the neighbour's frames
  // keep that page resident (Scale.ParkedTaskOnAPoolCanaryStackKeepsOnePage
  // measures it).
  StackPool pool(StackPool::Options{.stack_bytes = 16 * 1024, .guard = StackPool::Guard::never});
  Stack upper = pool.acquire();
  Stack lower = pool.acquire();
  if (upper.low < lower.low) std::swap(upper, lower);
  const auto page = page_bytes();
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(upper.low + kCanaryBytes) % page, 0u)
      << "the zone does not end on a page boundary";
  EXPECT_EQ(lower.high(), upper.low) << "neighbours in one chunk";
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(lower.high()) / page,
            reinterpret_cast<std::uintptr_t>(upper.low + kCanaryBytes - 1) / page)
      << "the zone is not on the page that holds the lower stack's top";
  EXPECT_TRUE(canary_intact(upper));
  EXPECT_TRUE(canary_intact(lower));
  // Still page precision without paint: the lower stack's top page counts.
  lower.high()[-1] = std::byte{1};
  EXPECT_EQ(high_water(lower).bytes, page);
  EXPECT_EQ(high_water(lower).granularity, page);
  pool.release(lower);
  pool.release(upper);
}

TEST(StackPool, StatsCountLiveIdleAndCreatedStacks) {
  StackPool pool;
  Stack a = pool.acquire();
  Stack b = pool.acquire();
  Stack c = pool.acquire();
  pool.release(a);
  pool.release(b);
  StackPool::Stats stats = pool.stats();
  EXPECT_EQ(stats.live, 1u);
  EXPECT_EQ(stats.idle, 2u);
  EXPECT_EQ(stats.guarded_created, 3u);
  EXPECT_EQ(stats.canary_created, 0u);
  pool.release(c);
  EXPECT_EQ(pool.stats().live, 0u);
  EXPECT_EQ(pool.stats().idle, 3u);
}

TEST(StackPool, PaintOptionPaintsEveryAcquire) {
  StackPool pool(StackPool::Options{.paint = true});
  Stack stack = pool.acquire();
  EXPECT_TRUE(stack.painted);
  EXPECT_EQ(stack.low[0], kPaintByte);
  stack.high()[-1] = std::byte{0};
  pool.release(stack);
  Stack again = pool.acquire();
  EXPECT_EQ(again.high()[-1], kPaintByte);
  pool.release(again);
}

// 70,000 guarded stacks would need 140,000 mappings, twice the default
// vm.max_map_count: the pool must switch to canary stacks rather than fail.
TEST(StackPool, AutomaticGuardOutlastsTheMappingBudget) {
  constexpr std::size_t kStacks = 70'000;
  StackPool pool(StackPool::Options{.stack_bytes = 16 * 1024});
  std::vector<Stack> stacks;
  stacks.reserve(kStacks);
  for (std::size_t i = 0; i < kStacks; ++i) stacks.push_back(pool.acquire());

  std::size_t canaries = 0;
  std::size_t broken_canaries = 0;
  for (const Stack& stack : stacks) {
    usable_bottom(stack)[0] = std::byte{1};
    stack.high()[-1] = std::byte{1};
    canaries += stack.kind == StackKind::canary;
    broken_canaries += !canary_intact(stack);
  }
  EXPECT_GT(kStacks - canaries, 0u) << "no guarded stack at all";
  if (detail::guard_regions_supported()) {
    // Guard regions split no mapping: every stack keeps its guard page.
    EXPECT_EQ(canaries, 0u);
  } else if (max_map_count() < static_cast<long>(2 * kStacks)) {
    EXPECT_GT(canaries, 0u);
  }
  EXPECT_EQ(broken_canaries, 0u);
  StackPool::Stats stats = pool.stats();
  EXPECT_EQ(stats.live, kStacks);
  EXPECT_EQ(stats.guarded_created + stats.canary_created, kStacks);
  EXPECT_EQ(stats.canary_created, canaries);

  for (const Stack& stack : stacks) pool.release(stack);
  EXPECT_EQ(pool.stats().live, 0u);
  EXPECT_EQ(pool.stats().idle, kStacks);
}

class ResidentLimit : public testing::TestWithParam<StackPool::Guard> {};

// MADV_DONTNEED on private anonymous memory makes it read back as zeros.
TEST_P(ResidentLimit, IdleStacksAboveTheLimitGiveTheirMemoryBack) {
  // Idle stacks past the limit are given back in batches of 64, so release
  // one to keep and then 64 more.
  constexpr std::size_t kBatch = 64;
  StackPool pool(StackPool::Options{.max_resident_idle = 1, .guard = GetParam()});
  Stack kept = pool.acquire();
  std::vector<Stack> returned;
  for (std::size_t i = 0; i < kBatch; ++i) returned.push_back(pool.acquire());
  std::memset(usable_bottom(kept), 0x5A, static_cast<std::size_t>(kept.high() - usable_bottom(kept)));
  for (const Stack& stack : returned) {
    std::memset(usable_bottom(stack), 0x5A, static_cast<std::size_t>(stack.high() - usable_bottom(stack)));
  }
  pool.release(kept);  // the one idle stack allowed: stays resident
  for (std::size_t i = 0; i + 1 < kBatch; ++i) pool.release(returned[i]);
  EXPECT_TRUE(all_bytes_equal(usable_bottom(returned[0]), returned[0].high(), std::byte{0x5A}))
      << "memory is given back a batch at a time, not stack by stack";
  pool.release(returned.back());  // completes the batch: all 64 are given back

  EXPECT_TRUE(all_bytes_equal(usable_bottom(kept), kept.high(), std::byte{0x5A}));
  for (const Stack& stack : returned) EXPECT_TRUE(all_bytes_equal(stack.low, stack.high(), std::byte{0}));
  EXPECT_EQ(pool.stats().idle, kBatch + 1);

  // The kept stack comes back first, then trimmed ones, canaries re-armed.
  EXPECT_EQ(pool.acquire().low, kept.low);
  Stack again = pool.acquire();
  EXPECT_TRUE(std::any_of(returned.begin(), returned.end(), [&](const Stack& s) { return s.low == again.low; }));
  EXPECT_TRUE(canary_intact(again));
  if (again.kind == StackKind::canary) {
    std::uint64_t top_canary_word;
    std::memcpy(&top_canary_word, again.low + kCanaryBytes - 8, sizeof top_canary_word);
    EXPECT_EQ(top_canary_word, canary_word(again));
  }
  pool.release(again);
  pool.release(kept);
}

INSTANTIATE_TEST_SUITE_P(Guard, ResidentLimit,
                         testing::Values(StackPool::Guard::automatic, StackPool::Guard::never),
                         [](const auto& info) {
                           return info.param == StackPool::Guard::never ? "canary" : "guarded";
                         });

#if HEDDLE_ASAN
// A task abandoned mid-call leaves its frames' redzones poisoned; the next
// task on the same stack must not trip over them.
TEST(StackPool, RecycledStackCarriesNoStalePoison) {
  StackPool pool;
  Stack stack = pool.acquire();
  __asan_poison_memory_region(stack.high() - 256, 128);
  pool.release(stack);
  Stack again = pool.acquire();
  ASSERT_EQ(again.low, stack.low);
  EXPECT_EQ(__asan_region_is_poisoned(again.low, again.size), nullptr);
  pool.release(again);
}
#endif

TEST(StackPool, DefaultPoolIsOneGuardedSixtyFourKibPool) {
  StackPool& pool = StackPool::default_pool();
  EXPECT_EQ(&pool, &StackPool::default_pool());
  EXPECT_EQ(pool.options().stack_bytes, 64u * 1024);
  EXPECT_EQ(pool.options().guard, StackPool::Guard::automatic);
}

std::size_t mappings_now() {
  std::ifstream maps("/proc/self/maps");
  std::size_t lines = 0;
  for (std::string line; std::getline(maps, line);) ++lines;
  return lines;
}

// Where the kernel has guard regions, guarded stacks are carved from chunks
// with a guard page each, and cost no mapping of their own.
TEST(StackPool, GuardedStacksCostNoMappingWhereTheKernelHasGuardRegions) {
  if (!detail::guard_regions_supported()) GTEST_SKIP() << "this kernel has no guard regions (MADV_GUARD_INSTALL)";
  constexpr std::size_t kStacks = 2'000;
  StackPool pool(StackPool::Options{.stack_bytes = 16 * 1024, .guard = StackPool::Guard::always});
  const std::size_t before = mappings_now();
  std::vector<Stack> stacks;
  for (std::size_t i = 0; i < kStacks; ++i) stacks.push_back(pool.acquire());
  const std::size_t after = mappings_now();
  for (const Stack& stack : stacks) EXPECT_EQ(stack.kind, StackKind::guarded);
  EXPECT_LT(after - before, kStacks / 10) << "guarded stacks should share chunk mappings";
  for (const Stack& stack : stacks) pool.release(stack);
}

TEST(StackPoolDeathTest, EveryChunkCarvedStackHasItsGuardPage) {
  if (!detail::guard_regions_supported()) GTEST_SKIP() << "this kernel has no guard regions (MADV_GUARD_INSTALL)";
  StackPool pool(StackPool::Options{.stack_bytes = 16 * 1024});
  std::vector<Stack> stacks;
  for (int i = 0; i < 40; ++i) stacks.push_back(pool.acquire());  // more than one chunk
  for (const Stack& stack : {stacks.front(), stacks[20], stacks.back()}) {
    EXPECT_DEATH(*static_cast<volatile std::byte*>(stack.low - 1) = std::byte{1}, "");
    EXPECT_DEATH(*static_cast<volatile std::byte*>(stack.low - 4096) = std::byte{1}, "");
  }
  for (const Stack& stack : stacks) pool.release(stack);
}

TEST(StackPoolDeathTest, GuardPageSitsBelowAGuardedStack) {
  StackPool pool;
  Stack stack = pool.acquire();
  ASSERT_EQ(stack.kind, StackKind::guarded);
  EXPECT_DEATH(*static_cast<volatile std::byte*>(stack.low - 1) = std::byte{1}, "");
  pool.release(stack);
}

}  // namespace
}  // namespace heddle
