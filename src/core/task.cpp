// heddle core: control blocks, the switch protocol, suspension, resume,
// cancellation and completion. The state machine is described in
// include/heddle/core/detail/control.hpp; every transition is made here.
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/arch/context.hpp"
#include "heddle/arch/exception_state.hpp"
#include "heddle/arch/sanitizer.hpp"
#include "heddle/core/task.hpp"
#include "heddle/core/detail/stack_profile.hpp"
#include "heddle/core/stack_sizing.hpp"
#include "heddle/core/detail/trace_hooks.hpp"
#include "heddle/core/with_stack.hpp"
#include "stack/report_line.hpp"
#include "task_report.hpp"

#if HEDDLE_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace heddle::detail {
namespace {

constexpr std::memory_order acquire = std::memory_order_acquire;
constexpr std::memory_order release = std::memory_order_release;
constexpr std::memory_order acq_rel = std::memory_order_acq_rel;
constexpr std::memory_order relaxed = std::memory_order_relaxed;

// Inline wake-ups nest on the waker's stack (a finishing task wakes its
// joiner, which finishes and wakes its own joiner...). Past this depth they
// are queued and run by the outermost wake-up instead.
constexpr int kMaxInlineWakeDepth = 8;
constexpr std::size_t kControlChunk = 64;
constexpr std::size_t kControlCacheMax = 256;
constexpr std::uint64_t kIdBlock = 1024;

std::atomic<std::uint64_t> next_id_block{1};
std::atomic<std::uint64_t> swallowed_count{0};

// ---- type-stable storage: control blocks and thread parkers are never freed.

// Control blocks are made kControlChunk at a time and never freed. Every
// chunk is also linked into control_chunks, which is the registry of
// tasks that dump_tasks walks: a live task is a block whose state word says
// so, so spawn pays nothing to be registered. A chunk is fully built before
// the release store that publishes it, and its `next` never changes after,
// so a walker that acquire-loads the head sees every block of every chunk it
// reaches initialised; it reads their fields racily (src/core/dump.cpp).
struct ControlChunk {
  TaskControl blocks[kControlChunk];
  ControlChunk* next = nullptr;  // the chunk made before this one
};

// Newest first; written under ControlDepot::mutex, read by anyone. A
// namespace-scope constant-initialised atomic (a plain pointer in memory),
// so a debugger finds it without running code (heddle_debug_descriptor).
constinit std::atomic<ControlChunk*> control_chunks{nullptr};

struct ControlDepot {
  std::mutex mutex;
  TaskControl* free_head = nullptr;
  std::vector<Parker*> thread_parkers;

  void give_back(TaskControl* head, TaskControl* tail) {
    std::lock_guard lock(mutex);
    tail->next_free = free_head;
    free_head = head;
  }
  // Takes up to kControlChunk blocks, making new ones when the depot is empty.
  TaskControl* take_batch(std::size_t& count) {
    std::lock_guard lock(mutex);
    if (free_head == nullptr) {
      auto* chunk = new ControlChunk;  // never freed: type-stable
      TaskControl* blocks = chunk->blocks;
      for (std::size_t i = 0; i < kControlChunk; ++i) {
        blocks[i].parker.task = &blocks[i];
        blocks[i].next_free = i + 1 < kControlChunk ? &blocks[i + 1] : nullptr;
      }
      // Publish for for_each_control_block. Writers hold the mutex, so a
      // plain load and a release store suffice (no read-modify-write).
      chunk->next = control_chunks.load(relaxed);
      control_chunks.store(chunk, release);
      free_head = blocks;
    }
    TaskControl* head = free_head;
    TaskControl* tail = head;
    count = 1;
    while (count < kControlChunk && tail->next_free) {
      tail = tail->next_free;
      ++count;
    }
    free_head = tail->next_free;
    tail->next_free = nullptr;
    return head;
  }
  Parker* take_thread_parker() {
    std::lock_guard lock(mutex);
    if (thread_parkers.empty()) return new Parker;  // never freed: type-stable
    Parker* p = thread_parkers.back();
    thread_parkers.pop_back();
    return p;
  }
  void give_back_thread_parker(Parker* p) {
    std::lock_guard lock(mutex);
    thread_parkers.push_back(p);
  }
};

ControlDepot& depot() {
  static auto* d = new ControlDepot;  // outlives every thread's exit
  return *d;
}

// The running task of this thread. Trivial, so the overflow signal handler
// may read it.
thread_local TaskControl* t_current = nullptr;

// The C++ exception state (arch/exception_state.hpp) belongs to whatever
// runs: a task, or the thread on its own stack. `runtime` is where the C++
// runtime keeps the running context's (set by init_thread); `own` holds the
// thread's own while a task runs on it. A switched-out task's is in its
// control block. Trivial, like t_current: plain TLS, no guard.
struct ThreadExceptions {
  arch::CxxExceptionState* runtime = nullptr;
  arch::CxxExceptionState own;
};
thread_local ThreadExceptions t_exceptions;

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

void release_thread_stacks(ThreadState& ts) noexcept;

// Trivially destructible, so access needs no TLS wrapper or guard; the
// cleanup at thread exit is registered by init_thread through ThreadCleanup.
thread_local ThreadState t_state;

struct ThreadCleanup {
  bool armed = false;
  ~ThreadCleanup() {
    ThreadState& ts = t_state;
    if (ts.parker) depot().give_back_thread_parker(ts.parker);
    ts.parker = nullptr;
    if (ts.cache_head) {
      TaskControl* tail = ts.cache_head;
      while (tail->next_free) tail = tail->next_free;
      depot().give_back(ts.cache_head, tail);
    }
    ts.cache_head = nullptr;
    ts.cache_count = 0;
    release_thread_stacks(ts);
  }
};
thread_local ThreadCleanup t_cleanup;

#if HEDDLE_TSAN
// TSan fibers, reused. A TSan fiber is a whole ThreadState (over 512 KiB,
// mostly its shadow call stack) that __tsan_create_fiber maps and zeroes and
// __tsan_destroy_fiber unmaps: on a VM with slow page faults that was over
// 1 ms per spawn, 90% of a fork-join test's time. So a finished task's fiber
// goes to a small per-thread cache and the next spawn on that thread takes
// it. A reused fiber keeps its happens-before history, which can only hide a
// race between a finished task and a later one, never report a false one.
// It also keeps the shadow-stack entries of the frames its task never
// returned from (task_entry and the final switch), so a fiber is destroyed
// after kTsanFiberUses tasks, long before those could fill the shadow stack.
constexpr std::size_t kTsanFiberCacheSize = 64;
constexpr std::uint32_t kTsanFiberUses = 256;
struct TsanFiberCache {
  void* fibers[kTsanFiberCacheSize];
  std::uint32_t uses[kTsanFiberCacheSize];
  std::size_t count = 0;
  ~TsanFiberCache() {
    while (count > 0) __tsan_destroy_fiber(fibers[--count]);
  }
};
thread_local TsanFiberCache t_tsan_fibers;

void take_tsan_fiber(TaskControl* t) {
  TsanFiberCache& cache = t_tsan_fibers;
  if (cache.count > 0) {
    --cache.count;
    t->tsan_fiber = cache.fibers[cache.count];
    t->tsan_fiber_uses = cache.uses[cache.count] + 1;
  } else {
    t->tsan_fiber = __tsan_create_fiber(0);
    t->tsan_fiber_uses = 1;
  }
}

// Called off the task's fiber (TSan forbids destroying the current one).
void give_back_tsan_fiber(TaskControl* t) noexcept {
  TsanFiberCache& cache = t_tsan_fibers;
  if (cache.count < kTsanFiberCacheSize && t->tsan_fiber_uses < kTsanFiberUses) {
    cache.fibers[cache.count] = t->tsan_fiber;
    cache.uses[cache.count] = t->tsan_fiber_uses;
    ++cache.count;
  } else {
    __tsan_destroy_fiber(t->tsan_fiber);
  }
  t->tsan_fiber = nullptr;
}
#endif

// Not inlined so that no caller keeps a thread-local address across a
// switch after which the task may run on another thread.
__attribute__((noinline)) ThreadState& thread_state() noexcept { return t_state; }

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

StackPool& host_pool() {
  static StackPool* pool = new StackPool(StackPool::Options{});  // never freed: stacks may be in use at exit
  return *pool;
}

[[noreturn]] void report_no_host_stack(TaskControl* task) noexcept;

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

// True once the thread has what a bounded task entered at its current host
// depth needs: checked inline at every switch into one, made out of line.
inline bool thread_stacks_made(const ThreadState& ts) noexcept {
#if !HEDDLE_ASAN && !HEDDLE_TSAN
  if (!ts.unwind_stack) return false;
#endif
  return ts.host_stacks && ts.host_stacks->size() > ts.host_depth;
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

// ---- std::terminate in a task
//
// A throw that cannot be handled in a task (a destructor that throws while
// the task unwinds from Cancelled, a throw out of a noexcept function) ends
// in std::terminate, whose message names the exception but not the task.
// heddle installs a terminate handler, once, when the first thread starts
// using tasks: when the terminating thread runs a task it writes one line
// naming it, then calls the handler that was installed before (the C++
// runtime's verbose handler by default, which names the exception's type
// and aborts). An exception captures the terminate handler current when it
// is thrown, so every throw after the first spawn reaches this one. A
// handler the program installs later replaces it (std::set_terminate).

std::atomic<std::terminate_handler> previous_terminate_handler{nullptr};

void write_terminate_in_task(void* task) {
  const auto* t = static_cast<const TaskControl*>(task);
  ReportLine line;
  append_task(line.append("heddle: "), *t).append(": terminate called");
  if (std::exception_ptr active = std::current_exception()) {
    try {
      std::rethrow_exception(active);
    } catch (const std::exception& error) {
      line.append(" after throwing an exception: ").append(error.what());
    } catch (...) {
      line.append(" after throwing an exception that is not a std::exception");
    }
  } else {
    line.append(" without an active exception");
  }
  line.write_line();
}

[[noreturn]] void terminate_naming_the_task() noexcept {
  if (TaskControl* t = t_current) run_off_task_stack(&write_terminate_in_task, t);
  if (std::terminate_handler previous = previous_terminate_handler.load(acquire)) previous();
  std::abort();
}

void install_terminate_handler() noexcept {
  previous_terminate_handler.store(std::set_terminate(&terminate_naming_the_task), release);
}

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

[[noreturn]] void report_canary_overflow_here(TaskControl* t) noexcept {
  OverflowReportInfo info;
  provide_overflow_info(&info);
  info.task_name = t->name[0] ? t->name : nullptr;
  info.file = t->spawn_file;
  info.line = t->spawn_line;
  info.stack = &t->stack;
  report_stack_overflow(info);
}

// The task's stack is already overrun: report from the unwind stack.
[[noreturn]] void report_canary_overflow(TaskControl* t) noexcept {
  run_off_task_stack([](void* task) { report_canary_overflow_here(static_cast<TaskControl*>(task)); }, t);
  __builtin_unreachable();
}

// At every switch-out (and when the task finishes) the whole canary zone is
// compared: an overflow may have written any part of it, and a frame that
// stepped past the top word leaves that word intact.
inline void check_canary(TaskControl* t) noexcept {
  if (!canary_intact(t->stack)) [[unlikely]] report_canary_overflow(t);
}

__attribute__((noinline)) void after_switch(TaskControl* from);  // a node of its own for tools/heddle-stack

// The next runnable task of a dispatched task's scheduler that it may hand
// over to directly (leave), or null. A bounded one is left to the receiver
// instead (ThreadState::handoff): it enters it after the switch's work, so
// that the work never runs on the bounded stack (Host stacks). Out of line:
// leave is inlined into every switch-out, and sanitizer builds give each
// inlined local a slot of its own.
__attribute__((noinline)) TaskControl* take_next_to_hand_over(TaskControl* t) {
  TaskControl* next = t->scheduler->take_next_here();
  if (next && next->bounded_stack) [[unlikely]] {
    thread_state().handoff = next;
    return nullptr;
  }
  return next;
}

// Switches from the running context into `t`, which the caller has claimed
// (its phase is running). Returns when `t` switches out again, then finishes
// whatever that switch asked for (park hooks, or completion). `dispatched`:
// entered by its scheduler's dispatcher (so it may hand over to the next
// runnable task directly when it stops).
__attribute__((always_inline)) inline void enter(TaskControl* t, bool dispatched) {
  ThreadState& ts = thread_state();
  if (!ts.initialized) init_thread(ts);
  if (t->bounded_stack && !thread_stacks_made(ts)) [[unlikely]] ensure_thread_stacks(ts, t);  // see "Host stacks"
  TaskControl* self = t_current;
  void** save = self ? &self->saved_sp : &ts.base_sp;
  t->return_slot = save;
  t->resumed_from = self;
  t->dispatched = dispatched;
  t->running_thread.store(ts.thread_id, relaxed);
  t_current = t;
  ThreadExceptions& exceptions = t_exceptions;
  save_exception_state(exceptions, self);
  install_exception_state(exceptions, t);
  trace_event(TraceKind::resume, t);
#if HEDDLE_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, t->stack.low, t->stack.size);
#endif
#if HEDDLE_TSAN
  __tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
  void* message = arch::switch_context(save, t->saved_sp, nullptr);
#if HEDDLE_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
  if (message) after_switch(static_cast<TaskControl*>(message));
}

// Switches the running task `t` out: to the next runnable task of its
// scheduler when it was dispatched and one is ready (the next task inherits
// t's way back to the dispatcher), otherwise back to whoever resumed it.
// Either way the receiver finishes what t's switch asked for (after_switch).
// Returns when `t` is resumed (never, when it is exiting), after finishing
// what the switch into it asked for.
__attribute__((always_inline)) inline void leave(TaskControl* t, TaskControl* next = nullptr) {
  trace_event(t->exiting ? TraceKind::finish : TraceKind::suspend, t);
  // A bounded task asks for no next task: take_next_here (a Pool's looks
  // for work, steals, wakes workers) is more than its proof holds, and its
  // dispatcher asks instead, on the thread's stack.
  if (!next && t->dispatched && t->scheduler && !t->bounded_stack) next = take_next_to_hand_over(t);
  void* target_sp;
#if HEDDLE_ASAN || HEDDLE_TSAN
  ThreadState& ts = thread_state();
#endif
  const std::uint32_t thread_id = t->running_thread.load(relaxed);
  t->running_thread.store(0, relaxed);  // before the switch: once out, others may run it
  ThreadExceptions& exceptions = t_exceptions;
  save_exception_state(exceptions, t);  // (an exiting task's is empty and never read again)
  if (next) {
    next->return_slot = t->return_slot;
    next->resumed_from = t->resumed_from;
    next->dispatched = true;
    next->running_thread.store(thread_id, relaxed);
    t_current = next;
    install_exception_state(exceptions, next);
    trace_event(TraceKind::resume, next);
    target_sp = next->saved_sp;
#if HEDDLE_ASAN
    __sanitizer_start_switch_fiber(t->exiting ? nullptr : &t->asan_fake_stack, next->stack.low, next->stack.size);
#endif
#if HEDDLE_TSAN
    __tsan_switch_to_fiber(next->tsan_fiber, 0);
#endif
  } else {
    TaskControl* back = t->resumed_from;
    t_current = back;
    install_exception_state(exceptions, back);
    target_sp = *t->return_slot;
#if HEDDLE_ASAN
    const void* bottom = back ? static_cast<const void*>(back->stack.low) : ts.stack_bottom;
    std::size_t size = back ? back->stack.size : ts.stack_size;
    __sanitizer_start_switch_fiber(t->exiting ? nullptr : &t->asan_fake_stack, bottom, size);
#endif
#if HEDDLE_TSAN
    __tsan_switch_to_fiber(back ? back->tsan_fiber : ts.tsan_fiber, 0);
#endif
  }
  void* message = arch::switch_context(&t->saved_sp, target_sp, t);
#if HEDDLE_ASAN
  __sanitizer_finish_switch_fiber(t->asan_fake_stack, nullptr, nullptr);
#endif
  // Resumed by a task that handed over to this one directly.
  if (message) after_switch(static_cast<TaskControl*>(message));
}

void drain_deferred(ThreadState& ts) {
  while (TaskControl* t = ts.deferred_head) {
    ts.deferred_head = t->next_deferred;
    if (!ts.deferred_head) ts.deferred_tail = nullptr;
    t->next_deferred = nullptr;
    enter(t, false);
  }
}

void enter_on_host_stack(TaskControl* self, TaskControl* t, bool dispatched, bool spawn);

// Enters the bounded tasks that dispatched ones took to hand over to
// (take_next_to_hand_over), now that their switches' work is done. Out of
// line: wake_inline nests, and a second inlined enter would widen every
// level's frame in sanitizer builds.
__attribute__((noinline)) void enter_handoffs(ThreadState& ts) {
  while (TaskControl* next = ts.handoff) {
    ts.handoff = nullptr;
    enter(next, true);
  }
}

// Runs a claimed task now, on this thread (the no-scheduler wake policy,
// and a dispatcher's run).
void wake_inline(TaskControl* t, bool dispatched = false) {
  ThreadState& ts = thread_state();
  if (ts.wake_depth >= kMaxInlineWakeDepth) {
    t->next_deferred = nullptr;
    if (ts.deferred_tail) ts.deferred_tail->next_deferred = t; else ts.deferred_head = t;
    ts.deferred_tail = t;
    return;
  }
  if (TaskControl* self = t_current; self && self->bounded_stack && !self->on_host_stack) [[unlikely]] {
    enter_on_host_stack(self, t, dispatched, false);
    return;
  }
  ++ts.wake_depth;
  enter(t, dispatched);
  if (ts.handoff) [[unlikely]] enter_handoffs(ts);
  if (ts.wake_depth == 1) drain_deferred(ts);
  --ts.wake_depth;
}

struct HostCall {
  TaskControl* task;
  bool dispatched;
  bool spawn;  // start a spawned task (enter), not wake one (wake_inline)
};

void run_host_call(void* context) {
  auto* call = static_cast<HostCall*>(context);
  if (call->spawn) {
    enter(call->task, false);
  } else {
    wake_inline(call->task, call->dispatched);
  }
}

[[noreturn]] void report_no_host_stack(TaskControl* task) noexcept {
  ReportLine()
      .append("heddle: task \"")
      .append(task->name[0] ? task->name : "(unnamed)")
      .append("\" runs on a bounded stack, but its thread's host and unwind stacks could not be allocated "
              "(out of memory)")
      .write_line();
  std::abort();
}

// A bounded task `self` enters `t` on a host stack of its thread, not its
// own (see "Host stacks"); returns when t has switched back and the switch's
// work is done. self stays on this thread throughout: it never suspends.
__attribute__((noinline)) void enter_on_host_stack(TaskControl* self, TaskControl* t, bool dispatched, bool spawn) {
  ThreadState& ts = thread_state();
  const Stack host = (*ts.host_stacks)[ts.host_depth];  // a copy: deeper levels may grow the vector
  struct Level {
    ThreadState& ts;
    TaskControl* self;
    Level(ThreadState& ts, TaskControl* self) : ts(ts), self(self) {
      ++ts.host_depth;
      self->on_host_stack = true;
    }
    ~Level() {
      self->on_host_stack = false;
      --ts.host_depth;
    }
  } level(ts, self);
#if HEDDLE_ASAN
  // Nothing lives on this level now: poison left by frames that switched
  // away instead of returning (the last use's segment entry) is stale.
  __asan_unpoison_memory_region(host.low, host.size);
#endif
  HostCall call{t, dispatched, spawn};
  run_on_stack(host, &run_host_call, &call);
}

// Claims a parking/parked task for running: clears phase and pending bit.
std::uint64_t running_state(std::uint64_t s) noexcept { return s & ~(kPhaseMask | kResumePending); }

void complete_park(TaskControl* t) {
  std::uint64_t s = t->state.load(relaxed);
  const Resumer resumer(t, generation_of(s));
  if (t->on_suspend) {
    try {
      t->on_suspend(t->hook_context, resumer);
    } catch (...) {
      // Held in the frame's error slot, which is empty while the task runs
      // (run() fills it only once the callable has ended), until the task
      // rethrows it at its suspension (rethrow_hook_error).
      t->frame->error = std::current_exception();
      s = t->state.load(relaxed);
      while (!t->state.compare_exchange_weak(s, running_state(s), acq_rel, relaxed)) {
      }
      t->wake_reason = WakeReason::hook_failed;
      run_claimed(t);
      return;
    }
  }
  s = t->state.load(acquire);
  for (;;) {
    if (s & kResumePending) {
      if (t->state.compare_exchange_weak(s, running_state(s), acq_rel, acquire)) {
        t->wake_reason = WakeReason::resumed;
        run_claimed(t);
        return;
      }
    } else if ((s & kCancelRequested) && t->interruptible.load(relaxed)) {
      if (t->state.compare_exchange_weak(s, running_state(s), acq_rel, acquire)) {
        if (t->on_cancel) t->on_cancel(t->hook_context);
        t->wake_reason = WakeReason::cancelled;
        run_claimed(t);
        return;
      }
    } else {
      const std::uint64_t parked = (s & ~kPhaseMask) | static_cast<std::uint64_t>(Phase::parked);
      if (t->state.compare_exchange_weak(s, parked, acq_rel, acquire)) return;
    }
  }
}

// A detached task that ended with an exception other than Cancelled has
// nobody to give it to: it goes to the unhandled-exception handler
// (core/unhandled_exception.hpp) before the storage is released. Two loads
// on the release of a detached task; the report is out of line.
inline void report_if_unhandled(TaskControl* t) noexcept {
  if (t->frame && t->frame->error && !t->ended_by_cancel) [[unlikely]] report_unhandled_exception(t);
}

void push_finished_to_group(TaskControl* t) noexcept {
  GroupLink* group = t->group;
  Parker* owner = group->owner;  // read first: after the push `group` may be gone
  TaskControl* head = group->finished_head.load(relaxed);
  do {
    t->group_next_finished = head;
  } while (!group->finished_head.compare_exchange_weak(head, t, release, relaxed));
  owner->unpark();  // type-stable: harmless if the owner already left
}

void finalize(TaskControl* t) {
#if HEDDLE_TSAN
  give_back_tsan_fiber(t);
#endif
  // Read before publishing "finished": a joiner that sees it may release
  // and recycle the control block at once.
  const bool in_group = t->ownership == TaskControl::Ownership::group;
  if (Scheduler* scheduler = t->scheduler) scheduler->task_finished(t);
  // running -> finished with the next generation (stale Resumers fail).
  const std::uint64_t before =
      t->state.fetch_add(kGenerationUnit + static_cast<std::uint64_t>(Phase::finished), acq_rel);
  if (in_group) {
    push_finished_to_group(t);  // the group owner releases it
  } else if (before & kDetached) {
    report_if_unhandled(t);
    release_task(t);  // nobody else will
  } else if (before & kJoinerWaiting) {
    // The joiner registered its parker before setting the bit. If it has
    // already seen "finished" on its own and left, this reads a recycled
    // (type-stable) block: at worst a spurious unpark.
    if (Parker* joiner = t->joiner.load(relaxed)) joiner->unpark();
  }
}

void after_switch(TaskControl* from) {
  if (from->exiting) {
    finalize(from);
  } else if (from->yielding) {
    from->yielding = false;  // still running: it only goes back on its scheduler's queue
    from->wake_reason = WakeReason::resumed;
    const bool spawned = std::exchange(from->spawning, false);
    if (Scheduler* scheduler = from->scheduler) {
      scheduler->requeue(from, spawned ? Scheduler::Requeue::spawned : Scheduler::Requeue::yielded);
    } else {
      run_claimed(from);
    }
  } else {
    complete_park(from);
  }
}

void report_swallowed_cancel(TaskControl* t) noexcept {
  swallowed_count.fetch_add(1, relaxed);
  ReportLine line;
  append_task(line.append("heddle: "), *t)
      .append(" caught heddle::Cancelled and finished normally; rethrow Cancelled from catch blocks")
      .write_line();
#ifndef NDEBUG
  std::abort();
#endif
}

__attribute__((noinline)) void report_swallowed_cancel_off_stack(TaskControl* t) noexcept {
  run_off_task_stack([](void* task) { report_swallowed_cancel(static_cast<TaskControl*>(task)); }, t);
}

[[noreturn]] void task_entry(void* transfer, void* argument) noexcept {
  auto* t = static_cast<TaskControl*>(argument);
#if HEDDLE_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
  // Started by a task that handed over to this one directly.
  if (transfer) after_switch(static_cast<TaskControl*>(transfer));
  t->frame->run();
  if (t->locals) destroy_task_locals(t);  // on the task's own stack: destructors may suspend
  if (t->cancel_delivered && !t->frame->error) report_swallowed_cancel_off_stack(t);
  t->exiting = true;
  if (!canary_intact(t->stack)) report_canary_overflow(t);
  leave(t);
  __builtin_unreachable();
}

TaskControl* pop_control(ThreadState& ts) {
  if (!ts.cache_head) {
    std::size_t count = 0;
    ts.cache_head = depot().take_batch(count);
    ts.cache_count = count;
  }
  TaskControl* t = ts.cache_head;
  ts.cache_head = t->next_free;
  --ts.cache_count;
  t->next_free = nullptr;
  return t;
}

void recycle_control(TaskControl* t) noexcept {
  ThreadState& ts = thread_state();
  t->frame = nullptr;
  t->group = nullptr;
  t->on_suspend = nullptr;
  t->on_cancel = nullptr;
  t->hook_context = nullptr;
  t->next_free = ts.cache_head;
  ts.cache_head = t;
  if (++ts.cache_count > kControlCacheMax) {
    // Give half back so blocks freed on one thread reach the others.
    TaskControl* tail = ts.cache_head;
    for (std::size_t i = 1; i < kControlCacheMax / 2; ++i) tail = tail->next_free;
    TaskControl* rest = tail->next_free;
    tail->next_free = nullptr;
    TaskControl* rest_tail = rest;
    while (rest_tail->next_free) rest_tail = rest_tail->next_free;
    depot().give_back(rest, rest_tail);
    ts.cache_count = kControlCacheMax / 2;
  }
}

std::uint64_t next_task_id(ThreadState& ts) {
  if (ts.next_id == ts.id_limit) {
    ts.next_id = next_id_block.fetch_add(kIdBlock, relaxed);
    ts.id_limit = ts.next_id + kIdBlock;
  }
  return ts.next_id++;
}

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void futex_wake(std::atomic<std::uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

}  // namespace


TaskControl* current_task() noexcept { return t_current; }

namespace {
// A thread's own parker, made on first use (on the thread's stack: no task
// runs here when current_parker asks for it).
__attribute__((noinline)) Parker& thread_parker() {
  ThreadState& ts = thread_state();
  if (!ts.initialized) init_thread(ts);
  if (!ts.parker) ts.parker = depot().take_thread_parker();
  return *ts.parker;
}
}  // namespace

Parker& current_parker() {
  if (TaskControl* t = t_current) return t->parker;
  return thread_parker();
}

// ---- Parker

void Parker::park(bool interruptible, const char* leaf) {
  std::uint32_t token = 1;
  if (state.compare_exchange_strong(token, 0, acq_rel, relaxed)) return;
  if (task == nullptr) {
    std::uint32_t empty = 0;
    if (!state.compare_exchange_strong(empty, 2, acq_rel, acquire)) {
      state.store(0, relaxed);  // a token arrived meanwhile
      return;
    }
    while (state.load(acquire) == 2) futex_wait(&state, 2);
    token = 1;
    state.compare_exchange_strong(token, 0, acq_rel, relaxed);
    return;
  }
  auto on_suspend = [this](const Resumer& r) {
    waiting_generation = r.generation();
    std::uint32_t empty = 0;
    if (!state.compare_exchange_strong(empty, 2, acq_rel, acquire)) {
      state.store(0, relaxed);  // the token arrived while switching out: wake at once
      r.resume();
    }
  };
  auto on_cancel = [this]() noexcept {
    std::uint32_t waiting = 2;
    state.compare_exchange_strong(waiting, 0, acq_rel, relaxed);
  };
  const WakeReason reason = suspend_with_hooks(on_suspend, &on_cancel, interruptible, leaf);
  token = 1;
  state.compare_exchange_strong(token, 0, acq_rel, relaxed);
  finish_suspension(reason);
}

bool Parker::park_until(std::int64_t deadline_ns) {
  if (task) throw std::logic_error("heddle: Parker::park_until is for threads; tasks wait with a timer");
  std::uint32_t token = 1;
  if (state.compare_exchange_strong(token, 0, acq_rel, relaxed)) return true;
  std::uint32_t empty = 0;
  if (!state.compare_exchange_strong(empty, 2, acq_rel, acquire)) {
    state.store(0, relaxed);
    return true;
  }
  const timespec deadline{static_cast<time_t>(deadline_ns / 1'000'000'000),
                          static_cast<long>(deadline_ns % 1'000'000'000)};
  while (state.load(acquire) == 2) {
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline.
    const long r = syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&state), FUTEX_WAIT_BITSET_PRIVATE, 2,
                           &deadline, nullptr, FUTEX_BITSET_MATCH_ANY);
    if (r != 0 && errno == ETIMEDOUT) {
      std::uint32_t waiting = 2;
      if (state.compare_exchange_strong(waiting, 0, acq_rel, acquire)) return false;
      break;  // an unpark arrived just now
    }
  }
  token = 1;
  state.compare_exchange_strong(token, 0, acq_rel, relaxed);
  return true;
}

void Parker::unpark() noexcept {
  if (state.exchange(1, acq_rel) != 2) return;
  if (task) {
    wake_task(task, waiting_generation);
  } else {
    futex_wake(&state);
  }
}

// ---- spawning

TaskControl* acquire_control(const char* name, const Stack& given_stack, StackPool* pool, bool paint_stack,
                             Scheduler* scheduler, const SourceLocation& site, LearnedStack* learned) {
  ThreadState& ts = thread_state();
  if (!ts.initialized) init_thread(ts);
  Stack stack;
  if (given_stack) {
    stack = given_stack;  // armed by stack_from_span; checked when each task on it finishes
  } else {
    stack = (pool ? *pool : StackPool::default_pool()).acquire();
  }
  if (paint_stack && !stack.painted) paint(stack);
  TaskControl* t = pop_control(ts);
  t->stack = stack;
  t->bounded_stack = stack.pool && stack.pool->options().bounded;
  t->on_host_stack = false;
  t->learned = learned;
  if (learned) learned->measuring.fetch_add(1, relaxed);  // until record_learned_stack
  t->id = next_task_id(ts);
  if (name) {
    std::strncpy(t->name, name, sizeof t->name - 1);
    t->name[sizeof t->name - 1] = '\0';
  } else {
    t->name[0] = '\0';
  }
  // Atomic: a Pool's shutdown reads it from another thread while the block
  // may be reused (cancel_if_scheduler).
  std::atomic_ref<Scheduler*>(t->scheduler)
      .store(scheduler ? scheduler : (t_current ? t_current->scheduler : ts.scheduler), relaxed);
  t->scheduler_word = 0;
  t->locals = nullptr;
  t->spawn_file = site.file_name();
  t->spawn_line = site.line();
  t->spawn_function = site.function_name();
  t->ownership = TaskControl::Ownership::handle;
  t->joiner.store(nullptr, relaxed);
  t->ownership = TaskControl::Ownership::handle;
  t->exiting = false;
  t->cancel_delivered = false;
  t->cancelled_by_owner = false;
  t->ended_by_cancel = false;
  t->caught_exceptions = nullptr;  // a task starts with nothing caught and nothing unwinding
  t->uncaught_exceptions = 0;
  t->interruptible.store(true, relaxed);
  t->parker.state.store(0, relaxed);
  // Keep the generation growing across lives so old Resumers stay stale.
  const std::uint64_t generation = generation_of(t->state.load(relaxed)) + 1;
  t->state.store(generation * kGenerationUnit | static_cast<std::uint64_t>(Phase::running), release);
  return t;
}

void* frame_address(TaskControl* t, std::size_t size, std::size_t align) {
  const auto high = reinterpret_cast<std::uintptr_t>(t->stack.high());
  const auto low = reinterpret_cast<std::uintptr_t>(t->stack.usable_low());
  // The entry frame and a first call. A sub-page slab stack was sized by a
  // proof that already counts both (any other stack, bounded or not, has a
  // page or more, where the first call's 512 bytes always fit below a
  // bound). Decided from the kind, not the pool's options: no pointer chase
  // on every spawn.
  const std::size_t reserve = arch::kEntryFrameBytes + (t->stack.kind == StackKind::slab ? 0 : 512);
  const std::uintptr_t address = (high - size) & ~(std::uintptr_t{align} - 1);
  if (size > high - low || address < low + reserve) {
    throw std::invalid_argument("heddle::spawn: the task's callable and result (" + std::to_string(size) +
                                " bytes) do not fit on a stack of " + std::to_string(t->stack.size) + " bytes");
  }
  return reinterpret_cast<void*>(address);
}

void abandon_control(TaskControl* t) noexcept {
  t->frame = nullptr;
  // Never started: mark it finished (same generation) so the registry does not list it.
  t->state.store((t->state.load(relaxed) & ~kPhaseMask) | static_cast<std::uint64_t>(Phase::finished), release);
  release_task(t);
}

void start_task(TaskControl* t, void* context_top) {
  t->saved_sp = arch::make_context(context_top, &task_entry, t);
  trace_event(TraceKind::spawn, t);
#if HEDDLE_TSAN
  take_tsan_fiber(t);
#endif
  Scheduler* scheduler = t->scheduler;
  if (scheduler) scheduler->task_started(t);
  if (scheduler && !scheduler->on_scheduler_thread()) {
    scheduler->schedule(t);  // a task only runs on its scheduler's threads: it starts there
    return;
  }
  TaskControl* parent = t_current;
  if (scheduler && parent && parent->scheduler == scheduler && parent->dispatched &&
      scheduler->spawns_work_first() && !t->bounded_stack) {
    // Work-first: the child takes the parent's place on this thread (and its
    // way back to the dispatcher); whoever receives the switch hands the
    // parent's continuation to requeue(spawned), where other threads may
    // steal it. Returns when the parent runs again, on whichever thread.
    parent->yielding = true;
    parent->spawning = true;
    check_canary(parent);
    leave(parent, t);
    return;
  }
  if (parent && parent->bounded_stack && !parent->on_host_stack) [[unlikely]] {
    enter_on_host_stack(parent, t, false, true);
    return;
  }
  enter(t, false);
}

void for_each_control_block(void (*visit)(TaskControl*, void*), void* context) noexcept {
  for (ControlChunk* chunk = control_chunks.load(acquire); chunk; chunk = chunk->next) {
    for (TaskControl& block : chunk->blocks) visit(&block, context);
  }
}

void release_task(TaskControl* t) noexcept {
  if (t->frame) t->frame->destroy();
  if (stack_profile_on.load(relaxed)) [[unlikely]] record_stack_use(t);
  if (t->learned) [[unlikely]] record_learned_stack(*t->learned, high_water(t->stack).bytes);
  if (t->stack.pool) t->stack.pool->release(t->stack);
  t->stack = Stack{};
  recycle_control(t);
}

void attach_to_group(TaskControl* t, GroupLink* group, std::size_t index) noexcept {
  t->ownership = TaskControl::Ownership::group;
  t->group = group;
  t->group_index = static_cast<std::uint32_t>(index);  // an arm's position in a join/select: a handful
}

TaskControl* take_finished(GroupLink& group) noexcept {
  return reversed<&TaskControl::group_next_finished>(group.finished_head.exchange(nullptr, acquire));
}

// ---- suspension, resume, cancellation

WakeReason suspend_current(void (*on_suspend)(void*, const Resumer&), void (*on_cancel)(void*) noexcept,
                           void* context, bool interruptible, const char* leaf) {
  TaskControl* t = t_current;
  if (t == nullptr) throw_logic("heddle::suspend: called outside a task (on a thread's own stack)");
  std::uint64_t s = t->state.load(relaxed);
  if (interruptible && (s & kCancelRequested)) {
    t->cancel_delivered = true;
    return WakeReason::cancelled;
  }
  t->on_suspend = on_suspend;
  t->on_cancel = on_cancel;
  t->hook_context = context;
  t->leaf = leaf;  // published by the release below, with the parking generation
  t->interruptible.store(interruptible, relaxed);
  // running -> parking with the next generation. Only the task itself moves
  // it out of running; others may only set the cancel bit meanwhile, which
  // an addition preserves.
  t->state.fetch_add(kGenerationUnit + static_cast<std::uint64_t>(Phase::parking), release);
  check_canary(t);
  leave(t);
  const WakeReason reason = t->wake_reason;
  if (reason == WakeReason::cancelled) t->cancel_delivered = true;
  return reason;
}

Claim claim_task(TaskControl* t, std::uint64_t generation) noexcept {
  std::uint64_t s = t->state.load(acquire);
  for (;;) {
    if (generation_of(s) != generation) return Claim::lost;
    const Phase phase = phase_of(s);
    if (phase == Phase::parked) {
      if (t->state.compare_exchange_weak(s, running_state(s), acq_rel, acquire)) {
        t->wake_reason = WakeReason::resumed;
        return Claim::claimed;
      }
    } else if (phase == Phase::parking && !(s & kResumePending)) {
      if (t->state.compare_exchange_weak(s, s | kResumePending, acq_rel, acquire)) return Claim::pending;
    } else {
      return Claim::lost;
    }
  }
}

bool resume_task(TaskControl* t, std::uint64_t generation) {
  const Claim claim = claim_task(t, generation);
  if (claim != Claim::claimed) return claim == Claim::pending;
  Scheduler* scheduler = t->scheduler;
  if (scheduler && !scheduler->on_scheduler_thread()) {
    scheduler->schedule(t);
  } else {
    wake_inline(t);
  }
  return true;
}

bool wake_task(TaskControl* t, std::uint64_t generation) noexcept {
  const Claim claim = claim_task(t, generation);
  if (claim == Claim::claimed) run_claimed(t);
  return claim != Claim::lost;
}

void run_claimed(TaskControl* t) noexcept {
  if (Scheduler* scheduler = t->scheduler) {
    scheduler->schedule(t);
  } else {
    wake_inline(t);
  }
}

void run_claimed_here(TaskControl* t) noexcept { wake_inline(t, true); }

Scheduler* thread_scheduler() noexcept { return thread_state().scheduler; }
void set_thread_scheduler(Scheduler* scheduler) noexcept { thread_state().scheduler = scheduler; }

void request_cancel(TaskControl* t) noexcept {
  trace_event(TraceKind::cancel, t);
  std::uint64_t s = t->state.load(acquire);
  for (;;) {
    if (phase_of(s) == Phase::finished || (s & kCancelRequested)) return;
    if (phase_of(s) == Phase::parked && t->interruptible.load(relaxed)) {
      if (t->state.compare_exchange_weak(s, running_state(s) | kCancelRequested, acq_rel, acquire)) {
        if (t->on_cancel) t->on_cancel(t->hook_context);
        t->wake_reason = WakeReason::cancelled;
        run_claimed(t);
        return;
      }
    } else if (t->state.compare_exchange_weak(s, s | kCancelRequested, acq_rel, acquire)) {
      return;
    }
  }
}

bool cancel_if_scheduler(TaskControl* t, Scheduler* scheduler) noexcept {
  std::uint64_t s = t->state.load(acquire);
  if (phase_of(s) == Phase::finished || (s & kCancelRequested)) return false;
  if (std::atomic_ref<Scheduler*>(t->scheduler).load(acquire) != scheduler) return false;
  // As request_cancel, but only within the life (and suspension) the state
  // word was read in: the block may have been reused since.
  const std::uint64_t generation = generation_of(s);
  for (;;) {
    if (generation_of(s) != generation || phase_of(s) == Phase::finished || (s & kCancelRequested)) return false;
    if (phase_of(s) == Phase::parked && t->interruptible.load(relaxed)) {
      if (t->state.compare_exchange_weak(s, running_state(s) | kCancelRequested, acq_rel, acquire)) {
        if (t->on_cancel) t->on_cancel(t->hook_context);
        t->wake_reason = WakeReason::cancelled;
        run_claimed(t);
        return true;
      }
    } else if (t->state.compare_exchange_weak(s, s | kCancelRequested, acq_rel, acquire)) {
      return true;
    }
  }
}

void wait_finished(TaskControl* t, bool interruptible) {
  if (is_finished(t)) return;
  Parker& me = current_parker();
  if (me.task == t) throw std::logic_error("heddle::Task::join: a task cannot join itself");
  // Store the parker, then publish it with an RMW on the state word: the
  // finishing side's RMW is ordered with ours, so either we see "finished"
  // here or it sees our parker (also when a moved handle re-registers).
  t->joiner.store(&me, relaxed);
  if (phase_of(t->state.fetch_or(kJoinerWaiting, acq_rel)) == Phase::finished) return;
  // Finalize unparks us after publishing "finished"; any other wake-up is
  // spurious and the loop parks again. A cancelled wait leaves the
  // registration in place: a later unpark is harmless.
  while (!is_finished(t)) me.park(interruptible && me.task != nullptr, "heddle::Task::join");
}

void cancel_and_wait(TaskControl* t) {
  request_cancel(t);
  if (is_finished(t)) return;
  // Still ours (not finished, and the handle that owns it is being
  // destroyed), so its scheduler field is stable.
  if (t_current == nullptr) {
    if (Scheduler* scheduler = t->scheduler; scheduler && scheduler->finish_cancelled_here(t)) return;
  }
  wait_finished(t, false);
}

void detach_task(TaskControl* t) noexcept {
  if (phase_of(t->state.fetch_or(kDetached, acq_rel)) == Phase::finished) {
    report_if_unhandled(t);
    release_task(t);
  }
}

// Both throw from the unwind stack (throw_off_task_stack): the exception's
// allocation and __cxa_throw run there, and the unwinder walks back through
// heddle_call_on_stack into the task's frames.
[[noreturn]] void throw_cancelled() {
  throw_off_task_stack([](void*) { throw Cancelled{}; }, nullptr);
}

void check_stack_canary(TaskControl* t) noexcept { check_canary(t); }
void note_ended_by_cancel() noexcept { t_current->ended_by_cancel = true; }
void leave_running_task(TaskControl* t) { leave(t); }

void rethrow_hook_error() {
  throw_off_task_stack(
      [](void* task) {
        auto* t = static_cast<TaskControl*>(task);
        std::exception_ptr error = std::move(t->frame->error);
        t->frame->error = nullptr;
        std::rethrow_exception(error);
      },
      t_current);
}

[[noreturn]] void throw_logic(const char* what) {
  throw_off_task_stack([](void* text) { throw std::logic_error(static_cast<const char*>(text)); },
                       const_cast<char*>(what));
}

}  // namespace heddle::detail

namespace heddle {

std::uint64_t swallowed_cancellations() noexcept { return detail::swallowed_count.load(std::memory_order_relaxed); }

namespace this_task {

bool in_task() noexcept { return detail::current_task() != nullptr; }
std::uint64_t id() noexcept {
  auto* t = detail::current_task();
  return t ? t->id : 0;
}
const char* name() noexcept {
  auto* t = detail::current_task();
  return t ? t->name : "";
}
SourceLocation spawn_site() noexcept {
  auto* t = detail::current_task();
  return t ? SourceLocation::current(t->spawn_file, t->spawn_line, t->spawn_function) : SourceLocation{};
}
void cancel() noexcept {
  if (auto* t = detail::current_task()) t->state.fetch_or(detail::kCancelRequested, std::memory_order_acq_rel);
}
bool cancel_requested() noexcept {
  auto* t = detail::current_task();
  return t && (t->state.load(std::memory_order_acquire) & detail::kCancelRequested);
}
void yield() {
  detail::TaskControl* t = detail::current_task();
  if (!t) throw std::logic_error("heddle::this_task::yield: called outside a task (on a thread's own stack)");
  if (t->state.load(std::memory_order_acquire) & detail::kCancelRequested) {
    t->cancel_delivered = true;
    detail::throw_cancelled();
  }
  if (!t->scheduler) return;  // nothing else could run: a cancellation point only
  // Back on the scheduler's queue behind what is runnable, with no park
  // protocol: the task stays "running" and whoever receives the switch
  // requeues it (after_switch).
  t->yielding = true;
  detail::check_stack_canary(t);
  detail::leave_running_task(t);
  if (t->state.load(std::memory_order_acquire) & detail::kCancelRequested) {
    t->cancel_delivered = true;
    detail::throw_cancelled();
  }
}

}  // namespace this_task
}  // namespace heddle

namespace heddle::detail {

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

}  // namespace heddle::detail

namespace heddle::detail {

// ---- with_stack: running a function on an auxiliary stack segment
//
// The running task (or plain thread) switches to a context made on the
// segment, runs the function there and switches back: the same task, its
// TaskLocals and its cancellation state. While it is on the segment, the
// task's `stack` (or the thread's recorded stack bounds) names the segment,
// so that every check that uses them stays true there: the canary check at
// each switch-out, the overflow handler, the sanitizer fibre annotations of
// suspensions and resumes, nested arm stacks. The original is put back before
// the call returns, on every path (the function's exceptions are caught on
// the segment and rethrown on the original stack: nothing unwinds across the
// switch).

namespace {

struct SegmentCall {
  void (*run)(void*) = nullptr;
  void* context = nullptr;
  std::exception_ptr error;
  void* caller_sp = nullptr;    // the original stack, while on the segment
  const void* caller_bottom = nullptr;  // its bounds, for AddressSanitizer
  std::size_t caller_size = 0;
};

// ThreadSanitizer: this frame never returns (it switches back instead), so it
// must not push a frame on TSan's shadow call stack that nothing pops.
[[noreturn]] __attribute__((no_sanitize("thread"))) void segment_entry(void*, void* argument) noexcept {
  auto* call = static_cast<SegmentCall*>(argument);
#if HEDDLE_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
  try {
    call->run(call->context);
  } catch (...) {
    call->error = std::current_exception();
  }
#if HEDDLE_ASAN
  __sanitizer_start_switch_fiber(nullptr, call->caller_bottom, call->caller_size);
#endif
  void* unused = nullptr;
  arch::switch_context(&unused, call->caller_sp, nullptr);
  __builtin_unreachable();
}

}  // namespace

void run_on_stack(const Stack& segment, void (*run)(void*), void* context) {
  ThreadState& ts = thread_state();
  if (!ts.initialized) init_thread(ts);
  TaskControl* t = t_current;
  SegmentCall call;
  call.run = run;
  call.context = context;
  const Stack original = t ? t->stack : Stack{};
  call.caller_bottom = t ? static_cast<const void*>(original.low) : ts.stack_bottom;
  call.caller_size = t ? original.size : ts.stack_size;
  if (t) {
    t->stack = segment;
  } else {
    ts.stack_bottom = segment.low;
    ts.stack_size = segment.size;
  }
  void* segment_sp = arch::make_context(segment.high(), &segment_entry, &call);
#if HEDDLE_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, segment.low, segment.size);
#endif
  arch::switch_context(&call.caller_sp, segment_sp, nullptr);
#if HEDDLE_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
  // Possibly on another thread now (the task moved while on the segment).
  TaskControl* now = t_current;
  const bool intact = canary_intact(segment);
  if (now) {
    if (!intact) report_canary_overflow(now);  // names the segment: now->stack is still it
    now->stack = original;
  } else {
    ThreadState& here = thread_state();
    here.stack_bottom = call.caller_bottom;
    here.stack_size = call.caller_size;
    if (!intact) {
      ReportLine()
          .append("heddle: stack overflow in with_stack on a thread: the ")
          .append_decimal(segment.size)
          .append("-byte segment's canary was overwritten")
          .write_line();
      std::abort();
    }
  }
  if (call.error) std::rethrow_exception(call.error);
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

// ---- for debuggers: tools/gdb/heddle.py
//
// heddle_debug_descriptor tells a debugger where the registry of tasks is
// and how a control block is laid out, so tools/gdb/heddle.py lists and
// unwinds tasks from raw memory: it needs no debug information for heddle's
// internals, works on a stripped release build and on a core file, and runs
// no code in the inferior. Every field is 8 bytes, in this order; the script
// checks `magic` and `version` and refuses a layout it does not know. Bump
// `version` whenever a field is added, removed or changes meaning.
namespace heddle::detail {

struct DebugDescriptor {
  std::uint64_t magic;                 // "heddledb" as a little-endian word
  std::uint64_t version;
  std::uint64_t architecture;          // 1: x86-64 (switch_frame_x86_64.h), 2: AArch64
  const void* chunks_head;             // ControlChunk* (newest first), as control_chunks holds it
  std::uint64_t blocks_per_chunk;
  std::uint64_t block_size;            // sizeof(TaskControl): blocks sit at offset 0 of a chunk
  std::uint64_t chunk_next_offset;     // offsetof(ControlChunk, next)
  std::uint64_t state_offset;          // std::uint64_t: the state word (control.hpp)
  std::uint64_t id_offset;             // std::uint64_t
  std::uint64_t name_offset;           // char[name_size], NUL-terminated
  std::uint64_t name_size;
  std::uint64_t leaf_offset;           // const char*, or null
  std::uint64_t saved_sp_offset;       // void*: the switch frame of a parked task
  std::uint64_t running_thread_offset; // std::uint32_t: Linux thread id, 0 when switched out
  std::uint64_t interruptible_offset;  // bool
  std::uint64_t spawn_file_offset;     // const char*
  std::uint64_t spawn_line_offset;     // unsigned (4 bytes)
  std::uint64_t spawn_function_offset; // const char*
  std::uint64_t stack_low_offset;      // std::byte*
  std::uint64_t stack_size_offset;     // std::size_t
  std::uint64_t stack_kind_offset;     // StackKind (1 byte), named by stack_kind_names
  const char* const* stack_kind_names;
  std::uint64_t stack_kind_count;
  std::uint64_t phase_mask;
  std::uint64_t cancel_requested_bit;
  std::uint64_t generation_unit;
};

namespace {

constexpr const char* kStackKindNames[] = {"guarded", "canary", "static", "span", "nested", "slab"};
static_assert(static_cast<int>(StackKind::slab) + 1 == std::size(kStackKindNames));

// offsetof on TaskControl, which is not standard-layout (it has atomics and
// an exception_ptr); both GCC and clang lay it out as written and compute
// these offsets at compile time.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
#define HEDDLE_OFFSET(member) static_cast<std::uint64_t>(offsetof(heddle::detail::TaskControl, member))

}  // namespace
}  // namespace heddle::detail

extern "C" {
// Kept by the linker even when nothing refers to it (`used`, `retain`).
extern const heddle::detail::DebugDescriptor heddle_debug_descriptor;
[[gnu::used, gnu::retain]] constinit const heddle::detail::DebugDescriptor heddle_debug_descriptor = {
    0x6264656c64646568ULL,  // "heddledb"
    1,
#if defined(__x86_64__)
    1,
#elif defined(__aarch64__)
    2,
#endif
    &heddle::detail::control_chunks,
    heddle::detail::kControlChunk,
    sizeof(heddle::detail::TaskControl),
    offsetof(heddle::detail::ControlChunk, next),
    HEDDLE_OFFSET(state),
    HEDDLE_OFFSET(id),
    HEDDLE_OFFSET(name),
    sizeof(heddle::detail::TaskControl::name),
    HEDDLE_OFFSET(leaf),
    HEDDLE_OFFSET(saved_sp),
    HEDDLE_OFFSET(running_thread),
    HEDDLE_OFFSET(interruptible),
    HEDDLE_OFFSET(spawn_file),
    HEDDLE_OFFSET(spawn_line),
    HEDDLE_OFFSET(spawn_function),
    HEDDLE_OFFSET(stack) + offsetof(heddle::Stack, low),
    HEDDLE_OFFSET(stack) + offsetof(heddle::Stack, size),
    HEDDLE_OFFSET(stack) + offsetof(heddle::Stack, kind),
    heddle::detail::kStackKindNames,
    std::size(heddle::detail::kStackKindNames),
    heddle::detail::kPhaseMask,
    heddle::detail::kCancelRequested,
    heddle::detail::kGenerationUnit,
};
}
#undef HEDDLE_OFFSET
#pragma GCC diagnostic pop

// The gdb script itself, inlined into a .debug_gdb_scripts section of every
// program that links heddle, so gdb loads it with the program once the
// program's path is trusted (`add-auto-load-safe-path`; README, "Debugging
// tasks in gdb"). The section is not loaded at run time and `strip` removes it.
#if defined(HEDDLE_GDB_SCRIPT)
asm(".pushsection \".debug_gdb_scripts\", \"MS\",%progbits,1\n"
    ".byte 4\n"  // an inlined Python script: its name on the first line, then its text
    ".ascii \"heddle.py\\n\"\n"
    ".incbin \"" HEDDLE_GDB_SCRIPT "\"\n"
    ".byte 0\n"
    ".popsection\n");
#endif
