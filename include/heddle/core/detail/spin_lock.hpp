// heddle core (internal): the short lock that guards primitives' wait lists
// and timer queues.
//
// Critical sections under it are a few pointer moves and CASes; a task never
// parks while holding it except across the switch-out of a suspension, whose
// hook releases it right after. So spinning briefly, then yielding the
// thread (the holder may have been preempted), beats a futex mutex here.
#pragma once

#include <atomic>

namespace heddle::detail {

// Test-and-test-and-set with a bounded spin, then yielding the thread.
class SpinLock {
 public:
  void lock() noexcept {
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
    lock_slow();
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  void lock_slow() noexcept;
  std::atomic<bool> locked_{false};
};

}  // namespace heddle::detail
