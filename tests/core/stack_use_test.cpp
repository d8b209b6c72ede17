// Stacks as tasks see them: high-water marks and overflow reports.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>

#include "heddle/arch/sanitizer.hpp"
#include "heddle/heddle.hpp"

namespace {

using heddle::Resumer;

// Touches one byte `depth` bytes below the top of the running task's stack,
// as a call chain that deep would. Not instrumented: the byte is below the
// stack pointer, where ASan may keep stale poison.
HEDDLE_NO_SANITIZE_ADDRESS __attribute__((noinline)) void touch_at_depth(const heddle::Stack& stack,
                                                                          std::size_t depth) {
  volatile std::byte* p = stack.high() - depth;
  *p = std::byte{1};
}

TEST(HighWater, PaintedStackIsAccurateToSixtyFourBytes) {
  heddle::StackPool pool(heddle::StackPool::Options{.stack_bytes = 64 * 1024});
  for (std::size_t depth : {std::size_t{10000}, std::size_t{20000}, std::size_t{50000}}) {
    heddle::Task<void>* handle = nullptr;
    auto task = heddle::spawn([&] { heddle::suspend([](const Resumer&) {}); },
                              heddle::SpawnOptions{.pool = &pool, .paint = true});
    handle = &task;
    touch_at_depth(handle->stack(), depth);
    const auto usage = task.stack_high_water();
    EXPECT_EQ(usage.granularity, 8u);
    EXPECT_GE(usage.bytes, depth);
    EXPECT_LE(usage.bytes, depth + 64);
    task.cancel();
    EXPECT_THROW(task.join(), heddle::Cancelled);
  }
}

TEST(HighWater, PoolStackIsAccurateToOnePage) {
  for (std::size_t depth : {std::size_t{10000}, std::size_t{30000}, std::size_t{60000}}) {
    heddle::StackPool fresh(heddle::StackPool::Options{.stack_bytes = 64 * 1024});
    auto task = heddle::spawn([] { heddle::suspend([](const Resumer&) {}); },
                              heddle::SpawnOptions{.pool = &fresh});
    touch_at_depth(task.stack(), depth);
    const auto usage = task.stack_high_water();
    EXPECT_EQ(usage.granularity, 4096u);
    EXPECT_GE(usage.bytes + 4096, depth);
    EXPECT_LE(usage.bytes, depth + 4096);
    task.cancel();
    EXPECT_THROW(task.join(), heddle::Cancelled);
  }
}

volatile int recursion_limit = 1 << 30;  // never reached: the guard page is

__attribute__((noinline)) int recurse_forever(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  if (depth == recursion_limit) return 0;
  return recurse_forever(depth + 1) + frame[0];
}

__attribute__((noinline)) int recurse_to(int depth) {
  volatile char frame[512];
  std::memset(const_cast<char*>(frame), depth, sizeof frame);
  if (depth == 0) return frame[1];
  return recurse_to(depth - 1) + frame[0];
}

TEST(OverflowDeathTest, GuardPageHitNamesTheTaskAndSpawnSite) {
  EXPECT_DEATH(
      {
        heddle::StackPool pool(
            heddle::StackPool::Options{.stack_bytes = 64 * 1024, .guard = heddle::StackPool::Guard::always});
        auto task = heddle::spawn([] { recurse_forever(0); }, heddle::SpawnOptions{.name = "deep", .pool = &pool});
      },
      "heddle: stack overflow in task \"deep\" spawned at .*stack_use_test.cpp:[0-9]+, stack 65536 bytes");
}

TEST(OverflowDeathTest, CanaryHitIsReportedAtTheNextSwitch) {
  EXPECT_DEATH(
      {
        // A span stack inside a larger buffer: the overflow runs into the
        // buffer's lower half, past the canary, and the next switch-out
        // reports it.
        alignas(64) static std::byte buffer[256 * 1024];
        heddle::SpawnOptions options{.name = "canary-victim"};
        options.stack = heddle::stack_from_span(std::span<std::byte>(buffer + 128 * 1024, 32 * 1024));
        auto task = heddle::spawn(
            [] {
              recurse_to(100);  // at least 50 KiB: past the 32 KiB stack
              heddle::suspend([](const Resumer&) {});
            },
            options);
      },
      "heddle: stack overflow in task \"canary-victim\" spawned at .*stack_use_test.cpp:[0-9]+, stack 32768 bytes");
}

TEST(OverflowDeathTest, CanaryPoolStackOverflowIsReported) {
  EXPECT_DEATH(
      {
        heddle::StackPool pool(
            heddle::StackPool::Options{.stack_bytes = 64 * 1024, .guard = heddle::StackPool::Guard::never});
        auto task = heddle::spawn(
            [] {
              // Simulate the overflow's footprint on the canary zone (a
              // pool canary is zero: an overflow writes something else).
              auto* t = heddle::detail::current_task();
              std::memset(t->stack.low + heddle::kCanaryBytes - 8, 0x5A, 8);
              heddle::suspend([](const Resumer&) {});
            },
            heddle::SpawnOptions{.name = "pool-canary", .pool = &pool});
      },
      "heddle: stack overflow in task \"pool-canary\" spawned at .*stack_use_test.cpp:[0-9]+, stack 65536 bytes");
}

heddle::StackPool::Options slab_options(std::size_t bytes) {
  heddle::StackPool::Options options;
  options.stack_bytes = bytes;
  options.bounded = true;
  return options;
}

TEST(SlabStack, ATaskRunsParksAndFinishesOnAStackSizedFromItsUse) {
  // The first task a process runs takes the cold paths (the dynamic
  // linker's lazy binding, first-use set-up); warm up, then measure what a
  // parking task uses in this build (sanitizers and -O0 make frames large)
  // and give it a bounded stack of that much and a margin: a sub-page slab
  // stack wherever that fits below a page (every optimised build).
  heddle::spawn([] {}).join();
  heddle::Event sample_event;
  int sample_result = 0;
  auto measured = heddle::spawn([&] { sample_event.wait(); sample_result += 1; }, {.paint = true});
  sample_event.set();
  const std::size_t used = measured.stack_high_water().bytes;  // parked, resumed and finished
  measured.join();
  const std::size_t bytes = (used + heddle::kCanaryBytes + 512 + 63) / 64 * 64;
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  heddle::StackPool pool(slab_options(bytes));
  heddle::Event event;
  int result = 0;
  auto first = heddle::spawn([&] { event.wait(); result += 1; }, {.pool = &pool});
  auto second = heddle::spawn([&] { event.wait(); result += 2; }, {.pool = &pool});
  EXPECT_EQ(first.stack().kind == heddle::StackKind::slab, bytes < page) << bytes << " bytes";
  EXPECT_EQ(first.stack().size, bytes < page ? bytes : (bytes + page - 1) / page * page);
  if (bytes < page) {
    EXPECT_EQ(second.stack().low + bytes, first.stack().low) << "slab stacks are carved next to each other";
  }
  event.set();
  first.join();
  second.join();
  EXPECT_EQ(result, 3);
  EXPECT_EQ(pool.stats().live, 0u);
}

TEST(OverflowDeathTest, SlabStackOverflowIsReported) {
  EXPECT_DEATH(
      {
        heddle::StackPool pool(slab_options(3072));
        auto task = heddle::spawn(
            [] {
              // An overflow of a slab stack lands in its canary zone (the
              // pattern) on its way into the neighbour below.
              auto* t = heddle::detail::current_task();
              std::memset(t->stack.low + heddle::kCanaryBytes - 8, 0, 8);
              heddle::suspend([](const Resumer&) {});
            },
            heddle::SpawnOptions{.name = "slab-victim", .pool = &pool});
      },
      "heddle: stack overflow in task \"slab-victim\" spawned at .*stack_use_test.cpp:[0-9]+, stack 3072 bytes");
}

}  // namespace

namespace {

// A StaticStack with room below it to absorb an overflow (members are laid
// out in order, so `below` sits at lower addresses than `stack`).
struct StaticStackWithRoomBelow {
  alignas(64) std::byte below[256 * 1024];
  heddle::StaticStack<32 * 1024> stack;
};

TEST(OverflowDeathTest, StaticStackOverflowIsReported) {
  EXPECT_DEATH(
      {
        static StaticStackWithRoomBelow storage;
        heddle::SpawnOptions options{.name = "static-victim"};
        options.stack = storage.stack.stack();
        auto task = heddle::spawn(
            [] {
              recurse_to(100);
              heddle::suspend([](const heddle::Resumer&) {});
            },
            options);
      },
      "heddle: stack overflow in task \"static-victim\" spawned at .*stack_use_test.cpp:[0-9]+, stack 32768 bytes");
}

TEST(OverflowDeathTest, NestedArmCanaryHitIsReported) {
  // A real overflow of a nested arm runs into its parent's frames, which
  // ASan guards with its own redzones; the footprint on the canary is what
  // heddle detects, so that is what this test makes.
  EXPECT_DEATH(
      {
        auto task = heddle::spawn([] {
          heddle::join(heddle::nested(16 * 1024), [] {
            auto* t = heddle::detail::current_task();
            EXPECT_EQ(t->stack.kind, heddle::StackKind::nested);
            std::memset(t->stack.low + heddle::kCanaryBytes - 8, 0, 8);
            heddle::suspend([](const heddle::Resumer&) {});
          });
        });
      },
      "heddle: stack overflow in task \"join arm 0\" spawned at .*, stack 16384 bytes");
}

}  // namespace
