// Unwinding through task stacks: exceptions reach join(), backtraces stop
// cleanly at the task entry frame.
#include <gtest/gtest.h>
#include <unwind.h>


#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/arch/context.hpp"
#include "heddle/heddle.hpp"

namespace {

struct Walk {
  int frames = 0;
  std::vector<void*> pcs;
};

_Unwind_Reason_Code collect(struct _Unwind_Context* context, void* argument) {
  auto* walk = static_cast<Walk*>(argument);
  walk->pcs.push_back(reinterpret_cast<void*>(_Unwind_GetIP(context)));
  return ++walk->frames > 256 ? _URC_NORMAL_STOP : _URC_NO_REASON;
}

__attribute__((noinline)) _Unwind_Reason_Code backtrace_here(Walk& walk) {
  return _Unwind_Backtrace(&collect, &walk);
}

TEST(Unwind, BacktraceInsideATaskEndsAtTheTaskEntry) {
  Walk walk;
  _Unwind_Reason_Code code = _URC_NO_REASON;
  auto task = heddle::spawn([&] { code = backtrace_here(walk); });
  task.join();
  EXPECT_EQ(code, _URC_END_OF_STACK) << "the walk must end at the task boundary, not run off the stack";
  ASSERT_FALSE(walk.pcs.empty());
  EXPECT_LT(walk.frames, 64) << "the walk must not continue into the spawner's stack";
  // libgcc reports one last frame with a null address when the return
  // address is undefined (as at a thread's _start); the frame before it is
  // heddle's entry trampoline, where the task's stack begins.
  ASSERT_GE(walk.pcs.size(), 2u);
  EXPECT_EQ(walk.pcs.back(), nullptr);
  const auto entry = reinterpret_cast<std::uintptr_t>(&heddle_context_entry);
  const auto last = reinterpret_cast<std::uintptr_t>(walk.pcs[walk.pcs.size() - 2]);
  EXPECT_GT(last, entry);
  EXPECT_LT(last, entry + 16) << "the outermost frame of a task must be heddle_context_entry";
}

__attribute__((noinline)) void throw_deep(int depth) {
  if (depth == 0) throw std::runtime_error("from deep inside a task");
  throw_deep(depth - 1);
  asm volatile("");
}

TEST(Unwind, ExceptionsUnwindTheTaskStackAndReachJoin) {
  int destroyed = 0;
  auto task = heddle::spawn([&] {
    struct Guard {
      int& n;
      ~Guard() { ++n; }
    } g1{destroyed}, g2{destroyed};
    throw_deep(50);
  });
  EXPECT_EQ(destroyed, 2);
  try {
    task.join();
    FAIL() << "join must rethrow";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "from deep inside a task");
  }
}

TEST(Unwind, ExceptionsCaughtInsideTheTaskAcrossSuspensions) {
  heddle::Resumer parked;
  auto task = heddle::spawn([&] {
    try {
      heddle::suspend([&](const heddle::Resumer& r) { parked = r; });
      throw_deep(10);
    } catch (const std::runtime_error&) {
      return 1;
    }
    return 0;
  });
  parked.resume();
  EXPECT_EQ(task.join(), 1);
}

}  // namespace
