// Tasks whose stacks come from proven bounds: this test target is built
// with heddle_stack_bounds() (tests/tools/CMakeLists.txt), so
// tools/heddle-stack bounded its task entries before it linked.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <typeinfo>

#include "heddle/heddle.hpp"
#include "json_document.hpp"

extern "C" {
volatile int bounded_sink;

__attribute__((noinline)) void bounded_leaf() {
  volatile char buffer[200];
  buffer[0] = 1;
  bounded_sink = buffer[0];
}
__attribute__((noinline)) void bounded_middle() {
  volatile char buffer[300];
  buffer[0] = 2;
  bounded_leaf();
  bounded_sink = buffer[0];
}
// Writes its whole 64 KiB frame: far past the straight chain's bound.
__attribute__((noinline)) void sixty_four_kilobyte_frame() {
  char buffer[64 * 1024];
  std::memset(buffer, 0x5a, sizeof buffer);
  asm volatile("" : : "r"(buffer) : "memory");
  bounded_sink = buffer[100];
}
}

namespace {

// Namespace-scope lambdas: each is a callable type of its own, which the
// tool bounds and spawn looks up by its TaskFrame's type name.
const auto straight_chain = [] { bounded_middle(); };
const auto past_the_bound = [] {
  bounded_middle();
  sixty_four_kilobyte_frame();
};
// A recursion that could not be bounded where it runs, moved beyond a
// with_stack boundary: the task's own bound stops there, and the segment's
// callable gets a bound of its own in the tool's report.
const auto beyond_a_boundary = [] {
  return heddle::with_stack(64 * 1024, [] {
    bounded_middle();
    return 7;
  });
};
const auto through_a_pointer = [] {
  void (*volatile call)() = bounded_middle;
  call();
};
// Formatted output, whose stack grows with its input: %.*f of 1e-300 takes
// over 13 KiB of stack at precision 400 and overflowed a 12.8 KiB bound at
// 2000, when the tool priced fprintf at one measured call.
volatile int print_precision = 400;
volatile double print_value = 1e-300;
const auto prints_a_float = [] { std::fprintf(stderr, "%.*f\n", print_precision, print_value); };

// A throw and its catch on a bounded stack. The program is linked with the
// unwinder wrappers (heddle_stack_bounds), so libgcc's unwinder (about 2 KiB
// of stack) runs on the thread's unwind stack, outside the bound.
// (An int, not a std::exception: what() is a virtual call, which the tool
// could not bound.)
const auto throws_and_catches = [] {
  try {
    bounded_leaf();
    throw 25;
  } catch (int thrown) {
    return thrown;
  }
};
heddle::Event never_set;
int destroyed_by_cancel = 0;
struct CountsDestruction {
  ~CountsDestruction() { ++destroyed_by_cancel; }
};
const auto parks_until_cancelled = [] {
  CountsDestruction guard;  // a cleanup: its _Unwind_Resume is wrapped too
  bounded_leaf();
  never_set.wait();
};

TEST(BoundedSpawn, AThrowOnABoundedStackIsUnwoundFromTheUnwindStack) {
  const heddle::StackBoundUse use = heddle::stack_bound_for(throws_and_catches);
  ASSERT_GT(use.bound_bytes, 0u);
  EXPECT_LT(use.bound_bytes, 1536u) << "the unwinder is not in the bound: it runs on the unwind stack";
  auto task = heddle::spawn(throws_and_catches, {.paint = true});
  const heddle::StackUsage used = task.stack_high_water();
  EXPECT_EQ(task.join(), 25);
  EXPECT_LE(used.bytes, use.stack_bytes - heddle::kCanaryBytes);
  EXPECT_LT(used.bytes, 1024u) << "the unwinder ran on the task's own stack";
}

TEST(BoundedSpawn, ACancelledBoundedTaskUnwindsFromItsSuspension) {
  const heddle::StackBoundUse use = heddle::stack_bound_for(parks_until_cancelled);
  ASSERT_GT(use.bound_bytes, 0u);
  auto task = heddle::spawn(parks_until_cancelled, {.paint = true});
  EXPECT_EQ(task.stack().pool, use.pool);
  EXPECT_FALSE(task.finished());
  task.cancel();  // unwinds it now, from Event::wait, throwing heddle::Cancelled there
  EXPECT_TRUE(task.finished());
  EXPECT_EQ(destroyed_by_cancel, 1);
  const heddle::StackUsage used = task.stack_high_water();
  EXPECT_THROW(task.join(), heddle::Cancelled);
  EXPECT_LE(used.bytes, use.stack_bytes - heddle::kCanaryBytes);
  EXPECT_LT(used.bytes, 1024u) << "the unwinder (about 2 KiB) ran on the task's own stack";
}

TEST(BoundedSpawn, AStraightChainGetsAStackOfExactlyItsBound) {
  const heddle::StackBoundUse use = heddle::stack_bound_for(straight_chain);
  ASSERT_GT(use.bound_bytes, 0u) << "tools/heddle-stack did not bound the straight chain: see "
                                    "tools_bounded_spawn_tests_stack_bounds/stack_bounds.json in the build tree";
  ASSERT_NE(use.pool, nullptr);
  EXPECT_TRUE(use.pool->options().bounded);
  // The canary zone, the task's frame (16-byte rounded) and the bound,
  // rounded up to the slab alignment, or to pages from a page up.
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  using Frame = heddle::detail::TaskFrame<std::decay_t<decltype(straight_chain)>, void>;
  const std::size_t frame = alignof(Frame) <= 16 ? sizeof(Frame) : sizeof(Frame) + alignof(Frame) - 1;
  const std::size_t exact = heddle::kCanaryBytes + (frame + 15) / 16 * 16 + use.bound_bytes;
  const std::size_t slab = (exact + heddle::kSlabStackAlignment - 1) / heddle::kSlabStackAlignment * heddle::kSlabStackAlignment;
  EXPECT_EQ(use.stack_bytes, slab < page ? slab : (slab + page - 1) / page * page);
  auto task = heddle::spawn(straight_chain);
  EXPECT_EQ(task.stack().size, use.stack_bytes);
  EXPECT_EQ(task.stack().pool, use.pool);
  const heddle::StackKind kind = task.stack().kind;
  EXPECT_EQ(kind == heddle::StackKind::slab, use.stack_bytes < page);
  task.join();  // a canary overwrite would have aborted
  std::printf("straight chain: bound %zu bytes, stack %zu bytes (%s)\n", use.bound_bytes, use.stack_bytes,
              heddle::to_string(kind));
}

TEST(BoundedSpawn, TheTaskUsesNoMoreThanItsBound) {
  const heddle::StackBoundUse use = heddle::stack_bound_for(straight_chain);
  ASSERT_GT(use.bound_bytes, 0u);
  // Painted: the byte-exact high-water mark, measured from the stack's top,
  // covers the task's frame (at the top) and everything below it.
  auto task = heddle::spawn(straight_chain, {.paint = true});
  const heddle::StackUsage used = task.stack_high_water();
  task.join();
  EXPECT_EQ(used.granularity, 8u);
  EXPECT_LE(used.bytes, use.stack_bytes - heddle::kCanaryBytes);
  EXPECT_GT(used.bytes, 500u) << "the chain's own frames (500 bytes of buffers) were not measured";
  std::printf("straight chain: bound %zu bytes, stack %zu bytes, measured use %zu bytes\n", use.bound_bytes,
              use.stack_bytes, used.bytes);
}

TEST(BoundedSpawn, AWithStackCallIsABoundaryAndItsCallableIsBoundedApart) {
  const heddle::StackBoundUse use = heddle::stack_bound_for(beyond_a_boundary);
  ASSERT_GT(use.bound_bytes, 0u) << "the with_stack call should end the task's bound, not make it unbounded";
  auto task = heddle::spawn(beyond_a_boundary);
  EXPECT_EQ(task.stack().pool, use.pool);
  EXPECT_EQ(task.join(), 7);
  // The tool's report lists the segment's callable with a bound of its own.
  const heddle::support::Json report = heddle::support::read_json_document(HEDDLE_STACK_BOUNDS_JSON);
  int segments = 0;
  for (const auto& entry : report.at("entries")) {
    if (entry.at("kind") != "with_stack segment") continue;
    ++segments;
    EXPECT_TRUE(entry.at("bounded").get<bool>()) << entry.dump(1);
    EXPECT_GT(entry.at("bytes").get<std::size_t>(), 0u) << entry.dump(1);
  }
  EXPECT_EQ(segments, 1) << "this program makes one with_stack call, in " << HEDDLE_STACK_BOUNDS_JSON;
}

TEST(BoundedSpawn, AnIndirectCallKeepsTheDefaultPool) {
  EXPECT_EQ(heddle::stack_bound_for(through_a_pointer).bound_bytes, 0u);
  auto task = heddle::spawn(through_a_pointer);
  EXPECT_EQ(task.stack().pool, &heddle::StackPool::default_pool());
  task.join();
}

TEST(BoundedSpawn, FormattedOutputIsUnboundedAndTheReportSaysWhy) {
  EXPECT_EQ(heddle::stack_bound_for(prints_a_float).bound_bytes, 0u);
  // The report's entry for this callable type names fprintf as the reason, with the path.
  const std::string type = typeid(heddle::detail::TaskFrame<std::decay_t<decltype(prints_a_float)>, void>).name();
  const heddle::support::Json report = heddle::support::read_json_document(HEDDLE_STACK_BOUNDS_JSON);
  int entries = 0;
  for (const auto& entry : report.at("entries")) {
    if (entry.at("type") != type) continue;
    ++entries;
    EXPECT_FALSE(entry.at("bounded").get<bool>()) << entry.dump(1);
    bool named = false;
    for (const auto& problem : entry.at("problems")) {
      if (problem.at("kind") != "input-dependent stack") continue;
      EXPECT_EQ(problem.at("detail"), "stack use depends on input: fprintf") << entry.dump(1);
      EXPECT_EQ(problem.at("path").back(), "fprintf") << entry.dump(1);
      named = true;
    }
    EXPECT_TRUE(named) << "no input-dependent stack among the reasons: " << entry.dump(1);
  }
  EXPECT_EQ(entries, 1) << "no entry for the printing task in " << HEDDLE_STACK_BOUNDS_JSON;
  // Unbounded, it runs on the default pool's stack, which has the room.
  auto task = heddle::spawn(prints_a_float);
  EXPECT_EQ(task.stack().pool, &heddle::StackPool::default_pool());
  task.join();
}

TEST(BoundedSpawn, AProvenBoundWinsOverALearnedSize) {
  const heddle::StackBoundUse use = heddle::stack_bound_for(straight_chain);
  ASSERT_GT(use.bound_bytes, 0u);
  auto task = heddle::spawn(straight_chain, {.stack_policy = heddle::StackPolicy::learned});
  EXPECT_EQ(task.stack().pool, use.pool);
  EXPECT_FALSE(task.stack().painted) << "a proven task is not measured for learning";
  task.join();
}

TEST(BoundedSpawn, NamingAPoolWins) {
  heddle::StackPool pool;
  auto task = heddle::spawn(straight_chain, {.pool = &pool});
  EXPECT_EQ(task.stack().pool, &pool);
  task.join();
}

using BoundedSpawnDeathTest = testing::Test;

TEST(BoundedSpawnDeathTest, AFrameBeyondTheBoundIsCaught) {
  const heddle::StackBoundUse use = heddle::stack_bound_for(straight_chain);
  ASSERT_GT(use.bound_bytes, 0u);
  // The straight chain's stack, for a task that goes one 64 KiB frame further.
  EXPECT_DEATH(
      {
        auto task = heddle::spawn(past_the_bound, {.name = "past-the-bound", .pool = use.pool});
        task.join();
      },
      "stack overflow in task \"past-the-bound\"");
}

}  // namespace
