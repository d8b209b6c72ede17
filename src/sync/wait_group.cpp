// heddle sync: WaitGroup.
#include "heddle/sync/wait_group.hpp"

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>

namespace heddle {

WaitGroup::WaitGroup(std::int64_t initial) : count_(initial) {
  if (initial < 0) {
    throw std::invalid_argument("heddle::WaitGroup: the initial count must not be negative (initial " +
                                std::to_string(initial) + ")");
  }
}

WaitGroup::~WaitGroup() { check_destroyed_without_waiters("heddle::WaitGroup", this); }

void WaitGroup::add(std::int64_t n) {
  detail::WakeBatch batch;  // declared first: runs after the guard releases the lock
  detail::SpinLockGuard guard(lock_);
  const std::int64_t count = count_.load(std::memory_order_relaxed);
  if (n < 0 ? count + n < 0 : count > std::numeric_limits<std::int64_t>::max() - n) {
    guard.unlock();
    throw std::logic_error(std::string("heddle::WaitGroup::") + (n == -1 ? "done" : "add") +
                           (n < 0 ? ": the count would go below zero (count " : ": the count would overflow (count ") +
                           std::to_string(count) + ", adding " + std::to_string(n) + ")");
  }
  const std::int64_t now = count + n;
  count_.store(now, std::memory_order_release);
  if (now == 0) {
    while (detail::WaitNode* node = waiters_.pop_front()) batch.add(detail::claim(*node));
  }
}

void WaitGroup::wait() {
  if (count_.load(std::memory_order_acquire) == 0) return;
  lock_.lock();  // released here, or by wait_on
  if (count_.load(std::memory_order_relaxed) == 0) {
    lock_.unlock();
    return;
  }
  detail::WaitNode node;
  detail::wait_on(lock_, waiters_, node);
}

std::size_t WaitGroup::waiters() const { return waiter_count(); }

}  // namespace heddle
