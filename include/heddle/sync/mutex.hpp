// heddle sync: Mutex, mutual exclusion for tasks and threads alike.
//
// Owns: one state word, the owner's identity, and a FIFO of waiters. Works
// with std::lock_guard, std::unique_lock and std::scoped_lock. A task that
// has to wait parks (a cancellation point: a cancelled waiter leaves the
// queue without the lock); a thread that has to wait blocks.
//
// State word (state_), as in a futex mutex:
//   0 unlocked   lock: CAS 0 -> 1 (the whole fast path)
//   1 locked     unlock: CAS 1 -> 0 (the whole fast path)
//   2 locked, and there may be waiters: unlock takes the slow path
// Invariants, under lock_ (the SpinLock guarding waiters_): a waiter is
// queued only after moving the word to 2, so a non-empty queue means 2; the
// word is stored 0 only with the queue empty.
//
// Fairness: FIFO hand-off. When there are waiters, unlock() gives the mutex
// straight to the first one it can claim (that waiter becomes the owner)
// and the word never passes through 0, so a stream of new lockers cannot
// barge ahead: a queued waiter gets the mutex within as many unlocks as
// there are waiters ahead of it. Uncontended, lock() is a single CAS and
// unlock() a single CAS, like std::mutex.
//
// Ownership is checked: unlock() by anyone but the owner, and lock() by the
// owner (self-deadlock: the mutex is not recursive) throw std::logic_error.
// owner_ holds the holder's detail::current_waiter_identity() (a task's id,
// so a task may lock on one thread and unlock on another). Only a caller
// ever stores its own identity: unlock clears it, and a waiter handed the
// mutex names itself when it wakes, so "do I hold it?" is always exact.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "heddle/sync/detail/wait_list.hpp"

namespace heddle {

class Mutex : private detail::GuardedWaiters {
 public:
  Mutex() noexcept = default;
  // Destroying a Mutex that still has waiters aborts (every build), naming it and one waiter.
  ~Mutex();
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Takes the mutex, waiting for it if needed. From a task a cancellation
  // point while it waits (heddle::Cancelled, the mutex not taken). Throws
  // std::logic_error if the caller already holds it.
  void lock() {
    std::uint32_t unlocked = 0;
    if (state_.compare_exchange_strong(unlocked, 1, std::memory_order_acquire, std::memory_order_relaxed))
        [[likely]] {
      owner_.store(detail::current_waiter_identity(), std::memory_order_relaxed);
      return;
    }
    lock_slow(true);
  }

  // Takes the mutex if it is free, without waiting.
  bool try_lock() noexcept {
    std::uint32_t unlocked = 0;
    if (!state_.compare_exchange_strong(unlocked, 1, std::memory_order_acquire, std::memory_order_relaxed)) {
      return false;
    }
    owner_.store(detail::current_waiter_identity(), std::memory_order_relaxed);
    return true;
  }

  // Releases the mutex, handing it to the first waiter if there is one.
  // Throws std::logic_error if the caller does not hold it.
  void unlock() {
    if (owner_.load(std::memory_order_relaxed) != detail::current_waiter_identity()) [[unlikely]] {
      throw_not_held();
    }
    // Cleared before the release: the next owner's store must not be lost.
    owner_.store(0, std::memory_order_relaxed);
    std::uint32_t locked = 1;
    if (state_.compare_exchange_strong(locked, 0, std::memory_order_release, std::memory_order_relaxed))
        [[likely]] {
      return;
    }
    unlock_slow();
  }

  // True when the calling task or thread holds the mutex.
  bool held_by_caller() const noexcept {
    return owner_.load(std::memory_order_relaxed) == detail::current_waiter_identity();
  }
  // Waiters queued now (a snapshot, for tests and diagnostics).
  std::size_t waiters() const;

  // Internal (CondVar): lock() that is not a cancellation point, used to
  // take the mutex back while unwinding or after a wake-up.
  void lock_uninterruptible();

 private:
  void lock_slow(bool interruptible);
  void unlock_slow() noexcept;
  [[noreturn]] void throw_not_held() const;

  std::atomic<std::uint32_t> state_{0};
  std::atomic<std::uint64_t> owner_{0};  // current_waiter_identity of the holder, 0 when free
};

}  // namespace heddle
