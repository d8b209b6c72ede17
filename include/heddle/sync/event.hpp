// heddle sync: Event, a flag that tasks and threads wait on.
//
// Owns: a set/unset flag and its waiters. Manual reset: set() wakes every
// waiter and the event stays set until reset(). Automatic reset: set()
// wakes exactly one waiter, or, with none, stays set until the next wait()
// consumes it. Works between tasks, threads, and both mixed: a task waiting
// parks (a cancellation point), a thread waiting blocks.
#pragma once

#include <atomic>
#include <cstdint>

#include "heddle/sync/detail/wait_list.hpp"

namespace heddle {

class Event : private detail::GuardedWaiters {
 public:
  enum class Reset : std::uint8_t { manual, automatic };

  explicit Event(Reset reset = Reset::manual, bool initially_set = false) noexcept
      : reset_(reset), set_(initially_set) {}
  // Destroying an Event that still has waiters aborts (every build), naming
  // it and one waiter.
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void set();
  void reset() noexcept { set_.store(false, std::memory_order_release); }
  bool is_set() const noexcept { return set_.load(std::memory_order_acquire); }

  // Returns once the event is set (an automatic event is then unset again).
  // From a task: a cancellation point. From a thread: blocks the thread.
  void wait();
  // Waits at most until `deadline` (threads only; tasks use with_timeout).
  // Returns false on timeout.
  bool wait_until(std::chrono::steady_clock::time_point deadline);

  std::size_t waiters() const;

 private:
  bool try_consume() noexcept;
  bool wait_impl(const std::chrono::steady_clock::time_point* deadline);

  const Reset reset_;
  std::atomic<bool> set_;  // changed only under lock_ (reset() aside); read without it
};

}  // namespace heddle
