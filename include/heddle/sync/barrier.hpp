// heddle sync: Barrier, a reusable rendezvous of a fixed number of
// participants, tasks and threads alike.
//
// Owns: the number of participants and the arrivals waiting in the current
// phase. arrive_and_wait() waits until `count` participants have arrived;
// the count-th arrival releases them all (it does not wait) and the barrier
// resets for the next phase. arrive_and_drop() leaves for good: it counts as
// an arrival in the current phase and lowers the count for every later one.
//
// The arrivals of a phase are the waiters on its list, so cancellation has
// one rule: a task cancelled while it waits withdraws its arrival, and the
// phase still needs `count` arrivals (a replacement, or the task again,
// must arrive). If a cancellation races with the arrival that completes the
// phase (the cancel has won its waiter's claim), the phase is not released:
// the waiters already claimed go back to waiting in the same phase, and the
// next arrival completes it. A thread waiting blocks (threads are never
// cancelled).
//
// Bad input throws: Barrier(count) with count < 1 (std::invalid_argument);
// more drops than participants, or arriving when every participant has
// dropped (std::logic_error).
#pragma once

#include <cstddef>
#include <cstdint>

#include "heddle/sync/detail/wait_list.hpp"

namespace heddle {

class Barrier : private detail::GuardedWaiters {
 public:
  explicit Barrier(std::ptrdiff_t count);
  // Destroying a Barrier that still has waiters aborts (every build), naming it and one waiter.
  ~Barrier();
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  // Arrives and waits for the phase to complete. From a task: a cancellation
  // point (a cancelled waiter withdraws its arrival).
  void arrive_and_wait();
  // Arrives and leaves: this participant is not counted in later phases.
  void arrive_and_drop();

  // Snapshots, for tests and diagnostics.
  std::ptrdiff_t participants() const;  // arrivals each phase needs now
  std::size_t waiters() const;          // arrivals waiting in the current phase
  std::uint64_t phase() const;          // phases completed so far

 private:
  bool release_phase(detail::WakeBatch& batch) noexcept HEDDLE_REQUIRES(lock_);

  std::ptrdiff_t participants_ HEDDLE_GUARDED_BY(lock_);
  std::uint64_t phase_ HEDDLE_GUARDED_BY(lock_) = 0;
};

}  // namespace heddle
