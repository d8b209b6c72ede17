// heddle sync: CondVar, a condition variable over heddle::Mutex.
//
// Owns: the waiters of one condition and the notifications in flight to
// them. Tasks and threads may wait on, and notify, the same CondVar. A task
// waiting parks (a cancellation point); a thread blocks.
//
// wait() registers the caller with the condition *before* it releases the
// mutex, so a notify made under the mutex after the waiter checked its
// predicate is never lost. The mutex is released outside the condition's
// own lock (releasing it may run the task it is handed to, inline, and that
// task may notify), so between the two steps the waiter is "in transit": a
// notify_one that finds no parked waiter but a waiter in transit leaves it a
// signal, which that waiter takes instead of parking; notify_all signals
// every waiter in transit. notify_one wakes parked waiters in FIFO order.
//
// Returning (woken, timed out, or unwinding heddle::Cancelled), wait() always
// holds the mutex again: it re-acquires it uninterruptibly, so a notified
// waiter always returns normally (a notification is never swallowed by a
// cancellation; the cancellation is delivered at the task's next
// cancellation point) and a cancelled one unwinds with the lock held, as
// its std::unique_lock expects. Spurious wake-ups do not happen, but wait
// with a predicate (or a loop) as with any condition variable.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <utility>

#include "heddle/sync/detail/wait_list.hpp"
#include "heddle/sync/mutex.hpp"

namespace heddle {

class CondVar : private detail::GuardedWaiters {
 public:
  CondVar() noexcept = default;
  // Destroying a CondVar that still has waiters aborts (every build), naming it and one waiter.
  ~CondVar();
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases the mutex, waits for a notification, re-acquires the mutex.
  // Throws std::logic_error if `lock` does not hold its mutex (or the
  // caller does not hold it). From a task: a cancellation point.
  void wait(std::unique_lock<Mutex>& lock);

  template <class Predicate>
  void wait(std::unique_lock<Mutex>& lock, Predicate stop_waiting) {
    while (!stop_waiting()) wait(lock);
  }

  // Threads only (tasks: std::logic_error; they wait with a deadline
  // through heddle::with_deadline). Waits at most until `deadline`; the
  // mutex is held again on return either way.
  std::cv_status wait_until(std::unique_lock<Mutex>& lock, std::chrono::steady_clock::time_point deadline);

  template <class Predicate>
  bool wait_until(std::unique_lock<Mutex>& lock, std::chrono::steady_clock::time_point deadline,
                  Predicate stop_waiting) {
    while (!stop_waiting()) {
      if (wait_until(lock, deadline) == std::cv_status::timeout) return stop_waiting();
    }
    return true;
  }

  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<Mutex>& lock, std::chrono::duration<Rep, Period> timeout) {
    return wait_until(lock, std::chrono::steady_clock::now() +
                                std::chrono::ceil<std::chrono::steady_clock::duration>(timeout));
  }

  template <class Rep, class Period, class Predicate>
  bool wait_for(std::unique_lock<Mutex>& lock, std::chrono::duration<Rep, Period> timeout, Predicate stop_waiting) {
    return wait_until(lock,
                      std::chrono::steady_clock::now() +
                          std::chrono::ceil<std::chrono::steady_clock::duration>(timeout),
                      std::move(stop_waiting));
  }

  // Wakes one waiter (the longest parked), if any.
  void notify_one();
  // Wakes every waiter.
  void notify_all();

  // Waiters registered now, parked or about to park (a snapshot, for tests
  // and diagnostics).
  std::size_t waiters() const;

 private:
  bool wait_impl(std::unique_lock<Mutex>& lock, const std::chrono::steady_clock::time_point* deadline,
                 const char* operation);

  std::size_t in_transit_ HEDDLE_GUARDED_BY(lock_) = 0;  // waiters between registering and parking
  // Notifications left for waiters in transit (<= in_transit_).
  std::size_t signals_ HEDDLE_GUARDED_BY(lock_) = 0;
};

}  // namespace heddle
