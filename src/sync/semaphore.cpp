// heddle sync: Semaphore (hand-off policy in include/heddle/sync/semaphore.hpp).
#include "heddle/sync/semaphore.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace heddle {

Semaphore::Semaphore(std::ptrdiff_t initial, std::ptrdiff_t max) : count_(initial), max_(max) {
  if (max < 0 || initial < 0 || initial > max) {
    throw std::invalid_argument("heddle::Semaphore: the initial count must be in 0..max (initial " +
                                std::to_string(initial) + ", max " + std::to_string(max) + ")");
  }
}

Semaphore::~Semaphore() { check_destroyed_without_waiters("heddle::Semaphore", this); }

bool Semaphore::try_take() noexcept {
  std::ptrdiff_t count = count_.load(std::memory_order_relaxed);
  while (count > 0) {
    if (count_.compare_exchange_weak(count, count - 1, std::memory_order_acquire, std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

bool Semaphore::try_acquire() noexcept { return try_take(); }

void Semaphore::acquire() {
  if (try_take()) return;
  lock_.lock();  // released here, or by wait_on
  if (try_take()) {  // released between the first look and the lock
    lock_.unlock();
    return;
  }
  // The count is 0 and only rises under lock_, after the queue is served:
  // the release that claims us hands us a permit.
  detail::WaitNode node;
  detail::wait_on(lock_, waiters_, node);
}

void Semaphore::release(std::ptrdiff_t n) {
  if (n < 0) {
    throw std::invalid_argument("heddle::Semaphore::release: n must not be negative (n " + std::to_string(n) + ")");
  }
  if (n == 0) return;
  detail::WakeBatch batch;  // declared first: runs after the guard releases the lock
  detail::SpinLockGuard guard(lock_);
  // Only acquirers change the count outside the lock, and they only lower
  // it: a release that fits now still fits when the count is raised below.
  const std::ptrdiff_t count = count_.load(std::memory_order_relaxed);
  if (n > max_ - count) {
    guard.unlock();
    throw std::logic_error("heddle::Semaphore::release: the count would exceed its maximum (count " +
                           std::to_string(count) + " + n " + std::to_string(n) + " > max " + std::to_string(max_) +
                           ")");
  }
  std::ptrdiff_t left = n;
  while (left > 0) {
    detail::WaitNode* node = waiters_.pop_front();
    if (!node) break;
    if (detail::Wakeup wakeup = detail::claim(*node)) {
      batch.add(std::move(wakeup));  // one permit handed straight over
      --left;
    }
  }
  if (left > 0) count_.fetch_add(left, std::memory_order_release);
}

std::size_t Semaphore::waiters() const { return waiter_count(); }

}  // namespace heddle
