// heddle sched (internal): the work-stealing deque of a Pool worker.
//
// Owns: a fixed-capacity Chase-Lev deque of claimed tasks. The owner pushes
// and pops at the bottom (LIFO: the task it queued last is hottest in its
// cache); thieves steal from the top (FIFO: the oldest, usually the largest
// piece of work). The algorithm is the one of Chase and Lev, "Dynamic
// Circular Work-Stealing Deque" (SPAA 2005), in the C11 form proved by Lê,
// Pop, Cohen and Zappa Nardelli, "Correct and Efficient Work-Stealing for
// Weak Memory Models" (PPoPP 2013), with two changes:
//   - The capacity is fixed (a power of two); push() returns false when the
//     deque is full and the caller queues the task elsewhere (the Pool's
//     global queue), as tokio does, instead of growing the array.
//   - Where the paper pairs relaxed accesses with seq_cst fences, this uses
//     seq_cst accesses of `top` and `bottom` themselves. That is at least as
//     strong (every access joins the single total order the fences provided)
//     and ThreadSanitizer, which does not model fences, understands it.
//
// Who may do what: only the owning worker calls push() and pop(); any thread
// calls steal() and maybe_empty(). top only grows (by a successful CAS, from
// a thief or from the owner taking the last task); bottom is written by the
// owner only. The slots are atomics so a thief's read of a slot that the
// owner is overwriting (after the thief lost its CAS) is not a data race.
// Why a task is never taken twice: a thief takes slot t only by moving top
// from t to t+1; the owner takes the last task (top == bottom - 1) by the
// same CAS, and a non-last task only after publishing the smaller bottom
// with a seq_cst store that any later thief's seq_cst load of bottom sees.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "heddle/core/detail/control.hpp"

namespace heddle::detail {

class WorkStealingDeque {
 public:
  static constexpr std::size_t kCapacity = 1024;

  // Owner only. False when full.
  bool push(TaskControl* task) noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    const std::int64_t t = top_.load(std::memory_order_acquire);
    if (b - t >= static_cast<std::int64_t>(kCapacity)) return false;
    slot(b).store(task, std::memory_order_relaxed);
    bottom_.store(b + 1, std::memory_order_release);  // publishes the slot to thieves
    return true;
  }

  // Owner only: the task pushed last, or null.
  TaskControl* pop() noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    bottom_.store(b, std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    if (t > b) {  // empty
      bottom_.store(b + 1, std::memory_order_relaxed);
      return nullptr;
    }
    TaskControl* task = slot(b).load(std::memory_order_relaxed);
    if (t == b) {  // the last task: race the thieves for it
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) {
        task = nullptr;
      }
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return task;
  }

  // Any thread: the oldest task, or null (empty, or lost a race: the caller
  // may try another victim).
  TaskControl* steal() noexcept {
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    const std::int64_t b = bottom_.load(std::memory_order_seq_cst);
    if (t >= b) return nullptr;
    TaskControl* task = slot(t).load(std::memory_order_relaxed);
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) {
      return nullptr;
    }
    return task;
  }

  // Any thread, racy: a hint for "is there anything to steal here".
  bool maybe_empty() const noexcept {
    return bottom_.load(std::memory_order_relaxed) <= top_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<TaskControl*>& slot(std::int64_t index) noexcept {
    return slots_[static_cast<std::size_t>(index) & (kCapacity - 1)];
  }

  alignas(64) std::atomic<std::int64_t> top_{0};
  alignas(64) std::atomic<std::int64_t> bottom_{0};
  alignas(64) std::atomic<TaskControl*> slots_[kCapacity] = {};
};

}  // namespace heddle::detail
