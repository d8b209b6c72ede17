// heddle core: the per-thread state of threads that run tasks
// (thread_state.hpp): its thread-locals, their set-up on a thread's first
// use and clean-up at its exit, and what an overflow report says about the
// running task.
#include "thread_state.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "control_depot.hpp"

namespace heddle::detail {

constinit thread_local TaskControl* t_current HEDDLE_CORE_HIDDEN = nullptr;
constinit thread_local ThreadExceptions t_exceptions HEDDLE_CORE_HIDDEN;
constinit thread_local ThreadState t_state HEDDLE_CORE_HIDDEN;

namespace {

struct ThreadCleanup {
  bool armed = false;
  ~ThreadCleanup() {
    ThreadState& ts = t_state;
    if (ts.parker) give_back_thread_parker(ts.parker);
    ts.parker = nullptr;
    if (ts.cache_head) {
      TaskControl* tail = ts.cache_head;
      while (tail->next_free) tail = tail->next_free;
      give_back_controls(ts.cache_head, tail);
    }
    ts.cache_head = nullptr;
    ts.cache_count = 0;
    release_thread_stacks(ts);
  }
};
thread_local ThreadCleanup t_cleanup;

}  // namespace

__attribute__((noinline)) ThreadState& thread_state() noexcept { return t_state; }

TaskControl* current_task() noexcept { return t_current; }

void init_thread(ThreadState& ts) {
  t_cleanup.armed = true;  // registers the thread-exit cleanup
  static std::once_flag handler_once;
  std::call_once(handler_once, [] {
    install_overflow_handler(&provide_overflow_info);
    install_terminate_handler();
  });
  ensure_alternate_signal_stack();
  ts.thread_id = static_cast<std::uint32_t>(gettid());
  t_exceptions.runtime = arch::thread_exception_state();
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    ts.stack_bottom = addr;
    ts.stack_size = size;
    pthread_attr_destroy(&attr);
  }
#if HEDDLE_TSAN
  ts.tsan_fiber = __tsan_get_current_fiber();
#endif
  ts.initialized = true;
}

bool provide_overflow_info(OverflowReportInfo* out) noexcept {
  TaskControl* t = t_current;
  if (t == nullptr) return false;
  out->task_name = t->name[0] ? t->name : nullptr;
  out->file = t->spawn_file;
  out->line = t->spawn_line;
  out->stack = &t->stack;
  const ThreadState& ts = t_state;  // a signal handler: no call, the thread is not switching
  out->borrowed_stack = ts.unwind_stack ? &ts.unwind_stack : nullptr;
  return true;
}

namespace {
[[noreturn]] void report_canary_overflow_here(TaskControl* t) noexcept {
  OverflowReportInfo info;
  provide_overflow_info(&info);
  info.task_name = t->name[0] ? t->name : nullptr;
  info.file = t->spawn_file;
  info.line = t->spawn_line;
  info.stack = &t->stack;
  report_stack_overflow(info);
}

}  // namespace

// The task's stack is already overrun: report from the unwind stack.
[[noreturn]] void report_canary_overflow(TaskControl* t) noexcept {
  run_off_task_stack([](void* task) { report_canary_overflow_here(static_cast<TaskControl*>(task)); }, t);
  __builtin_unreachable();
}

}  // namespace heddle::detail
