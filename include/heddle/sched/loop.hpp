// heddle sched: Loop, a single-threaded scheduler with timers.
//
// Owns: a run queue of claimed tasks, a timer queue, and a cross-thread
// wake-up (an eventfd) so that other threads can hand it work. Tasks spawned
// on the loop's thread stay eager: spawn runs the child at once. A task
// woken from anywhere is queued here and runs on the loop's thread, never
// on two threads at once.
//
// Cross-thread protocol (remote queue and sleep):
//   other thread: push the claimed task on remote_ (lock-free stack), then
//                 if sleeping_ was true, clear it and write the eventfd.
//                 The push and the notify are bracketed by remote_wakers_,
//                 which ~Loop waits to see at zero: the push may let the
//                 loop finish and be destroyed before notify() returns.
//   loop thread:  set sleeping_, re-check remote_ and the local queue, then
//                 block in ppoll on the eventfd until the next timer; clear
//                 sleeping_ on waking. A push after the re-check sees
//                 sleeping_ set and writes the eventfd, so no wake-up is lost.
//
// run() returns when no task of the loop is alive and no timer is armed, or
// after stop(). Destroying a Loop cancels its live tasks and runs them until
// they have unwound.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <thread>

#include "heddle/core/detail/intrusive_queue.hpp"
#include "heddle/core/detail/treiber_stack.hpp"
#include "heddle/core/scheduler.hpp"
#include "heddle/core/task.hpp"
#include "heddle/sched/detail/loop_driver.hpp"
#include "heddle/sched/detail/timer_queue.hpp"
#include "heddle/sys/thread_marker.hpp"

namespace heddle {

class Loop final : public Scheduler, public SpawnsTasks<Loop> {
 public:
  using Clock = std::chrono::steady_clock;

  // The loop belongs to the calling thread until run() is called (then to
  // the thread running it).
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Spawns f as a task of this loop: at once when called on the loop's
  // thread (eager), otherwise queued to start on the loop's thread.
  // [[nodiscard]]: a dropped handle cancels the task and waits until it has
  // unwound (keep it, or detach() it). Dropped on the loop's thread while
  // the loop is not running, the handle runs the loop itself until the task
  // has unwound (finish_cancelled_here); dropped in a callback of the
  // running loop (a Timer's), where waiting would block the loop, it aborts
  // naming the task.
  using SpawnsTasks<Loop>::spawn;

  // Runs the loop's tasks and timers on the calling thread until none is
  // left, or until stop(). Throws std::logic_error if already running.
  void run();
  // Makes run() return after the task it is running (callable from any
  // thread and from the loop's own tasks). A stop() while the loop is not
  // running makes the next run() return as soon as it has looked at its
  // queues once, so a stop is never lost to a thread that was about to run.
  // Async-signal-safe (lock-free atomics and a write(2) to the loop's
  // eventfd): a SIGINT handler may stop a loop. The only heddle call that
  // is, besides the handlers heddle installs itself (docs/misuse.md,
  // "Signal handlers").
  void stop() noexcept;
  // Asks every live task of the loop to cancel (each is queued on the loop
  // and unwinds when the loop runs). Callable from any thread.
  void cancel_all() noexcept;

  // The loop whose task is running, or whose thread this is; null otherwise.
  static Loop* current() noexcept;

  std::size_t live_tasks() const noexcept { return live_.load(std::memory_order_acquire); }
  std::size_t armed_timers() const noexcept { return timers_.size(); }

  // Scheduler.
  void schedule(detail::TaskControl* claimed) noexcept override;
  bool on_scheduler_thread() const noexcept override {
    return owner_.load(std::memory_order_relaxed) == detail::this_thread_marker();
  }
  detail::TaskControl* take_next_here() noexcept override;
  void task_started(detail::TaskControl* task) noexcept override;
  void task_finished(detail::TaskControl* task) noexcept override;
  bool finish_cancelled_here(detail::TaskControl* task) override;

  // Internal (time.hpp): arms a timer on this loop, waking the loop if the
  // timer became the earliest.
  void arm_timer(detail::TimerEntry* entry);
  bool cancel_timer(detail::TimerEntry* entry) noexcept { return timers_.cancel(entry); }
  detail::TimerQueue& timer_queue() noexcept { return timers_; }
  // Internal (io layer): the reactor that drives this loop, or null. Set
  // once, on the loop's thread; destroyed with the loop, after its tasks.
  detail::LoopDriver* driver() const noexcept { return driver_.get(); }
  void set_driver(std::unique_ptr<detail::LoopDriver> driver);

 private:
  class RunScope;
  void gather_work();
  void run_until_finished(const detail::TaskControl* task);
  void push_local(detail::TaskControl* task) noexcept;
  detail::TaskControl* pop_local() noexcept;
  void take_remote() noexcept;
  void sleep_until_work(Clock::time_point deadline);
  void notify() noexcept;
  void cancel_all_and_drain();

  std::atomic<const void*> owner_;  // detail::this_thread_marker() of the loop's thread
  int wake_fd_ = -1;
  // Who runs the loop: nobody, run(), or a dropped handle's destructor
  // finishing its task (finish_cancelled_here). A run() on another thread
  // waits for the latter to end rather than fail as "already running".
  enum class Runner : unsigned char { none, run, handle };
  std::atomic<Runner> runner_{Runner::none};
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> sleeping_{false};
  std::atomic<std::size_t> live_{0};
  std::atomic<int> remote_wakers_{0};  // threads between a remote push and the end of its notify()
  int direct_budget_ = 0;  // direct task-to-task hand-overs left in this turn
  // Local run queue: only the loop's thread touches it.
  detail::IntrusiveQueue<detail::TaskControl, &detail::TaskControl::next_runnable> local_;
  // Remote queue: pushed by other threads, taken whole by the loop's thread.
  detail::TreiberStack<detail::TaskControl, &detail::TaskControl::next_runnable> remote_;
  detail::TimerQueue timers_;
  std::unique_ptr<detail::LoopDriver> driver_;
};

}  // namespace heddle
