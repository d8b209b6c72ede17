// heddle core: host stacks and the unwind stack of each thread
// (thread_state.hpp), and how much room the running code has left.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/arch/context.hpp"
#include "heddle/arch/sanitizer.hpp"
#include "sys/report_line.hpp"
#include "thread_state.hpp"

namespace heddle::detail {
namespace {

StackPool& host_pool() {
  static StackPool* pool = new StackPool(StackPool::Options{});  // never freed: stacks may be in use at exit
  return *pool;
}

}  // namespace

// ---- Host stacks, and the unwind stack
//
// A task on a bounded stack (TaskControl::bounded_stack) has exactly the
// room tools/heddle-stack proved its own code needs (or, for a learned size
// class, what its own code was seen to use plus a margin). The work a switch does
// for *another* task (after_switch: the park hook of whoever switched out,
// its requeue, its finish and release, and the inline wake-ups those start,
// nested up to kMaxInlineWakeDepth) is not in that proof, so it never runs
// on a bounded stack:
//  - a bounded task never enters another task from its own stack (an inline
//    wake-up, an eager spawn): it makes that call on a host stack of its
//    thread (enter_on_host_stack), and the task it enters switches back
//    there, where the switch work then runs;
//  - a dispatched task handing over to the next task of its scheduler
//    (leave) never hands over to a bounded one: it leaves it in
//    ThreadState::handoff and switches to its receiver, which finishes the
//    switch and then enters it (wake_inline);
//  - a bounded child never takes its parent's place in a work-first spawn.
// Host stacks are pool stacks with a guard page, one per nesting level (a
// task entered from a host stack may be bounded and need a host in turn).
// The level a bounded task would use is made when it is entered, on the
// enterer's stack, which is never a bounded one: nothing is allocated on a
// bounded stack. The thread's unwind stack is made then too: unwinders run
// there (run_on_unwind_stack), and so do the fatal reports a task can reach
// (run_off_task_stack), not on the task's stack.

[[noreturn]] void report_no_host_stack(TaskControl* task) noexcept {
  ReportLine()
      .append("heddle: task \"")
      .append(task->name[0] ? task->name : "(unnamed)")
      .append("\" runs on a bounded stack, but its thread's host and unwind stacks could not be allocated "
              "(out of memory)")
      .write_line();
  std::abort();
}

// Makes the unwind stack and the host level `task` would use (a bounded
// task, about to be entered). Without them its proof would not hold, so
// failing to make them (out of memory) ends the program, saying so.
__attribute__((noinline)) void ensure_thread_stacks(ThreadState& ts, TaskControl* task) noexcept {
  try {
#if !HEDDLE_ASAN && !HEDDLE_TSAN  // the sanitizers track one stack per fibre: unwinders run in place
    if (!ts.unwind_stack) ts.unwind_stack = host_pool().acquire();
#endif
    if (!ts.host_stacks) ts.host_stacks = new std::vector<Stack>;
    while (ts.host_stacks->size() <= ts.host_depth) {
      ts.host_stacks->reserve(ts.host_depth + 1);
      ts.host_stacks->push_back(host_pool().acquire());
    }
  } catch (...) {
    report_no_host_stack(task);
  }
}

void release_thread_stacks(ThreadState& ts) noexcept {
  if (ts.host_stacks) {
    for (const Stack& stack : *ts.host_stacks) host_pool().release(stack);
    delete ts.host_stacks;
    ts.host_stacks = nullptr;
  }
  if (ts.unwind_stack) host_pool().release(ts.unwind_stack);
  ts.unwind_stack = Stack{};
}

void check_room_for_nested(std::size_t bytes) {
  const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  std::uintptr_t low;
  std::size_t margin;
  if (TaskControl* t = current_task()) {
    low = reinterpret_cast<std::uintptr_t>(t->stack.usable_low());
    margin = HEDDLE_ASAN ? 8192 : 2048;
  } else {
    ThreadState& ts = thread_state();
    if (!ts.initialized) init_thread(ts);
    low = reinterpret_cast<std::uintptr_t>(ts.stack_bottom);
    margin = 64 * 1024;
  }
  const std::size_t room = here > low ? here - low : 0;
  if (room < bytes + margin) {
    throw std::length_error("heddle: nested arm stacks need " + std::to_string(bytes) + " bytes (plus a " +
                            std::to_string(margin) + "-byte margin) but the caller's stack has " +
                            std::to_string(room) + " bytes left");
  }
}


namespace {

// The top of this thread's unwind stack (see Host stacks), when the running
// code is on a task's stack and the thread has one; null otherwise. Also
// null on the unwind stack itself: whatever starts there (an unwinder for a
// throw made there, a report) runs in place, below what is already there.
// So it never needs a flag: an unwinder that lands on a handler leaves its
// frames dead, and the next use starts at the top again.
void* unwind_stack_top_from_here() noexcept {
#if HEDDLE_ASAN || HEDDLE_TSAN
  return nullptr;  // the sanitizers track one stack per fibre
#else
  if (t_current == nullptr) return nullptr;  // a thread's own stack has the room
  const ThreadState& ts = thread_state();
  if (!ts.unwind_stack) return nullptr;  // no bounded task ran on this thread
  const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  const auto low = reinterpret_cast<std::uintptr_t>(ts.unwind_stack.low);
  const auto high = reinterpret_cast<std::uintptr_t>(ts.unwind_stack.high());
  if (here >= low && here < high) return nullptr;
  return reinterpret_cast<void*>(high & ~std::uintptr_t{15});
#endif
}

}  // namespace

// The unwinder wrappers (core/detail/unwinder_wrappers.hpp) run libgcc's
// unwinder through this: about 2 KiB of stack (5 KiB with the shared
// runtime) that no bounded task's proof then has to hold.
bool run_on_unwind_stack(void (*function)(void*), void* argument) {
  void* top = unwind_stack_top_from_here();
  if (top == nullptr) return false;
  heddle_call_on_stack(argument, function, top);
  return true;
}

// Both look for the unwind stack themselves rather than through
// run_on_unwind_stack: one frame fewer on a bounded task's deepest paths.
void run_off_task_stack(void (*function)(void*), void* argument) noexcept {
  if (void* top = unwind_stack_top_from_here()) {
    heddle_call_on_stack(argument, function, top);
  } else {
    function(argument);
  }
}

void throw_off_task_stack(void (*thrower)(void*), void* argument) {
  if (void* top = unwind_stack_top_from_here()) {
    heddle_call_on_stack(argument, thrower, top);
  } else {
    thrower(argument);
  }
  __builtin_trap();  // a thrower never returns (a trap, not abort(): no call, no stack)
}

std::size_t stack_left_here() noexcept {
  const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  std::uintptr_t low;
  if (TaskControl* t = t_current) {
    low = reinterpret_cast<std::uintptr_t>(t->stack.usable_low());
  } else {
    ThreadState& ts = thread_state();
    if (!ts.initialized) init_thread(ts);
    low = reinterpret_cast<std::uintptr_t>(ts.stack_bottom);
  }
  return here > low ? here - low : 0;
}

}  // namespace heddle::detail
