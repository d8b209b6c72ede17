// heddle core: the boundary between tasks and schedulers.
//
// Owns: the Scheduler interface and the wake policy. A task belongs to at
// most one scheduler (inherited from its spawner). The core never decides
// *when* or *where* a task runs beyond this rule, kept in one place
// (detail::run_claimed in src/core/task.cpp):
//   - no scheduler: a woken task runs inline, now, on the waking thread;
//   - a scheduler:  the claimed task is handed to Scheduler::schedule, which
//     runs it later on the scheduler's own thread(s).
// Primitives (sync, io) never choose; they wake through Resumer::wake or a
// ClaimedTask, and every scheduler gets them for free.
#pragma once

#include <cstdint>

namespace heddle {

namespace detail {
struct TaskControl;
}

class Scheduler {
 public:
  // Runs a claimed task (one whose suspension was won by a wake or cancel)
  // soon, on this scheduler's thread(s), by calling detail::run_claimed_here.
  // Called from any thread; must not block and must not lose the task.
  virtual void schedule(detail::TaskControl* claimed) noexcept = 0;
  // True on a thread that runs this scheduler's tasks.
  virtual bool on_scheduler_thread() const noexcept = 0;
  // Called on this scheduler's thread when a task it dispatched stops
  // (parks, yields or finishes): returns a claimed task to switch to
  // directly, saving the trip through the dispatcher, or null to return to
  // the dispatcher. The returned task counts as dispatched too.
  virtual detail::TaskControl* take_next_here() noexcept { return nullptr; }
  // Bookkeeping for "run until no task is left" and for cancelling every
  // task at shutdown. task_finished is called before the task is published
  // as finished, while its control block still belongs to it.
  virtual void task_started(detail::TaskControl*) noexcept {}
  virtual void task_finished(detail::TaskControl*) noexcept {}

  // Why a running task of this scheduler switched out without parking.
  enum class Requeue : unsigned char {
    yielded,  // this_task::yield: run it again after what is runnable now
    spawned,  // it spawned a child that runs now on this thread (work-first,
              // see spawns_work_first); this is its continuation
  };
  // Takes back a task that is still running but switched out (called on
  // this scheduler's thread by whoever received the switch). Default: queue
  // it like a woken task.
  virtual void requeue(detail::TaskControl* task, Requeue) noexcept { schedule(task); }
  // True when a task of this scheduler that spawns a child on its thread
  // should hand its own continuation to requeue(spawned) and let the child
  // run in its place (work-first, as Cilk does), so that idle threads may
  // steal the continuation. False: the child runs nested on the spawner.
  virtual bool spawns_work_first() const noexcept { return false; }

  // For a Task handle destroyed on a thread's own stack (no task running
  // there) while its task, one of this scheduler's, is cancelled but not
  // finished: a handle's destructor waits for its task, and must never wait
  // for work only this thread could do. Returns true once `task` has
  // finished, when this thread ran the scheduler's work to finish it (a
  // Loop of this thread that is not running); false when the scheduler's
  // own threads will, and the caller waits. A scheduler that can neither
  // run its work here nor have it run elsewhere aborts, naming the task.
  virtual bool finish_cancelled_here(detail::TaskControl* task) {
    (void)task;
    return false;
  }

 protected:
  ~Scheduler() = default;
};

namespace detail {
// Runs a claimed task now on this thread (what a scheduler's run loop calls).
void run_claimed_here(TaskControl* claimed) noexcept;
// Runs a claimed task according to the wake policy above.
void run_claimed(TaskControl* claimed) noexcept;
// The scheduler whose thread this is (tasks spawned from the thread's own
// stack join it), or null. Set by a scheduler's run loop.
Scheduler* thread_scheduler() noexcept;
void set_thread_scheduler(Scheduler* scheduler) noexcept;
}  // namespace detail

}  // namespace heddle
