// heddle core: eager tasks.
//
// Owns: spawn(), Task<T> (the owning handle) and this_task. spawn(f) runs f
// at once on the current thread, on a new stack, until f first suspends or
// finishes, and then returns. The callable and its result live in a frame at
// the top of the task's own stack: spawning from a warm pool allocates no
// heap memory.
//
// Invariants: a Task<T> owns its task until join() or detach(); destroying
// an unjoined Task cancels and joins it (like std::jthread), so no task
// outlives its handle's scope unless detached. That wait never waits for
// work only the destroying thread could do: on a thread's own stack, the
// task's scheduler may finish it there (Scheduler::finish_cancelled_here;
// a Loop of this thread that is not running runs until the task unwound).
#pragma once

#include <cstddef>
#include <functional>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "heddle/core/detail/result_slot.hpp"
#include "heddle/core/source_location.hpp"
#include "heddle/core/stack_sizing.hpp"
#include "heddle/core/suspend.hpp"
#include "heddle/core/unhandled_exception.hpp"
#include "heddle/stack/stack.hpp"

namespace heddle {

// Where a task's stack comes from and what it is called. Every field is
// optional; `stack` (static storage, a span, or a region of the parent's
// stack) wins over `pool`.
struct SpawnOptions {
  const char* name = nullptr;  // copied (up to 31 bytes)
  StackPool* pool = nullptr;   // default: StackPool::default_pool()
  Stack stack{};               // caller-provided storage; the caller keeps it alive until join
  bool paint = false;          // paint the stack: byte-granular high-water mark (touches every page)
  // The scheduler that runs the task (default: the spawner's). When it is
  // not this thread's, the task starts on the scheduler instead of at once.
  Scheduler* scheduler = nullptr;
  // How the stack is sized when neither `stack` nor `pool` is named
  // (heddle/core/stack_sizing.hpp): a proven bound, or a learned size class.
  StackPolicy stack_policy = StackPolicy::proven;
};

namespace detail {

// The result comes first, so that join (which knows T but not F) finds it
// from the frame alone: the control block keeps no pointer to it.
template <class T>
struct TaskFrameResult : TaskFrameBase {
  ResultSlot<T> result;
};

template <class T>
ResultSlot<T>& result_slot(TaskFrameBase* frame) noexcept {
  return static_cast<TaskFrameResult<T>*>(frame)->result;
}

template <class F, class T>
struct TaskFrame final : TaskFrameResult<T> {
  F fn;

  template <class G>
  explicit TaskFrame(G&& g) : fn(std::forward<G>(g)) {}
  void run() override {
    try {
      this->result.run(fn);
    } catch (const Cancelled&) {
      note_ended_by_cancel();
      this->error = std::current_exception();
    } catch (...) {
      this->error = std::current_exception();
    }
  }
  void destroy() noexcept override { this->~TaskFrame(); }
};

// What Task<T>::stack() returns for an empty handle.
inline constexpr Stack kNoStack{};

// Places the frame at the top of the task's stack; throws if it cannot fit.
void* frame_address(TaskControl* task, std::size_t size, std::size_t align);
[[noreturn]] void throw_logic(const char* what);

template <class F>
TaskControl* spawn_control(F&& f, const SpawnOptions& options, const SourceLocation& site,
                           GroupLink* group = nullptr, std::size_t group_index = 0) {
  using T = std::invoke_result_t<std::decay_t<F>&>;
  using Frame = TaskFrame<std::decay_t<F>, T>;
  StackPool* pool = options.pool;
  LearnedStack* learned = nullptr;
  bool paint = options.paint;
  if (!pool && !options.stack) {
    pool = stack_bound_of_frame<Frame>().pool;  // a proven bound, if registered
    if (!pool && options.stack_policy == StackPolicy::learned) {
      static LearnedStack learned_here;  // per callable type: for a lambda, its spawn site
      const LearnedChoice choice = choose_learned_stack(learned_here);
      pool = choice.pool;
      if (choice.measure) {
        learned = &learned_here;
        paint = true;
      }
    }
  }
  TaskControl* task = acquire_control(options.name, options.stack, pool, paint, options.scheduler, site, learned);
  void* top;
  try {
    top = frame_address(task, sizeof(Frame), alignof(Frame));
    auto* frame = new (top) Frame(std::forward<F>(f));
    task->frame = frame;
  } catch (...) {
    abandon_control(task);
    throw;
  }
  if (group) attach_to_group(task, group, group_index);
  start_task(task, top);
  return task;
}

}  // namespace detail

// The owning handle of a spawned task.
template <class T>
class Task {
 public:
  Task() = default;
  Task(Task&& other) noexcept : control_(std::exchange(other.control_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      control_ = std::exchange(other.control_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  // Waits until the task finishes (a cancellation point when called from a
  // task), then returns its value or rethrows its exception (a task that
  // was cancelled rethrows heddle::Cancelled). The handle is empty after.
  // Throws std::logic_error on an empty handle (joined twice, detached, moved from).
  T join() {
    if (!control_) detail::throw_logic("heddle::Task::join: the task was already joined, detached or moved from");
    detail::wait_finished(control_, true);
    detail::TaskControl* task = std::exchange(control_, nullptr);
    detail::TaskFrameBase* frame = task->frame;
    struct Release {
      detail::TaskControl* task;
      ~Release() { detail::release_task(task); }
    } release{task};
    if (frame->error) std::rethrow_exception(frame->error);
    return detail::result_slot<T>(task->frame).take();
  }

  // Lets the task run on; its storage is released when it finishes. A
  // detached task on a caller-provided stack must not outlive that stack.
  // An exception (other than Cancelled) that ends a detached task goes to
  // the unhandled-exception handler (core/unhandled_exception.hpp): by
  // default one line on stderr naming the task.
  void detach() {
    if (!control_) detail::throw_logic("heddle::Task::detach: the task was already joined, detached or moved from");
    detail::detach_task(std::exchange(control_, nullptr));
  }

  // Asks the task to stop: a parked task unwinds from its suspension point
  // now (on this thread); a running one at its next suspension point.
  void cancel() noexcept {
    if (control_) detail::request_cancel(control_);
  }

  // The queries below are safe on an empty handle (default-constructed,
  // moved from, joined or detached) and then answer "no task": false, 0,
  // "", an empty Stack, a zero StackUsage. join() and detach() must act on
  // a task and throw std::logic_error there; cancel() does nothing.
  bool finished() const noexcept { return control_ && detail::is_finished(control_); }
  bool joinable() const noexcept { return control_ != nullptr; }
  explicit operator bool() const noexcept { return control_ != nullptr; }

  std::uint64_t id() const noexcept { return control_ ? control_->id : 0; }
  const char* name() const noexcept { return control_ ? control_->name : ""; }
  // The task's stack; a Stack with no memory (null `low`, size 0, false) on an empty handle.
  const Stack& stack() const noexcept { return control_ ? control_->stack : detail::kNoStack; }
  // Deepest use of the task's stack so far (see heddle::high_water).
  StackUsage stack_high_water() const noexcept { return control_ ? high_water(control_->stack) : StackUsage{}; }

  // Internal (null on an empty handle).
  explicit Task(detail::TaskControl* control) noexcept : control_(control) {}
  detail::TaskControl* control() const noexcept { return control_; }

 private:
  void reset() noexcept {
    if (!control_) return;
    detail::TaskControl* task = std::exchange(control_, nullptr);
    detail::cancel_and_wait(task);
    detail::release_task(task);
  }

  detail::TaskControl* control_ = nullptr;
};

}  // namespace heddle

namespace heddle {

// Spawns f as a new task and runs it at once, on this thread, until it first
// suspends or finishes. Returns the owning handle.
// Not async-signal-safe, nor is any other call of core, sync or io: from a
// signal handler it may deadlock on a lock the interrupted code holds, or
// switch stacks in the middle of a switch. Handle signals in a task with
// io::SignalSet (heddle/io/file.hpp), or stop a loop with Loop::stop(),
// which is safe there (docs/misuse.md, "Signal handlers").
// [[nodiscard]]: dropping the handle cancels and joins the task at once
// (keep it, or detach() it).
template <class F>
[[nodiscard]] auto spawn(F&& f, SpawnOptions options = {}, SourceLocation site = SourceLocation::current())
    -> Task<std::invoke_result_t<std::decay_t<F>&>> {
  using T = std::invoke_result_t<std::decay_t<F>&>;
  return Task<T>(detail::spawn_control(std::forward<F>(f), options, site));
}

// The spawn member every scheduler offers (Loop, Pool, SimLoop, and a
// user's: examples/fifo_scheduler), written once. A scheduler class derives
// from SpawnsTasks<itself> beside Scheduler; spawn(f) then makes f a task
// of that scheduler: it starts at once when called on one of the
// scheduler's threads, otherwise it is queued to start there. A scheduler
// that refuses new tasks at times (Pool after shutdown) defines
// `void check_accepting() const`, which throws; spawn calls it first.
template <class Derived>
class SpawnsTasks {
 public:
  template <class F>
  [[nodiscard]] auto spawn(F&& f, SpawnOptions options = {}, SourceLocation site = SourceLocation::current()) {
    Derived& self = static_cast<Derived&>(*this);
    if constexpr (requires { self.check_accepting(); }) self.check_accepting();
    options.scheduler = &self;
    return heddle::spawn(std::forward<F>(f), options, site);
  }

 protected:
  SpawnsTasks() = default;
  ~SpawnsTasks() = default;
};

// How spawn(f) sizes f's stack from a registered bound (heddle/core/stack_sizing.hpp):
// all zero when F has none.
template <class F>
StackBoundUse stack_bound_for() noexcept {
  using Callable = std::decay_t<F>;
  return detail::stack_bound_of_frame<detail::TaskFrame<Callable, std::invoke_result_t<Callable&>>>();
}
template <class F>
StackBoundUse stack_bound_for(const F&) noexcept {
  return stack_bound_for<F>();
}

// The running task, from inside it.
namespace this_task {
bool in_task() noexcept;                   // false on a thread's own stack
std::uint64_t id() noexcept;               // 0 outside a task
const char* name() noexcept;               // "" outside a task
SourceLocation spawn_site() noexcept;  // where the task was spawned (file, line, function)
void cancel() noexcept;                    // self-cancel: the next suspension point throws Cancelled
bool cancel_requested() noexcept;
// A cancellation point that lets the resumer run: with no scheduler the task
// switches out and straight back in. Throws std::logic_error outside a task.
void yield();
}  // namespace this_task

// How many tasks caught heddle::Cancelled and then finished normally (in
// release builds; debug builds abort with the task's spawn site instead).
std::uint64_t swallowed_cancellations() noexcept;

}  // namespace heddle
