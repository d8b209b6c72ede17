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

// ---- heddle_call_on_stack: a call on another stack that unwinders walk through

namespace {

alignas(64) std::byte other_stack[64 * 1024];
void* other_stack_top() { return other_stack + sizeof other_stack; }
bool on_other_stack(const void* address) {
  return address >= static_cast<const void*>(other_stack) && address < other_stack_top();
}

struct OnStackCall {
  int in = 0;
  int out = 0;
  bool ran_there = false;
  Walk walk;
};

TEST(CallOnStack, RunsTheFunctionOnTheGivenStackAndReturnsToTheCaller) {
  OnStackCall call;
  call.in = 20;
  heddle_call_on_stack(&call, [](void* c) {
    auto* call = static_cast<OnStackCall*>(c);
    volatile int local = call->in;
    call->ran_there = on_other_stack(const_cast<int*>(&local));
    call->out = local + 22;
  }, other_stack_top());
  EXPECT_TRUE(call.ran_there) << "the function's frame must be on the given stack";
  EXPECT_EQ(call.out, 42);
  volatile int here = 0;
  EXPECT_FALSE(on_other_stack(const_cast<int*>(&here))) << "the caller continues on its own stack";
}

struct CleanupCounter {
  int* count;
  ~CleanupCounter() { ++*count; }
};

__attribute__((noinline)) void throw_on_other_stack(int* cleanups) {
  CleanupCounter counter{cleanups};  // a cleanup on the caller's stack the unwinder must run
  heddle_call_on_stack(nullptr, [](void*) { throw std::runtime_error("thrown on the other stack"); },
                       other_stack_top());
  ADD_FAILURE() << "not reached";
}

TEST(CallOnStack, AnExceptionThrownThereUnwindsThroughIntoTheCaller) {
  int cleanups = 0;
  std::string what;
  try {
    throw_on_other_stack(&cleanups);
  } catch (const std::runtime_error& error) {
    what = error.what();
  }
  EXPECT_EQ(what, "thrown on the other stack");
  EXPECT_EQ(cleanups, 1) << "the caller's frame between the throw and the catch was unwound";
}

__attribute__((noinline)) void backtrace_from_other_stack(OnStackCall* call) {
  heddle_call_on_stack(call, [](void* c) { backtrace_here(static_cast<OnStackCall*>(c)->walk); },
                       other_stack_top());
  asm volatile("" ::: "memory");  // not a tail call: this frame stays for the walk to find
}

TEST(CallOnStack, ABacktraceThereContinuesIntoTheCallersFrames) {
  OnStackCall call;
  backtrace_from_other_stack(&call);
  const auto caller = reinterpret_cast<std::uintptr_t>(&backtrace_from_other_stack);
  bool found = false;
  for (void* pc : call.walk.pcs) {
    const auto address = reinterpret_cast<std::uintptr_t>(pc);
    if (address > caller && address < caller + 256) found = true;
  }
  EXPECT_TRUE(found) << "the walk must pass through heddle_call_on_stack into its caller";
  EXPECT_GT(call.walk.frames, 4) << "and on to the test's own frames";
}

}  // namespace
