// heddle sync: Event.
#include "heddle/sync/event.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace heddle {

Event::~Event() { check_destroyed_without_waiters("heddle::Event", this); }

bool Event::try_consume() noexcept {
  if (reset_ == Reset::manual) return set_.load(std::memory_order_acquire);
  bool expected = true;
  return set_.compare_exchange_strong(expected, false, std::memory_order_acq_rel);
}

void Event::set() {
  detail::WakeBatch batch;  // declared first: runs after the guard releases the lock
  detail::SpinLockGuard guard(lock_);
  if (reset_ == Reset::manual) {
    set_.store(true, std::memory_order_release);
    while (detail::WaitNode* node = waiters_.pop_front()) batch.add(detail::claim(*node));
  } else {
    bool handed = false;
    while (detail::WaitNode* node = waiters_.pop_front()) {
      if (detail::Wakeup wakeup = detail::claim(*node)) {
        batch.add(std::move(wakeup));  // the set is handed straight to this waiter
        handed = true;
        break;
      }
    }
    if (!handed) set_.store(true, std::memory_order_release);
  }
}

bool Event::wait_impl(const std::chrono::steady_clock::time_point* deadline) {
  if (try_consume()) return true;
  lock_.lock();  // released here, or by wait_on
  if (try_consume()) {  // set between the first look and the lock
    lock_.unlock();
    return true;
  }
  detail::WaitNode node;
  return detail::wait_on(lock_, waiters_, node, true, deadline) == detail::WaitStatus::woken;
}

void Event::wait() { wait_impl(nullptr); }

bool Event::wait_until(std::chrono::steady_clock::time_point deadline) {
  if (detail::current_task()) {
    throw std::logic_error("heddle::Event::wait_until: tasks wait with a deadline through heddle::with_deadline");
  }
  return wait_impl(&deadline);
}

std::size_t Event::waiters() const { return waiter_count(); }

}  // namespace heddle
