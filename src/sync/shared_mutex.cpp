// heddle sync: SharedMutex (policy in include/heddle/sync/shared_mutex.hpp).
#include "heddle/sync/shared_mutex.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "heddle/core/cancelled.hpp"

namespace heddle {

// Without the lock: nobody may hold it while the SharedMutex is destroyed.
SharedMutex::~SharedMutex() HEDDLE_NO_THREAD_SAFETY_ANALYSIS {
  detail::check_no_waiters("heddle::SharedMutex", this, waiters_, waiting_readers_);
}

// Every claimed reader enters: the count is raised for it before it runs.
std::size_t SharedMutex::admit_readers(detail::WakeBatch& batch) noexcept {
  std::size_t admitted = 0;
  while (detail::WaitNode* node = waiting_readers_.pop_front()) {
    if (detail::Wakeup wakeup = detail::claim(*node)) {
      ++readers_;
      ++admitted;
      batch.add(std::move(wakeup));
    }
  }
  return admitted;
}

// The first claimed writer owns the mutex from here (FIFO hand-off).
bool SharedMutex::hand_to_writer(detail::WakeBatch& batch) noexcept {
  while (detail::WaitNode* node = waiters_.pop_front()) {
    if (detail::Wakeup wakeup = detail::claim(*node)) {
      writer_held_ = true;
      writer_ = node->identity;
      batch.add(std::move(wakeup));
      return true;
    }
  }
  return false;
}

// Lets in whoever the policy allows now. Under lock_.
void SharedMutex::dispatch(detail::WakeBatch& batch, bool readers_first) noexcept {
  if (writer_held_) return;
  if (readers_first && admit_readers(batch) > 0) return;
  if (readers_ == 0 && hand_to_writer(batch)) return;
  if (waiters_.empty()) admit_readers(batch);
}

void SharedMutex::lock() {
  const std::uint64_t me = detail::current_waiter_identity();
  lock_.lock();  // released on every way out, the last by wait_on
  if (!writer_held_ && readers_ == 0 && waiters_.empty()) {
    writer_held_ = true;
    writer_ = me;
    lock_.unlock();
    return;
  }
  if (writer_held_ && writer_ == me) {
    lock_.unlock();
    throw std::logic_error("heddle::SharedMutex::lock: the caller already holds this mutex (it is not recursive)");
  }
  detail::WaitNode node;
  try {
    detail::wait_on(lock_, waiters_, node);
  } catch (const Cancelled&) {
    // Leaving may unblock readers that queued behind this writer.
    detail::WakeBatch batch;  // declared first: runs after the guard releases the lock
    {
      detail::SpinLockGuard guard(lock_);
      dispatch(batch, false);
    }
    throw;
  }
  // Handed over: writer_held_ and writer_ were set by whoever claimed us.
}

bool SharedMutex::try_lock() {
  const std::uint64_t me = detail::current_waiter_identity();
  detail::SpinLockGuard guard(lock_);
  const bool taken = !writer_held_ && readers_ == 0 && waiters_.empty();
  if (taken) {
    writer_held_ = true;
    writer_ = me;
  }
  return taken;
}

void SharedMutex::unlock() {
  const std::uint64_t me = detail::current_waiter_identity();
  detail::WakeBatch batch;  // declared first: runs after the guard releases the lock
  detail::SpinLockGuard guard(lock_);
  if (!writer_held_ || writer_ != me) {
    const bool held = writer_held_;
    guard.unlock();
    throw std::logic_error(held ? "heddle::SharedMutex::unlock: the mutex is not held by the caller (another "
                                  "writer holds it)"
                                : "heddle::SharedMutex::unlock: the mutex is not held by the caller (no writer "
                                  "holds it; readers release it with unlock_shared)");
  }
  writer_held_ = false;
  writer_ = 0;
  dispatch(batch, true);
}

void SharedMutex::lock_shared() {
  lock_.lock();  // released on every way out, the last by wait_on
  if (!writer_held_ && waiters_.empty()) {
    ++readers_;
    lock_.unlock();
    return;
  }
  if (writer_held_ && writer_ == detail::current_waiter_identity()) {
    lock_.unlock();
    throw std::logic_error(
        "heddle::SharedMutex::lock_shared: the caller holds this mutex exclusively (it would wait for itself)");
  }
  detail::WaitNode node;
  detail::wait_on(lock_, waiting_readers_, node);
  // Admitted: readers_ was raised for us by whoever claimed us.
}

bool SharedMutex::try_lock_shared() {
  detail::SpinLockGuard guard(lock_);
  const bool taken = !writer_held_ && waiters_.empty();
  if (taken) ++readers_;
  return taken;
}

void SharedMutex::unlock_shared() {
  detail::WakeBatch batch;  // declared first: runs after the guard releases the lock
  detail::SpinLockGuard guard(lock_);
  if (readers_ == 0) {
    guard.unlock();
    throw std::logic_error("heddle::SharedMutex::unlock_shared: no reader holds the mutex");
  }
  if (--readers_ == 0) dispatch(batch, false);
}

std::size_t SharedMutex::readers() const {
  detail::SpinLockGuard guard(lock_);
  return readers_;
}

std::size_t SharedMutex::waiting_writers() const { return waiter_count(); }

std::size_t SharedMutex::waiting_readers() const {
  detail::SpinLockGuard guard(lock_);
  return waiting_readers_.size();
}

}  // namespace heddle
