// heddle sched: time — sleeping, timers, deadlines and timeouts.
//
// Owns: sleep_for/sleep_until, heddle::Timer (a callback at a deadline), and
// with_deadline/with_timeout. Where a timer lives follows the caller:
//   - a task of a Loop: the loop's timer queue; it fires on the loop's thread;
//   - a task with no scheduler: a process-wide timer thread, which wakes the
//     task inline (the no-scheduler wake policy), so it resumes there;
//   - a plain thread: sleeps block the thread.
// Timers never fire early, and timers with equal deadlines fire in the order
// they were armed.
//
// Deadlines: with_deadline(d, f) runs f as a child task beside an alarm
// task that cancels it at d; if f ends by that cancellation (it unwinds
// from its suspension point), with_deadline throws heddle::TimedOut. Deadlines nest: an
// outer one that expires first cancels the inner scope with everything in it.
#pragma once

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include "heddle/core/combinators.hpp"
#include "heddle/sched/detail/timer_queue.hpp"

namespace heddle {

using Clock = std::chrono::steady_clock;

// Thrown by with_deadline / with_timeout when time ran out before f finished.
class TimedOut : public std::runtime_error {
 public:
  TimedOut() : std::runtime_error("heddle: the deadline passed before the operation finished") {}
};

// The time timers and deadlines are measured against: Clock::now(), except
// in a task of a heddle::SimLoop, where it is the loop's virtual time.
Clock::time_point now();

// Parks the running task until `deadline` (a cancellation point); blocks a
// plain thread.
void sleep_until(Clock::time_point deadline);
void sleep_for(Clock::duration duration);

// A one-shot callback at a deadline. The callback runs on the thread that
// owns the timer queue (the Loop's thread; the timer thread for callers with
// no Loop). cancel() and the destructor wait for a callback that is running
// right now, so the Timer may be destroyed as soon as they return. A Timer
// armed on a Loop must not outlive that Loop.
class Timer {
 public:
  using Callback = void (*)(void* context);
  Timer() = default;
  ~Timer() { cancel(); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // (Re)arms the timer. Throws std::logic_error while its callback is running.
  void arm(Clock::time_point deadline, Callback callback, void* context);
  template <class F>
  void arm(Clock::time_point deadline, F& callable) {  // callable must outlive the firing
    arm(deadline, [](void* c) { (*static_cast<F*>(c))(); }, &callable);
  }
  // True if the timer was armed and now will not fire.
  bool cancel() noexcept;
  bool armed() const noexcept { return entry_.queued(); }

 private:
  detail::TimerEntry entry_;
  detail::TimerQueue* queue_ = nullptr;
};

namespace detail {
// Where the caller's timers go: its Loop's or SimLoop's queue, the queue of
// the Pool worker it runs on, or the process timer thread's. Chosen where
// the caller runs (a suspension hook runs on another context, so it must be
// chosen before suspending).
class TimerTarget {
 public:
  static TimerTarget for_caller();
  TimerQueue& queue() const noexcept { return *queue_; }
  // Wakes the queue's owner if the deadline became the earliest.
  void arm(TimerEntry* entry) const { arm_(owner_, entry); }
  bool cancel(TimerEntry* entry) const noexcept { return queue_->cancel(entry); }

  using ArmFunction = void (*)(void* owner, TimerEntry* entry);
  TimerTarget(TimerQueue* queue, ArmFunction arm, void* owner) noexcept : queue_(queue), arm_(arm), owner_(owner) {}

 private:
  TimerQueue* queue_;
  ArmFunction arm_;
  void* owner_;
};
}  // namespace detail

// Runs f (as a child task) and returns its result, unless `deadline` comes
// first: then f is cancelled and awaited, and heddle::TimedOut is thrown.
// If f finishes with a value even though the deadline passed (it was
// handed its value just before the cancel arrived), the value is returned:
// a result that was produced is never dropped (a receive that got a
// message returns it rather than throwing TimedOut).
template <class F>
auto with_deadline(Clock::time_point deadline, F&& f) -> std::invoke_result_t<std::decay_t<F>&> {
  auto child = spawn(std::forward<F>(f));  // eager: runs until it first waits
  if (child.finished()) return child.join();
  // The alarm is a task that sleeps until the deadline and then cancels
  // the child. A task, not a Timer callback: with no scheduler a wake-up
  // runs the woken task inline, and a callback must not run the child and
  // then this frame on the timer thread while the Timer that called it
  // (in this frame) is still in use.
  std::atomic<bool> expired{false};
  auto alarm = spawn([&] {
    sleep_until(deadline);
    expired.store(true, std::memory_order_release);
    child.cancel();
  });
  try {
    detail::wait_finished(child.control(), true);
  } catch (...) {
    throw;  // this task was cancelled: both handles cancel and await their tasks
  }
  alarm.cancel();
  detail::wait_finished(alarm.control(), false);  // never leave the alarm behind
  try {
    alarm.join();
  } catch (const Cancelled&) {  // the alarm's own cancellation, from just above
  }
  try {
    return child.join();
  } catch (const Cancelled&) {
    if (expired.load(std::memory_order_acquire) && !this_task::cancel_requested()) throw TimedOut{};
    throw;
  }
}

template <class F>
auto with_timeout(Clock::duration timeout, F&& f) -> std::invoke_result_t<std::decay_t<F>&> {
  return with_deadline(now() + timeout, std::forward<F>(f));
}

}  // namespace heddle
