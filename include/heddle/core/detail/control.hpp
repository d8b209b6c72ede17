// heddle core (internal): the task control block and its state machine.
//
// Owns: TaskControl (one per task, type-stable: control blocks are recycled
// but never freed, so a stale handle can always read one safely), Parker (a
// one-waiter wake-up slot for a task or a thread), and the switch protocol.
//
// The state word (TaskControl::state) is a StateWord: its bits, its
// transitions and who may take each are the table in
// core/detail/state_word.hpp; only its member functions write it.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include "heddle/core/source_location.hpp"

#include "heddle/core/detail/state_word.hpp"
#include "heddle/core/scheduler.hpp"
#include "heddle/core/source_location.hpp"
#include "heddle/arch/sanitizer.hpp"
#include "heddle/stack/stack.hpp"

namespace heddle {
class Resumer;
}

namespace heddle::detail {

struct TaskControl;

// What the task asks of the context it switches to (after_switch).
enum class SwitchRequest : std::uint8_t {
  park,            // it suspended: complete its park (the default)
  yield,           // requeue it on its scheduler, still running (this_task::yield)
  yield_to_child,  // as yield, to let a child it spawned run first (work-first spawn)
  exit,            // its last switch: finish it
};

enum class WakeReason : std::uint8_t { resumed, cancelled, hook_failed };

// A one-waiter wake-up slot: a task or a thread parks on it, anyone unparks
// it. Type-stable (never freed), so an unpark that arrives after the waiter
// left is a harmless spurious wake-up: every park is in a loop that re-checks
// its condition.
//   state: 0 empty, 1 token (an unpark is waiting to be consumed), 2 waiter parked
//   owner:    0 -> 2 (about to wait), 2 -> 0 (withdrawn: cancelled), 1 -> 0 (consume)
//   unparker: any -> 1; if it was 2, wake the waiter
struct Parker {
  std::atomic<std::uint32_t> state{0};
  TaskControl* task = nullptr;  // owner task, or null for a thread's parker
  std::uint64_t waiting_generation = 0;  // the owner's suspension that waits here

  // Parks the caller (its own task or thread) until unparked. Interruptible
  // parks throw heddle::Cancelled when the task is cancelled. `leaf` names
  // the wait for dump_tasks (a string literal, or null).
  void park(bool interruptible, const char* leaf = nullptr);
  // Threads only: parks until unparked (true) or until `deadline` passes
  // (false). CLOCK_MONOTONIC nanoseconds, as std::chrono::steady_clock.
  bool park_until(std::int64_t deadline_ns);
  void unpark() noexcept;

  Parker* next_in_batch = nullptr;  // link for a batch of wake-ups (sync's WakeBatch)
};

// Where a finished group child reports (join/select/TaskGroup).
struct GroupLink {
  std::atomic<TaskControl*> finished_head{nullptr};  // Treiber stack of finished children
  Parker* owner = nullptr;
};

// The callable and its result live in a frame at the top of the task's own
// stack, so spawn allocates no heap memory.
struct TaskFrameBase {
  // How run() ended, if by an exception (TaskControl::ended_by_cancel: a
  // Cancelled). While the task runs it is empty, and carries a failed
  // suspension hook's exception from whoever ran the hook to the task,
  // which rethrows it at once (complete_park, rethrow_hook_error).
  std::exception_ptr error;
  virtual void run() = 0;

 protected:
  ~TaskFrameBase() = default;

 public:
  virtual void destroy() noexcept = 0;  // runs the frame's destructor in place
};


struct TaskControl {
  // Switching.
  void* saved_sp = nullptr;         // valid while not running
  void** return_slot = nullptr;     // where the resumer's stack pointer was saved
  TaskControl* resumed_from = nullptr;  // the resumer task, null for a thread's own stack
  // The task's C++ exception state while it is switched out (arch/exception_state.hpp):
  // the runtime's caught-exception chain, and (below, beside the flags) its
  // uncaught count. Every switch saves the outgoing context's and installs
  // the incoming one's; spawn starts it empty.
  void* caught_exceptions = nullptr;
  StateWord state;  // core/detail/state_word.hpp: who runs the task next

  // The current suspension (valid while parking/parked).
  void (*on_suspend)(void* context, const Resumer& resumer) = nullptr;
  void (*on_cancel)(void* context) noexcept = nullptr;
  void* hook_context = nullptr;
  const char* leaf = nullptr;    // what it waits in, for dump_tasks: a string literal, or null
  std::atomic<bool> interruptible{true};
  SwitchRequest switch_request = SwitchRequest::park;  // what its next switch out asks for
  bool dispatched = false;       // entered by its scheduler's dispatcher, not inline by another context
  bool cancel_delivered = false; // a suspension has reported cancellation to the task
  // Its stack came from a bounded StackPool: sized from what the task's own
  // code needs (a proven bound, or a learned size class), so no switch work
  // for other tasks may run on it (see "Host stacks" in src/core/host_stacks.cpp).
  bool bounded_stack = false;
  bool on_host_stack = false;    // with bounded_stack: running on its thread's host stack now
  WakeReason wake_reason = WakeReason::resumed;
  // Completion (with the group fields below), packed here beside the flags.
  enum class Ownership : std::uint8_t { handle, group, detached };
  Ownership ownership = Ownership::handle;
  bool cancelled_by_owner = false;
  bool ended_by_cancel = false;  // run() ended with heddle::Cancelled (frame->error holds it)
  unsigned int uncaught_exceptions = 0;  // with caught_exceptions

  // Identity.
  std::uint64_t id = 0;
  char name[32] = {};
  // Where it was spawned (this_task::spawn_site), as plain fields: readable
  // from a signal handler.
  const char* spawn_file = nullptr;
  const char* spawn_function = nullptr;

  // The scheduler that runs this task when it is woken (null: inline).
  Scheduler* scheduler = nullptr;
  // Free for the scheduler's own use (Pool: the worker a task is pinned to
  // and the list that tracks it); zero when the task is spawned.
  std::uint32_t scheduler_word = 0;
  unsigned spawn_line = 0;  // with spawn_file (here, where it packs beside scheduler_word)
  // Values of heddle::TaskLocal variables (core/task_local.hpp), made on
  // first use and destroyed on the task's own stack when it finishes.
  struct TaskLocals* locals = nullptr;

  // Storage.
  Stack stack;
  // Where this task's measured stack use goes at release (StackPolicy::learned), or null.
  struct LearnedStack* learned = nullptr;
  TaskFrameBase* frame = nullptr;

  // Completion: at most one of a joiner (Task<T>::join), a group, or
  // detached (`ownership`, with the flags above).
  std::atomic<Parker*> joiner{nullptr};  // the parker of whoever waits in join()
  GroupLink* group = nullptr;
  TaskControl* group_next_finished = nullptr;  // link in GroupLink::finished_head
  TaskControl* group_prev = nullptr;            // the owner's list of live children
  TaskControl* group_next = nullptr;

  // The task's own parker (joins, groups, sync primitives wait on it).
  Parker parker;

  // One link for two lists a block is never on at once: a live task that
  // was claimed waits on a list of deferred wake-ups (wake_inline, a sync
  // WakeBatch) by next_deferred; a free block waits on a free list (a
  // thread's cache, the depot) by next_free. A block is freed only after
  // its task finished, and a finished task is never claimed again (claims
  // need its generation and a parked phase), so no wake-up list holds it.
  union {
    TaskControl* next_deferred = nullptr;
    TaskControl* next_free;
  };
  // A scheduler's run queue, and its list of live tasks.
  TaskControl* next_runnable = nullptr;
  TaskControl* scheduler_prev = nullptr;
  TaskControl* scheduler_next = nullptr;

  // For dump_tasks: the Linux thread id (gettid) that has the task switched
  // in, 0 while it is switched out. Relaxed stores at every switch in and out
  // (no read-modify-write); only a dump reads it.
  std::atomic<std::uint32_t> running_thread{0};
  std::uint32_t group_index = 0;  // with group: which arm of a join/select it is

  // Sanitizers, last: only builds with a sanitizer have these, and the
  // fields above keep their offsets in every build (control blocks are
  // made only in src/core).
#if HEDDLE_ASAN
  void* asan_fake_stack = nullptr;
#endif
#if HEDDLE_TSAN
  void* tsan_fiber = nullptr;
  std::uint32_t tsan_fiber_uses = 0;  // tasks it has served (src/core/tsan_fibers.cpp)
#endif
};

// Reverses a list of control blocks linked through Link: turns a
// lock-free (Treiber) stack, newest first, into arrival order.
template <TaskControl* TaskControl::*Link>
inline TaskControl* reversed(TaskControl* head) noexcept {
  TaskControl* out = nullptr;
  while (head) {
    TaskControl* next = head->*Link;
    head->*Link = out;
    out = head;
    head = next;
  }
  return out;
}

inline bool is_finished(const TaskControl* t) noexcept {
  return phase_of(t->state.load(std::memory_order_acquire)) == Phase::finished;
}


TaskControl* current_task() noexcept;
// TaskFrame::run, when the task's callable ended with heddle::Cancelled:
// sets the running task's ended_by_cancel.
void note_ended_by_cancel() noexcept;
Parker& current_parker();  // the running task's parker or the thread's

// Spawning.
// `learned`: where the task's measured stack use goes at release, or null.
TaskControl* acquire_control(const char* name, const Stack& given_stack, StackPool* pool, bool paint,
                             Scheduler* scheduler, const SourceLocation& site, LearnedStack* learned);
// Makes the task's context below `context_top` and runs it until it first stops.
void start_task(TaskControl* task, void* context_top);
void release_task(TaskControl* task) noexcept;  // frame destroyed, stack and control returned
void abandon_control(TaskControl* task) noexcept;  // spawn failed before the task started

// The registry of tasks (dump_tasks): calls visit(block, context) for every
// control block ever made, live or not, newest chunk first. Lock-free, no
// allocation, safe against spawns on other threads; the block's state word
// says whether it holds a live task (src/core/dump.cpp reads it).
void for_each_control_block(void (*visit)(TaskControl* block, void* context), void* context) noexcept;

// Suspension (the running task).
// `leaf` names the suspension for dump_tasks: a string literal (it is read
// after the suspension ended), or null.
WakeReason suspend_current(void (*on_suspend)(void*, const Resumer&), void (*on_cancel)(void*) noexcept,
                           void* context, bool interruptible, const char* leaf = nullptr);

// Waking and cancelling.
Claim claim_task(TaskControl* task, std::uint64_t generation) noexcept;
bool resume_task(TaskControl* task, std::uint64_t generation);  // explicit: inline on this thread
bool wake_task(TaskControl* task, std::uint64_t generation) noexcept;  // the wake policy
void request_cancel(TaskControl* task) noexcept;
// For a scheduler cancelling all its tasks from the registry: cancels
// `task` if it is a live task of `scheduler` that has not been asked yet,
// checked against one reading of its state word, so a block that finished
// and was reused meanwhile is left alone. True if it cancelled.
bool cancel_if_scheduler(TaskControl* task, Scheduler* scheduler) noexcept;

// Destroys the TaskLocal values of a task whose function has returned (on
// its own stack; src/core/task_local.cpp).
void destroy_task_locals(TaskControl* task) noexcept;

// Runs function(argument) off the running task's stack: on the thread's
// unwind stack, which every thread that runs a bounded task has, else in
// place (an ordinary stack has the room). For the reports that end the
// program from places a bounded task reaches: their buffers and abort()
// stay out of its proof (tools/heddle-stack treats this as a boundary).
void run_off_task_stack(void (*function)(void*), void* argument) noexcept;
// As run_off_task_stack, for a function that throws (and so never returns):
// the throw, its allocation and its unwinder run on the unwind stack, and
// the exception unwinds back into the task's frames from there.
[[noreturn]] void throw_off_task_stack(void (*thrower)(void*), void* argument);

// For this_task::yield: the canary check and the switch out of a running task.
void check_stack_canary(TaskControl* task) noexcept;
void leave_running_task(TaskControl* task);
[[noreturn]] void throw_cancelled();

// Waiting for a task to finish (from a task or a thread).
void wait_finished(TaskControl* task, bool interruptible);
// A Task handle's destructor: cancels `task` and waits until it finished,
// or, on a thread's own stack, lets its scheduler finish it here
// (Scheduler::finish_cancelled_here), so that it never waits for work that
// only this thread could do.
void cancel_and_wait(TaskControl* task);
void detach_task(TaskControl* task) noexcept;
// A detached task ended with an exception (not Cancelled): hands it to the
// unhandled-exception handler (core/unhandled_exception.hpp).
void report_unhandled_exception(TaskControl* task) noexcept;

// Groups (join/select/TaskGroup arms).
struct GroupOutcome {
  std::ptrdiff_t first_finished = -1;  // arm index of the first arm to finish
  std::ptrdiff_t first_failed = -1;    // arm index of the first arm that threw
  bool owner_cancelled = false;        // the waiting task itself was cancelled
};
// Waits until every arm has finished. The first failure (or, in select mode,
// the first arm to finish) cancels the others; a cancellation of the waiting
// task cancels them all. Arms stay unreleased.
GroupOutcome wait_arms(GroupLink& group, TaskControl* const* arms, std::size_t count, bool select_mode);
// Releases arms and throws what the outcome says should be thrown (the
// waiter's cancellation, or the first failure). Returns if nothing failed.
void release_arms_and_rethrow(const GroupOutcome& outcome, TaskControl* const* arms, std::size_t count,
                              bool release_all);
void release_arms(TaskControl* const* arms, std::size_t count) noexcept;

void attach_to_group(TaskControl* task, GroupLink* group, std::size_t index) noexcept;
TaskControl* take_finished(GroupLink& group) noexcept;  // FIFO batch, linked by group_next_finished

}  // namespace heddle::detail
