// heddle sync: Barrier (the cancellation rule is in include/heddle/sync/barrier.hpp).
#include "heddle/sync/barrier.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace heddle {

namespace {
// What a claimed waiter finds in its node's result (read under the lock).
constexpr std::uintptr_t kReleased = 1;  // the phase completed
constexpr std::uintptr_t kRetry = 2;     // a cancelled arrival spoiled it: arrive again, same phase
}  // namespace

Barrier::Barrier(std::ptrdiff_t count) : participants_(count) {
  if (count < 1) {
    throw std::invalid_argument("heddle::Barrier: the count of participants must be at least 1 (count " +
                                std::to_string(count) + ")");
  }
}

Barrier::~Barrier() { check_destroyed_without_waiters("heddle::Barrier", this); }

// Claims every waiter. Only if every claim wins were they all really
// there, and the phase completes; otherwise the claimed ones are sent back
// to arrive again. The verdict is written after all claims are decided,
// under lock_, and each claimed waiter reads it under lock_ too.
bool Barrier::release_phase(detail::WakeBatch& batch) noexcept {
  detail::WaitList claimed;
  bool all_claimed = true;
  while (detail::WaitNode* node = waiters_.pop_front()) {
    if (detail::Wakeup wakeup = detail::claim(*node)) {
      claimed.push_back(node);
      batch.add(std::move(wakeup));
    } else {
      all_claimed = false;  // cancelled: its arrival is withdrawn
    }
  }
  const std::uintptr_t verdict = all_claimed ? kReleased : kRetry;
  while (detail::WaitNode* node = claimed.pop_front()) node->result = verdict;
  if (all_claimed) ++phase_;
  return all_claimed;
}

void Barrier::arrive_and_wait() {
  // Held across the loop: released to run a release's wake-ups, and by
  // wait_on, and taken again each time round.
  lock_.lock();
  if (participants_ == 0) {
    lock_.unlock();
    throw std::logic_error("heddle::Barrier::arrive_and_wait: every participant has dropped out");
  }
  for (;;) {  // lock_ held here
    if (static_cast<std::ptrdiff_t>(waiters_.size()) + 1 >= participants_) {
      detail::WakeBatch batch;
      const bool released = release_phase(batch);
      lock_.unlock();
      batch.run();
      if (released) return;
      lock_.lock();
      continue;  // not complete after all: wait with the others
    }
    detail::WaitNode node;
    detail::wait_on(lock_, waiters_, node);  // cancelled: the arrival is withdrawn with the node
    lock_.lock();
    if (node.result == kReleased) {
      lock_.unlock();
      return;
    }
    // kRetry: arrive again in the same phase, lock_ still held.
  }
}

void Barrier::arrive_and_drop() {
  detail::WakeBatch batch;  // declared first: runs after the guard releases the lock
  detail::SpinLockGuard guard(lock_);
  if (participants_ == 0) {
    guard.unlock();
    throw std::logic_error("heddle::Barrier::arrive_and_drop: more drops than participants (every participant "
                           "has already dropped out)");
  }
  --participants_;
  // This drop is the current phase's arrival: it may complete it. If a
  // cancellation spoils the release, the re-arriving waiters complete it.
  if (!waiters_.empty() && static_cast<std::ptrdiff_t>(waiters_.size()) >= participants_) release_phase(batch);
}

std::ptrdiff_t Barrier::participants() const {
  detail::SpinLockGuard guard(lock_);
  return participants_;
}

std::size_t Barrier::waiters() const { return waiter_count(); }

std::uint64_t Barrier::phase() const {
  detail::SpinLockGuard guard(lock_);
  return phase_;
}

}  // namespace heddle
