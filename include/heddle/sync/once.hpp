// heddle sync: Once, run an initialisation exactly once, for tasks and
// threads alike.
//
// Owns: a state (not run, running, done), the identity of the caller that
// is running it, and the callers waiting for it. call_once(f) runs f in the
// first caller; callers that arrive meanwhile wait (a task parks, a thread
// blocks) and return once f has succeeded. As std::call_once: if f throws,
// the exception propagates to the caller that ran it, nothing is marked
// done, and the next caller runs f instead (it is handed to the first
// waiter, FIFO, or to the next caller to arrive). A task cancelled while it
// waits leaves without running f and without being owed a turn.
//
// Misuse throws std::logic_error: calling call_once on the same Once from
// inside its own f (it would wait for itself).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>

#include "heddle/sync/detail/wait_list.hpp"

namespace heddle {

class Once : private detail::GuardedWaiters {
 public:
  Once() noexcept = default;
  // Destroying a Once that still has waiters aborts (every build), naming it and one waiter.
  ~Once();
  Once(const Once&) = delete;
  Once& operator=(const Once&) = delete;

  // Runs f(args...) unless it already ran to completion; returns once it has.
  // From a task: a cancellation point while it waits for another caller's f.
  template <class F, class... Args>
  void call_once(F&& f, Args&&... args) {
    if (is_done()) return;
    if (!begin()) return;  // another caller's f succeeded
    try {
      std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
    } catch (...) {
      fail();
      throw;
    }
    succeed();
  }

  bool is_done() const noexcept { return state_.load(std::memory_order_acquire) == kDone; }
  std::size_t waiters() const;

 private:
  static constexpr std::uint32_t kIdle = 0;
  static constexpr std::uint32_t kRunning = 1;
  static constexpr std::uint32_t kDone = 2;

  // True when the caller must run f now; false when it is done.
  bool begin();
  void succeed() noexcept;
  void fail() noexcept;

  std::atomic<std::uint32_t> state_{kIdle};  // changed only under lock_; read without it
  std::uint64_t runner_ HEDDLE_GUARDED_BY(lock_) = 0;  // identity of the caller running f
};

}  // namespace heddle
