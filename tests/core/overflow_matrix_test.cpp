// Overflow is never silent: for every kind of stack a task can run on and
// every shape an overflow takes, the program stops with one line naming the
// task and its spawn site. Runs in every preset, and is the promise in the
// check preset (release flags), where no assertion helps.
//
// Shapes:
//  - deep recursion of small frames;
//  - one step of a few KiB, written whole, from near the bottom;
//  - the same step with one byte in every 64 written (it may leave any word
//    of a canary zone intact, the top one included);
//  - one frame larger than the whole stack, only its far (lowest) end written.
// After the overflow the task parks and the process exits 0 at once: the
// overflow must be caught where it happens or at that switch-out, not at a
// task's end that never comes.
// The last one can escape a stack that has no guard page (its writes may land
// below the canary zone and it may return before anything faults):
// docs/misuse.md lists those cells, and they are not run here.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "heddle/arch/sanitizer.hpp"
#include "heddle/heddle.hpp"

namespace {

enum class Kind { guarded_pool, canary_pool, static_storage, span, nested_arm, slab, with_stack_segment };
enum class Shape { deep_recursion, few_kib_step, few_kib_step_sparse, frame_larger_than_the_stack };

const char* name_of(Kind kind) {
  switch (kind) {
    case Kind::guarded_pool: return "guarded_pool";
    case Kind::canary_pool: return "canary_pool";
    case Kind::static_storage: return "static_storage";
    case Kind::span: return "span";
    case Kind::nested_arm: return "nested_arm";
    case Kind::slab: return "slab";
    case Kind::with_stack_segment: return "with_stack_segment";
  }
  return "?";
}
const char* name_of(Shape shape) {
  switch (shape) {
    case Shape::deep_recursion: return "deep_recursion";
    case Shape::few_kib_step: return "few_kib_step";
    case Shape::few_kib_step_sparse: return "few_kib_step_sparse";
    case Shape::frame_larger_than_the_stack: return "frame_larger_than_the_stack";
  }
  return "?";
}

volatile int never = 0;  // a limit the recursion never reaches: only the stack's end stops it

__attribute__((noinline)) int recurse_with_small_frames(int depth) {
  volatile char frame[24];
  frame[0] = static_cast<char>(depth);
  if (depth == never - 1) return 0;
  return recurse_with_small_frames(depth + 1) + frame[0];
}

// 2.4 KiB, every byte written.
__attribute__((noinline)) int step_of_a_few_kib() {
  volatile char buffer[2400];
  std::memset(const_cast<char*>(buffer), 0x5A, sizeof buffer);
  return buffer[never];
}

// 2.4 KiB, one byte in every 64 written.
__attribute__((noinline)) int sparse_step_of_a_few_kib() {
  volatile char buffer[2400];
  for (std::size_t i = 0; i < sizeof buffer; i += 64) buffer[i] = 0x5A;
  return buffer[never];
}

// 72 KiB, more than any stack below: only its first (lowest) 4 KiB are written.
__attribute__((noinline)) int frame_larger_than_the_stack() {
  volatile char buffer[72 * 1024];
  std::memset(const_cast<char*>(buffer), 0x5A, 4096);
  return buffer[never];
}

// Goes down until less than `left` bytes of the stack remain, then runs f.
__attribute__((noinline)) int descend_then(std::size_t left, int (*f)()) {
  volatile char pad[128];
  pad[0] = 1;
  if (heddle::stack_left() > left) return descend_then(left, f) + pad[0];
  return f() + pad[0];
}

void overflow(Shape shape) {
  switch (shape) {
    case Shape::deep_recursion:
      recurse_with_small_frames(0);
      break;
    case Shape::few_kib_step:
      descend_then(600, &step_of_a_few_kib);
      break;
    case Shape::few_kib_step_sparse:
      descend_then(600, &sparse_step_of_a_few_kib);
      break;
    case Shape::frame_larger_than_the_stack:
      frame_larger_than_the_stack();
      break;
  }
}

constexpr std::size_t kStackBytes = 64 * 1024;

void run_overflow_in_a_task(Kind kind, Shape shape);

// Parks for good: the switch-out is the last chance to see the overflow.
void park_forever() {
  heddle::suspend_uninterruptible([](const heddle::Resumer&) {});
}

// Runs `shape` in a task named "victim" on a stack of `kind`, parks it and
// exits 0: only a report (a death) stops that.
void overflow_in_a_task(Kind kind, Shape shape) {
  run_overflow_in_a_task(kind, shape);
  std::_Exit(0);
}

void run_overflow_in_a_task(Kind kind, Shape shape) {
  auto body = [shape] {
    overflow(shape);
    park_forever();
  };
  heddle::SpawnOptions options{.name = "victim"};
  switch (kind) {
    case Kind::guarded_pool: {
      static heddle::StackPool pool({.stack_bytes = kStackBytes, .guard = heddle::StackPool::Guard::always});
      options.pool = &pool;
      break;
    }
    case Kind::canary_pool: {
      static heddle::StackPool pool({.stack_bytes = kStackBytes, .guard = heddle::StackPool::Guard::never});
      options.pool = &pool;
      break;
    }
    case Kind::static_storage: {
      static heddle::StaticStack<kStackBytes> storage;
      options.stack = storage.stack();
      break;
    }
    case Kind::span: {
      // Memory of the program's own, lent as stack_from_span advises: with
      // an inaccessible page below it, which heddle cannot put into memory
      // it does not own (without one, an overflow past the canary zone runs
      // into whatever the program keeps there: docs/misuse.md).
      const std::size_t page = static_cast<std::size_t>(::getpagesize());
      auto* memory = static_cast<std::byte*>(
          ::mmap(nullptr, page + kStackBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
      ::mprotect(memory + page, kStackBytes, PROT_READ | PROT_WRITE);
      options.stack = heddle::stack_from_span(std::span<std::byte>(memory + page, kStackBytes));
      break;
    }
    case Kind::slab: {
      // A sub-page stack, as a proven bound gets (this body has none: the
      // overflow stands for a bound that is wrong).
      static heddle::StackPool pool({.stack_bytes = 2048, .bounded = true});
      options.pool = &pool;
      break;
    }
    case Kind::nested_arm:
      heddle::spawn([shape] { heddle::join(heddle::nested(16 * 1024), [shape] { overflow(shape); park_forever(); }); },
                    {.name = "victim"})
          .detach();
      return;
    case Kind::with_stack_segment:
      heddle::spawn([shape] { heddle::with_stack(16 * 1024, [shape] { overflow(shape); park_forever(); }); }, options)
          .detach();
      return;
  }
  heddle::spawn(body, options).detach();
}

struct Cell {
  Kind kind;
  Shape shape;
};

std::string cell_name(const testing::TestParamInfo<Cell>& info) {
  return std::string(name_of(info.param.kind)) + "_" + name_of(info.param.shape);
}

class OverflowMatrixDeathTest : public testing::TestWithParam<Cell> {};

TEST_P(OverflowMatrixDeathTest, StopsNamingTheTaskAndItsSpawnSite) {
#if HEDDLE_ASAN
  GTEST_SKIP() << "AddressSanitizer checks these writes itself (its redzones and shadow); the check preset runs this";
#endif
  const Cell cell = GetParam();
  // The nested arm is a task of its own, spawned by join inside "victim":
  // the report names the arm (and the join's line), not its parent.
  const std::string task = cell.kind == Kind::nested_arm ? "join arm 0" : "victim";
  EXPECT_DEATH(overflow_in_a_task(cell.kind, cell.shape),
               "heddle: stack overflow in task \"" + task +
                   "\" spawned at .*overflow_matrix_test.cpp:[0-9]+, stack [0-9]+ bytes");
}

// Every kind and shape but the large frame on stacks without a guard page
// (see the top of this file).
INSTANTIATE_TEST_SUITE_P(
    EveryKindAndShape, OverflowMatrixDeathTest,
    testing::Values(Cell{Kind::guarded_pool, Shape::deep_recursion}, Cell{Kind::guarded_pool, Shape::few_kib_step},
                    Cell{Kind::guarded_pool, Shape::few_kib_step_sparse},
                    Cell{Kind::guarded_pool, Shape::frame_larger_than_the_stack},
                    Cell{Kind::canary_pool, Shape::deep_recursion}, Cell{Kind::canary_pool, Shape::few_kib_step},
                    Cell{Kind::canary_pool, Shape::few_kib_step_sparse},
                    Cell{Kind::static_storage, Shape::deep_recursion},
                    Cell{Kind::static_storage, Shape::few_kib_step},
                    Cell{Kind::static_storage, Shape::few_kib_step_sparse}, Cell{Kind::span, Shape::deep_recursion},
                    Cell{Kind::span, Shape::few_kib_step}, Cell{Kind::span, Shape::few_kib_step_sparse},
                    Cell{Kind::nested_arm, Shape::deep_recursion}, Cell{Kind::nested_arm, Shape::few_kib_step},
                    Cell{Kind::nested_arm, Shape::few_kib_step_sparse},
                    Cell{Kind::nested_arm, Shape::frame_larger_than_the_stack},
                    Cell{Kind::slab, Shape::deep_recursion}, Cell{Kind::slab, Shape::few_kib_step},
                    Cell{Kind::slab, Shape::few_kib_step_sparse},
                    Cell{Kind::with_stack_segment, Shape::deep_recursion},
                    Cell{Kind::with_stack_segment, Shape::few_kib_step},
                    Cell{Kind::with_stack_segment, Shape::few_kib_step_sparse},
                    Cell{Kind::with_stack_segment, Shape::frame_larger_than_the_stack}),
    cell_name);

// A StaticStack of 16 KiB or more has a guard page: the large frame is
// caught too.
TEST(OverflowMatrixDeathTest, AStaticStacksGuardPageCatchesAFrameLargerThanTheStack) {
#if HEDDLE_ASAN
  GTEST_SKIP() << "AddressSanitizer checks these writes itself; the check preset runs this";
#endif
  EXPECT_DEATH(overflow_in_a_task(Kind::static_storage, Shape::frame_larger_than_the_stack),
               "heddle: stack overflow in task \"victim\" spawned at .*overflow_matrix_test.cpp:[0-9]+");
}

}  // namespace
