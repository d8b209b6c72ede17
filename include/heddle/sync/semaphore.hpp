// heddle sync: Semaphore, a counting semaphore for tasks and threads.
//
// Owns: a count of permits (0..max) and a FIFO of waiters. acquire() takes a
// permit, waiting while there is none; release(n) gives n back. A task
// waiting parks (a cancellation point: a cancelled waiter leaves holding no
// permit); a thread blocks.
//
// Fairness: FIFO hand-off. release() gives each permit straight to the
// first waiter it can claim, without raising the count, so an acquirer that
// arrives later cannot take a permit a queued waiter was owed. Invariant,
// under the lock: a non-empty queue means the count is 0, which is why an
// uncontended acquire() may take a permit with one CAS and no lock.
//
// Bad input throws: a negative initial count, initial > max or max < 0
// (std::invalid_argument); release(n) with n < 0 (std::invalid_argument);
// a release that would raise the count past max (std::logic_error naming
// the count, n and max; nothing is released then).
#pragma once

#include <atomic>
#include <cstddef>
#include <limits>

#include "heddle/sync/detail/wait_list.hpp"

namespace heddle {

class Semaphore : private detail::GuardedWaiters {
 public:
  explicit Semaphore(std::ptrdiff_t initial, std::ptrdiff_t max = std::numeric_limits<std::ptrdiff_t>::max());
  // Destroying a Semaphore that still has waiters aborts (every build), naming it and one waiter.
  ~Semaphore();
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // Takes a permit, waiting for one if needed. From a task: a cancellation
  // point while it waits.
  void acquire();
  // Takes a permit if one is free, without waiting.
  bool try_acquire() noexcept;
  // Gives n permits back: to queued waiters first (FIFO), the rest to the count.
  void release(std::ptrdiff_t n = 1);

  std::ptrdiff_t max() const noexcept { return max_; }
  // Permits free now, and waiters queued now (snapshots).
  std::ptrdiff_t available() const noexcept { return count_.load(std::memory_order_acquire); }
  std::size_t waiters() const;

 private:
  bool try_take() noexcept;

  std::atomic<std::ptrdiff_t> count_;
  const std::ptrdiff_t max_;
};

}  // namespace heddle
