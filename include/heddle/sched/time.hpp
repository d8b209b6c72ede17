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
// Deadlines: with_deadline(d, f) runs f as a child task beside a timer; if
// the timer wins, f is cancelled (it unwinds from its suspension point) and
// awaited, and with_deadline throws heddle::TimedOut. Deadlines nest: an
// outer one that expires first cancels the inner scope with everything in it.
#pragma once

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
struct PoolWorker;
// Where the caller's timers go: its Loop's queue, the queue of the Pool
// worker it runs on, or the process timer thread's. Chosen where the caller
// runs (a suspension hook runs on another context, so it must be chosen
// before suspending).
class TimerTarget {
 public:
  static TimerTarget for_caller();
  TimerQueue& queue() const noexcept { return *queue_; }
  void arm(TimerEntry* entry) const;  // wakes the queue's owner if the deadline became the earliest
  bool cancel(TimerEntry* entry) const noexcept { return queue_->cancel(entry); }

 private:
  TimerTarget(Scheduler* loop, PoolWorker* worker, TimerQueue* queue) noexcept
      : loop_(loop), worker_(worker), queue_(queue) {}
  Scheduler* loop_;
  PoolWorker* worker_;
  TimerQueue* queue_;
};
}  // namespace detail

// Runs f (as a child task) and returns its result, unless `deadline` comes
// first: then f is cancelled and awaited, and heddle::TimedOut is thrown.
template <class F>
auto with_deadline(Clock::time_point deadline, F&& f) -> std::invoke_result_t<std::decay_t<F>&> {
  using T = std::invoke_result_t<std::decay_t<F>&>;
  auto result = select(std::forward<F>(f), [deadline] { sleep_until(deadline); });
  if (result.index() == 1) throw TimedOut{};
  if constexpr (std::is_void_v<T>) {
    return;
  } else {
    return std::get<0>(std::move(result));
  }
}

template <class F>
auto with_timeout(Clock::duration timeout, F&& f) -> std::invoke_result_t<std::decay_t<F>&> {
  return with_deadline(Clock::now() + timeout, std::forward<F>(f));
}

}  // namespace heddle
