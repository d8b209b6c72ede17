// heddle sync: Once.
#include "heddle/sync/once.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace heddle {

namespace {
// What a claimed waiter finds in its node's result.
constexpr std::uintptr_t kWasDone = 1;  // f succeeded in another caller
constexpr std::uintptr_t kYourTurn = 2;  // f failed in another caller: run it now
}  // namespace

Once::~Once() { check_destroyed_without_waiters("heddle::Once", this); }

bool Once::begin() {
  const std::uint64_t me = detail::current_waiter_identity();
  lock_.lock();  // released on every way out, the last by wait_on
  const std::uint32_t state = state_.load(std::memory_order_relaxed);
  if (state == kDone) {
    lock_.unlock();
    return false;
  }
  if (state == kIdle) {
    state_.store(kRunning, std::memory_order_relaxed);
    runner_ = me;
    lock_.unlock();
    return true;
  }
  if (runner_ == me) {
    lock_.unlock();
    throw std::logic_error("heddle::Once::call_once: called again from inside its own function (it would wait "
                           "for itself)");
  }
  detail::WaitNode node;
  detail::wait_on(lock_, waiters_, node);
  // The result was written before the claim that woke us, under lock_.
  return node.result == kYourTurn;
}

void Once::succeed() noexcept {
  detail::WakeBatch batch;  // declared first: runs after the guard releases the lock
  detail::SpinLockGuard guard(lock_);
  state_.store(kDone, std::memory_order_release);
  runner_ = 0;
  while (detail::WaitNode* node = waiters_.pop_front()) {
    node->result = kWasDone;
    batch.add(detail::claim(*node));
  }
}

void Once::fail() noexcept {
  detail::Wakeup wakeup;  // declared first: runs after the guard releases the lock
  detail::SpinLockGuard guard(lock_);
  // Hand the run to the first waiter that can be claimed; the state stays
  // "running", now in its name. With none, the next caller runs it.
  while (detail::WaitNode* node = waiters_.pop_front()) {
    node->result = kYourTurn;
    runner_ = node->identity;
    if (detail::Wakeup claimed = detail::claim(*node)) {
      wakeup = std::move(claimed);
      break;
    }
  }
  if (!wakeup) {
    runner_ = 0;
    state_.store(kIdle, std::memory_order_relaxed);
  }
}

std::size_t Once::waiters() const { return waiter_count(); }

}  // namespace heddle
