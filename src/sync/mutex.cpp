// heddle sync: Mutex (state word and hand-off policy in
// include/heddle/sync/mutex.hpp).
#include "heddle/sync/mutex.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <utility>

namespace heddle {

Mutex::~Mutex() { check_destroyed_without_waiters("heddle::Mutex", this); }

void Mutex::lock_uninterruptible() {
  std::uint32_t unlocked = 0;
  if (state_.compare_exchange_strong(unlocked, 1, std::memory_order_acquire, std::memory_order_relaxed)) {
    owner_.store(detail::current_waiter_identity(), std::memory_order_relaxed);
    return;
  }
  lock_slow(false);
}

void Mutex::lock_slow(bool interruptible) {
  const std::uint64_t me = detail::current_waiter_identity();
  // Only the caller itself ever stores its own identity, so this read is
  // exact for the question "do I hold it?".
  if (owner_.load(std::memory_order_relaxed) == me) {
    throw std::logic_error("heddle::Mutex::lock: the caller already holds this mutex (it is not recursive)");
  }
  lock_.lock();  // released on taking the mutex, or by wait_on
  std::uint32_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (s == 0) {  // the queue is empty (invariant): take it
      if (state_.compare_exchange_weak(s, 1, std::memory_order_acquire, std::memory_order_relaxed)) {
        owner_.store(me, std::memory_order_relaxed);
        lock_.unlock();
        return;
      }
    } else if (s == 1) {  // make the holder's unlock take the slow path
      if (state_.compare_exchange_weak(s, 2, std::memory_order_relaxed, std::memory_order_relaxed)) break;
    } else {
      break;
    }
  }
  // The word is 2 and stays so while we are queued: the unlock that claims
  // us hands the mutex over without freeing it.
  detail::WaitNode node;
  detail::wait_on(lock_, waiters_, node, interruptible);
  // Handed over. owner_ was cleared by the unlock that handed it (before
  // the claim that woke us), so no other identity is ever stored here.
  owner_.store(me, std::memory_order_relaxed);
}

void Mutex::unlock_slow() noexcept {
  detail::Wakeup wakeup;  // declared first: runs after the guard releases the lock
  detail::SpinLockGuard guard(lock_);
  while (detail::WaitNode* node = waiters_.pop_front()) {
    if (detail::Wakeup claimed = detail::claim(*node)) {
      // Hand-off: the word stays locked and the claimed waiter owns the
      // mutex; it names itself owner when it returns from lock().
      if (waiters_.empty()) state_.store(1, std::memory_order_relaxed);
      wakeup = std::move(claimed);
      break;
    }
    // A waiter that is leaving (cancelled): skip it.
  }
  if (!wakeup) state_.store(0, std::memory_order_release);
}  // the new owner runs (or is unparked) here, after the lock is released

void Mutex::throw_not_held() const {
  throw std::logic_error(owner_.load(std::memory_order_relaxed) == 0
                             ? "heddle::Mutex::unlock: the mutex is not held by the caller (nobody holds it)"
                             : "heddle::Mutex::unlock: the mutex is not held by the caller (another task or "
                               "thread holds it)");
}

std::size_t Mutex::waiters() const { return waiter_count(); }

}  // namespace heddle
