// heddle core (internal): the short lock that guards primitives' wait lists
// and timer queues, and SpinLockGuard, which holds it for a scope.
//
// Critical sections under it are a few pointer moves and CASes; a task never
// parks while holding it except across the switch-out of a suspension, whose
// hook releases it right after. So spinning briefly, then yielding the
// thread (the holder may have been preempted), beats a futex mutex here.
// Both carry Clang's thread-safety attributes (core/detail/thread_safety.hpp):
// fields marked HEDDLE_GUARDED_BY a SpinLock are checked under -Wthread-safety.
#pragma once

#include <atomic>

#include "heddle/core/detail/thread_safety.hpp"

namespace heddle::detail {

// Test-and-test-and-set with a bounded spin, then yielding the thread.
class HEDDLE_CAPABILITY("spin lock") SpinLock {
 public:
  void lock() noexcept HEDDLE_ACQUIRE() {
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
    lock_slow();
  }
  bool try_lock() noexcept HEDDLE_TRY_ACQUIRE(true) {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept HEDDLE_RELEASE() { locked_.store(false, std::memory_order_release); }

 private:
  void lock_slow() noexcept;
  std::atomic<bool> locked_{false};
};

// Holds a SpinLock from construction to the end of its scope. unlock() ends
// the hold early (before running wake-ups, or throwing, which must not
// happen under the lock); the destructor then leaves the lock alone.
class HEDDLE_SCOPED_CAPABILITY SpinLockGuard {
 public:
  explicit SpinLockGuard(SpinLock& lock) noexcept HEDDLE_ACQUIRE(lock) : lock_(&lock) { lock.lock(); }
  ~SpinLockGuard() HEDDLE_RELEASE() {
    if (lock_) lock_->unlock();
  }
  SpinLockGuard(const SpinLockGuard&) = delete;
  SpinLockGuard& operator=(const SpinLockGuard&) = delete;

  void unlock() noexcept HEDDLE_RELEASE() {
    lock_->unlock();
    lock_ = nullptr;
  }

 private:
  SpinLock* lock_;
};

}  // namespace heddle::detail
