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

WaitGroup::~WaitGroup() { detail::check_no_waiters("heddle::WaitGroup", this, waiters_); }

void WaitGroup::add(std::int64_t n) {
  detail::WakeBatch batch;
  lock_.lock();
  const std::int64_t count = count_.load(std::memory_order_relaxed);
  if (n < 0 ? count + n < 0 : count > std::numeric_limits<std::int64_t>::max() - n) {
    lock_.unlock();
    throw std::logic_error(std::string("heddle::WaitGroup::") + (n == -1 ? "done" : "add") +
                           (n < 0 ? ": the count would go below zero (count " : ": the count would overflow (count ") +
                           std::to_string(count) + ", adding " + std::to_string(n) + ")");
  }
  const std::int64_t now = count + n;
  count_.store(now, std::memory_order_release);
  if (now == 0) {
    while (detail::WaitNode* node = waiters_.pop_front()) batch.add(detail::claim(*node));
  }
  lock_.unlock();
}

void WaitGroup::wait() {
  if (count_.load(std::memory_order_acquire) == 0) return;
  lock_.lock();
  if (count_.load(std::memory_order_relaxed) == 0) {
    lock_.unlock();
    return;
  }
  detail::WaitNode node;
  detail::wait_on(lock_, waiters_, node);
}

std::size_t WaitGroup::waiters() const {
  lock_.lock();
  const std::size_t count = waiters_.size();
  lock_.unlock();
  return count;
}

}  // namespace heddle
