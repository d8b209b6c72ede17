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

Once::~Once() { detail::check_no_waiters("heddle::Once", this, waiters_); }

bool Once::begin() {
  const std::uint64_t me = detail::current_waiter_identity();
  lock_.lock();
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
  detail::WakeBatch batch;
  lock_.lock();
  state_.store(kDone, std::memory_order_release);
  runner_ = 0;
  while (detail::WaitNode* node = waiters_.pop_front()) {
    node->result = kWasDone;
    batch.add(detail::claim(*node));
  }
  lock_.unlock();
}

void Once::fail() noexcept {
  detail::Wakeup wakeup;
  lock_.lock();
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
  lock_.unlock();
}

std::size_t Once::waiters() const {
  lock_.lock();
  const std::size_t count = waiters_.size();
  lock_.unlock();
  return count;
}

}  // namespace heddle
