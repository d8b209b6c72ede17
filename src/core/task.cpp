// heddle core: the task's life and the switch protocol: spawning, entering
// and leaving a task, suspension, resume, cancellation and completion. The
// state machine is the StateWord of include/heddle/core/detail/state_word.hpp
// (a table of its named transitions); this file takes them. enter and leave are always_inline, so
// every hot caller of a switch lives in this file. The rest of the core has
// a file per concern: thread_state (per-thread switch state),
// control_depot (control blocks, the registry, ids), parker, host_stacks
// (host and unwind stacks), with_stack (segments), this_task,
// terminate_in_task, tsan_fibers and debug_descriptor.
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

#include "heddle/arch/context.hpp"
#include "heddle/arch/exception_state.hpp"
#include "heddle/arch/sanitizer.hpp"
#include "heddle/core/task.hpp"
#include "heddle/core/detail/stack_profile.hpp"
#include "heddle/core/stack_sizing.hpp"
#include "heddle/core/detail/trace_hooks.hpp"
#include "heddle/core/with_stack.hpp"
#include "control_depot.hpp"
#include "sys/report_line.hpp"
#include "task_report.hpp"
#include "thread_state.hpp"

#if HEDDLE_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace heddle::detail {
namespace {

constexpr std::memory_order acquire = std::memory_order_acquire;
constexpr std::memory_order release = std::memory_order_release;
constexpr std::memory_order relaxed = std::memory_order_relaxed;

// Inline wake-ups nest on the waker's stack (a finishing task wakes its
// joiner, which finishes and wakes its own joiner...). Past this depth they
// are queued and run by the outermost wake-up instead.
constexpr int kMaxInlineWakeDepth = 8;

std::atomic<std::uint64_t> swallowed_count{0};

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
  const bool exiting = t->switch_request == SwitchRequest::exit;
  trace_event(exiting ? TraceKind::finish : TraceKind::suspend, t);
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
    __sanitizer_start_switch_fiber(exiting ? nullptr : &t->asan_fake_stack, next->stack.low, next->stack.size);
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
    __sanitizer_start_switch_fiber(exiting ? nullptr : &t->asan_fake_stack, bottom, size);
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

void complete_park(TaskControl* t) {
  const Resumer resumer(t, generation_of(t->state.load(std::memory_order_relaxed)));
  if (t->on_suspend) {
    try {
      t->on_suspend(t->hook_context, resumer);
    } catch (...) {
      // Held in the frame's error slot, which is empty while the task runs
      // (run() fills it only once the callable has ended), until the task
      // rethrows it at its suspension (rethrow_hook_error).
      t->frame->error = std::current_exception();
      t->state.reclaim();
      t->wake_reason = WakeReason::hook_failed;
      run_claimed(t);
      return;
    }
  }
  switch (t->state.complete_park(t->interruptible)) {
    case ParkEnd::parked:
      return;
    case ParkEnd::resumed:
      t->wake_reason = WakeReason::resumed;
      break;
    case ParkEnd::cancelled:
      if (t->on_cancel) t->on_cancel(t->hook_context);
      t->wake_reason = WakeReason::cancelled;
      break;
  }
  run_claimed(t);
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
  const std::uint64_t before = t->state.finish();
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
  switch (from->switch_request) {
    case SwitchRequest::park:
      complete_park(from);
      return;
    case SwitchRequest::exit:
      finalize(from);
      return;
    case SwitchRequest::yield:
    case SwitchRequest::yield_to_child: {
      // Still running: it only goes back on its scheduler's queue.
      const bool spawned = from->switch_request == SwitchRequest::yield_to_child;
      from->switch_request = SwitchRequest::park;
      from->wake_reason = WakeReason::resumed;
      if (Scheduler* scheduler = from->scheduler) {
        scheduler->requeue(from, spawned ? Scheduler::Requeue::spawned : Scheduler::Requeue::yielded);
      } else {
        run_claimed(from);
      }
      return;
    }
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
  t->switch_request = SwitchRequest::exit;
  if (!canary_intact(t->stack)) report_canary_overflow(t);
  leave(t);
  __builtin_unreachable();
}

}  // namespace

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
  t->switch_request = SwitchRequest::park;
  t->cancel_delivered = false;
  t->cancelled_by_owner = false;
  t->ended_by_cancel = false;
  t->caught_exceptions = nullptr;  // a task starts with nothing caught and nothing unwinding
  t->uncaught_exceptions = 0;
  t->interruptible.store(true, relaxed);
  t->parker.state.store(0, relaxed);
  t->state.begin_life();
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
  t->state.abandon();
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
    parent->switch_request = SwitchRequest::yield_to_child;
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
  t->state.begin_park();
  check_canary(t);
  leave(t);
  const WakeReason reason = t->wake_reason;
  if (reason == WakeReason::cancelled) t->cancel_delivered = true;
  return reason;
}

Claim claim_task(TaskControl* t, std::uint64_t generation) noexcept {
  const Claim claim = t->state.claim(generation);
  if (claim == Claim::claimed) t->wake_reason = WakeReason::resumed;
  return claim;
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

namespace {

// The one way a cancel is delivered: the state word decides (cancel), and
// a parked interruptible task it won is run here with a cancelled wake.
CancelEnd deliver_cancel(TaskControl* t, std::uint64_t generation) noexcept {
  const CancelEnd end = t->state.cancel(t->interruptible, generation);
  if (end == CancelEnd::claimed) {
    if (t->on_cancel) t->on_cancel(t->hook_context);
    t->wake_reason = WakeReason::cancelled;
    run_claimed(t);
  }
  return end;
}

}  // namespace

void request_cancel(TaskControl* t) noexcept {
  trace_event(TraceKind::cancel, t);
  deliver_cancel(t, StateWord::kAnyGeneration);
}

bool cancel_if_scheduler(TaskControl* t, Scheduler* scheduler) noexcept {
  const std::uint64_t s = t->state.load(acquire);
  if (phase_of(s) == Phase::finished || (s & kCancelRequested)) return false;
  if (std::atomic_ref<Scheduler*>(t->scheduler).load(acquire) != scheduler) return false;
  // As request_cancel, but only within the life (and suspension) the state
  // word was read in: the block may have been reused since.
  return deliver_cancel(t, generation_of(s)) != CancelEnd::none;
}

void wait_finished(TaskControl* t, bool interruptible) {
  if (is_finished(t)) return;
  Parker& me = current_parker();
  if (me.task == t) throw std::logic_error("heddle::Task::join: a task cannot join itself");
  // Store the parker, then publish it with an RMW on the state word: the
  // finishing side's RMW is ordered with ours, so either we see "finished"
  // here or it sees our parker (also when a moved handle re-registers).
  t->joiner.store(&me, relaxed);
  if (t->state.register_joiner()) return;
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
  if (t->state.detach()) {
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

}  // namespace heddle
