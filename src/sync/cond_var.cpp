// heddle sync: CondVar (the in-transit protocol is described in
// include/heddle/sync/cond_var.hpp).
#include "heddle/sync/cond_var.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace heddle {

// Without the lock: nobody may hold it while the CondVar is destroyed.
CondVar::~CondVar() HEDDLE_NO_THREAD_SAFETY_ANALYSIS {
  if (!waiters_.empty() || in_transit_ != 0) [[unlikely]] {
    detail::report_destroyed_with_waiters("heddle::CondVar", this, waiters_.size() + in_transit_, waiters_.front());
  }
}

bool CondVar::wait_impl(std::unique_lock<Mutex>& lock, const std::chrono::steady_clock::time_point* deadline,
                        const char* operation) {
  Mutex* mutex = lock.mutex();
  if (mutex == nullptr || !lock.owns_lock() || !mutex->held_by_caller()) {
    throw std::logic_error(std::string("heddle::CondVar::") + operation +
                           ": the unique_lock must hold its mutex, locked by the caller");
  }
  // Register first: from here a notify cannot miss us.
  {
    detail::SpinLockGuard guard(lock_);
    ++in_transit_;
  }
  mutex->unlock();  // may run the task it hands the mutex to, here; it may notify us
  lock_.lock();     // released here, or by wait_on
  --in_transit_;
  if (signals_ > 0) {  // notified while in transit
    --signals_;
    lock_.unlock();
    mutex->lock_uninterruptible();
    return true;
  }
  detail::WaitNode node;
  detail::WaitStatus status;
  try {
    status = detail::wait_on(lock_, waiters_, node, true, deadline);
  } catch (...) {
    mutex->lock_uninterruptible();  // unwind holding the mutex, as the unique_lock believes
    throw;
  }
  mutex->lock_uninterruptible();
  return status == detail::WaitStatus::woken;
}

void CondVar::wait(std::unique_lock<Mutex>& lock) { wait_impl(lock, nullptr, "wait"); }

std::cv_status CondVar::wait_until(std::unique_lock<Mutex>& lock, std::chrono::steady_clock::time_point deadline) {
  if (detail::current_task()) {
    throw std::logic_error(
        "heddle::CondVar::wait_until: tasks wait with a deadline through heddle::with_deadline");
  }
  return wait_impl(lock, &deadline, "wait_until") ? std::cv_status::no_timeout : std::cv_status::timeout;
}

void CondVar::notify_one() {
  detail::Wakeup wakeup;  // declared first: runs after the guard releases the lock
  detail::SpinLockGuard guard(lock_);
  while (detail::WaitNode* node = waiters_.pop_front()) {
    if (detail::Wakeup claimed = detail::claim(*node)) {
      wakeup = std::move(claimed);
      break;
    }
  }
  if (!wakeup && signals_ < in_transit_) ++signals_;
}

void CondVar::notify_all() {
  detail::WakeBatch batch;  // declared first: runs after the guard releases the lock
  detail::SpinLockGuard guard(lock_);
  while (detail::WaitNode* node = waiters_.pop_front()) batch.add(detail::claim(*node));
  signals_ = in_transit_;
}

std::size_t CondVar::waiters() const {
  detail::SpinLockGuard guard(lock_);
  return waiters_.size() + in_transit_;
}

}  // namespace heddle
