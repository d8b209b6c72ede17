// heddle sync: WaitGroup, waiting for a counted set of jobs to finish.
//
// Owns: a count of outstanding jobs and the waiters for it to reach zero.
// add(n) raises the count, done() lowers it by one; when it reaches zero
// every waiter is released at once. wait() returns at once when the count
// is zero. Reusable: once zero, add() starts a new round (waiters of the
// previous round were all released when it reached zero). A task waiting
// parks (a cancellation point: a cancelled waiter just leaves); a thread
// blocks.
//
// Bad input throws std::logic_error, with the count unchanged: a count that
// would go below zero (done() or add(-n) with too few jobs) or overflow.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "heddle/sync/detail/wait_list.hpp"

namespace heddle {

class WaitGroup : private detail::GuardedWaiters {
 public:
  explicit WaitGroup(std::int64_t initial = 0);
  // Destroying a WaitGroup that still has waiters aborts (every build), naming it and one waiter.
  ~WaitGroup();
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // Adds n jobs (n may be negative: -n jobs done).
  void add(std::int64_t n);
  // One job done.
  void done() { add(-1); }
  // Returns once the count is zero. From a task: a cancellation point.
  void wait();

  std::int64_t count() const noexcept { return count_.load(std::memory_order_acquire); }
  std::size_t waiters() const;

 private:
  std::atomic<std::int64_t> count_;  // changed only under lock_; read without it
};

}  // namespace heddle
