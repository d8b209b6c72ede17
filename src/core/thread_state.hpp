// heddle core (internal): what each thread that runs tasks keeps.
//
// Owns: ThreadState (the per-thread switch state: the thread's own stack,
// its parker, the inline wake-up depth and deferred list, the control-block
// cache and id block, host and unwind stacks), the running task (t_current)
// and the C++ exception state's two halves of every switch.
//
// The thread-locals are defined in thread_state.cpp, constant-initialised
// (constinit: no TLS wrapper call) and hidden. Code compiled for an
// executable (PIE or not) reads them with the local-exec model, one
// %fs-relative access, as it did when they were internal to one file; for a
// shared library (-fPIC without -fPIE) the compiler picks the dynamic model
// a library needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "heddle/arch/exception_state.hpp"
#include "heddle/core/detail/control.hpp"
#include "heddle/stack/stack.hpp"

#if defined(__PIE__) || !defined(__PIC__)
#define HEDDLE_CORE_HIDDEN __attribute__((visibility("hidden"), tls_model("local-exec")))
#else
#define HEDDLE_CORE_HIDDEN __attribute__((visibility("hidden")))
#endif

namespace heddle::detail {

// The C++ exception state (arch/exception_state.hpp) belongs to whatever
// runs: a task, or the thread on its own stack. `runtime` is where the C++
// runtime keeps the running context's (set by init_thread); `own` holds the
// thread's own while a task runs on it. A switched-out task's is in its
// control block. Trivial, like t_current: plain TLS, no guard.
struct ThreadExceptions {
  arch::CxxExceptionState* runtime = nullptr;
  arch::CxxExceptionState own{};
};
extern constinit thread_local ThreadExceptions t_exceptions HEDDLE_CORE_HIDDEN;

// The two halves of every switch: the outgoing context (a task, or null for
// the thread's own stack) takes the runtime's state with it, and the
// incoming one's is put in its place. Called on the thread that switches,
// before the switch: whoever runs next finds its own state installed.
__attribute__((always_inline)) inline void save_exception_state(ThreadExceptions& te, TaskControl* from) noexcept {
  if (from) {
    from->caught_exceptions = te.runtime->caught_exceptions;
    from->uncaught_exceptions = te.runtime->uncaught_exceptions;
  } else {
    te.own = *te.runtime;
  }
}
__attribute__((always_inline)) inline void install_exception_state(ThreadExceptions& te,
                                                                   const TaskControl* to) noexcept {
  if (to) {
    te.runtime->caught_exceptions = to->caught_exceptions;
    te.runtime->uncaught_exceptions = to->uncaught_exceptions;
  } else {
    *te.runtime = te.own;
  }
}

struct ThreadState {
  bool initialized = false;
  void* base_sp = nullptr;        // the thread's own stack while a task runs
  Parker* parker = nullptr;
  int wake_depth = 0;
  TaskControl* deferred_head = nullptr;
  TaskControl* deferred_tail = nullptr;
  TaskControl* cache_head = nullptr;
  std::size_t cache_count = 0;
  std::uint64_t next_id = 0;
  std::uint64_t id_limit = 0;
  std::uint32_t thread_id = 0;    // gettid(), for TaskControl::running_thread
  const void* stack_bottom = nullptr;
  std::size_t stack_size = 0;
  void* tsan_fiber = nullptr;
  Scheduler* scheduler = nullptr;  // the scheduler whose thread this is
  // Host stacks (see "Host stacks" below): level i serves the i-th nested
  // hosting on this thread; host_depth levels are in use.
  std::vector<Stack>* host_stacks = nullptr;
  std::size_t host_depth = 0;
  // A bounded task that a dispatched task took from its scheduler to hand
  // over to directly (leave): the receiver of the switch runs it instead.
  TaskControl* handoff = nullptr;
  // Where unwinders and fatal reports run for the tasks on this thread
  // (run_on_unwind_stack, run_off_task_stack).
  Stack unwind_stack;
};

// Trivially destructible, so access needs no TLS wrapper or guard; the
// cleanup at thread exit is registered by init_thread (thread_state.cpp).
extern constinit thread_local ThreadState t_state HEDDLE_CORE_HIDDEN;

// The running task of this thread, or null on the thread's own stack.
// Trivial, so the overflow signal handler may read it.
extern constinit thread_local TaskControl* t_current HEDDLE_CORE_HIDDEN;

// Not inlined so that no caller keeps a thread-local address across a
// switch after which the task may run on another thread.
ThreadState& thread_state() noexcept;

// Makes a thread ready to run tasks (its parker, stack bounds, exception
// state, the overflow and terminate handlers): once per thread, on first use.
void init_thread(ThreadState& ts);

// std::terminate in a task names it (terminate_in_task.cpp).
void install_terminate_handler() noexcept;

// ---- Host stacks and the unwind stack (host_stacks.cpp)

// Makes the unwind stack and the host level `task` would use (a bounded
// task, about to be entered); out of memory ends the program, saying so.
void ensure_thread_stacks(ThreadState& ts, TaskControl* task) noexcept;

// True once the thread has what a bounded task entered at its current host
// depth needs: checked inline at every switch into one, made out of line.
inline bool thread_stacks_made(const ThreadState& ts) noexcept {
#if !HEDDLE_ASAN && !HEDDLE_TSAN
  if (!ts.unwind_stack) return false;
#endif
  return ts.host_stacks && ts.host_stacks->size() > ts.host_depth;
}

void release_thread_stacks(ThreadState& ts) noexcept;

// ---- Overflow reports about the running task (thread_state.cpp)

// What the SIGSEGV handler says about the running task (install_overflow_handler,
// stack/stack.hpp).
bool provide_overflow_info(OverflowReportInfo* out) noexcept;

// A canary found overwritten at a switch-out: reports from the unwind stack.
[[noreturn]] void report_canary_overflow(TaskControl* t) noexcept;

#if HEDDLE_TSAN
// TSan fibers, reused (tsan_fibers.cpp).
void take_tsan_fiber(TaskControl* t);
void give_back_tsan_fiber(TaskControl* t) noexcept;
#endif

}  // namespace heddle::detail
