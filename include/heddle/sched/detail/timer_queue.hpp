// heddle sched (internal): a queue of timers ordered by deadline.
//
// Owns: a 4-ary min-heap of intrusive TimerEntry pointers, keyed by
// (deadline, sequence number) so that timers with equal deadlines fire in the
// order they were armed. Each entry knows its heap index: cancelling is
// O(log n) with no search and no allocation beyond the heap's array.
// Why a heap and not a hierarchical timing wheel: a heap fires exactly in
// deadline order at any resolution with one structure and no tick; a wheel's
// O(1) arming only pays off past about a million armed timers, and its
// cascading makes "never early, always in order" harder to keep. The 4-ary
// layout halves the depth of a binary heap and keeps siblings in one cache
// line.
//
// Thread safety: every operation takes the queue's SpinLock; entries are
// armed and cancelled from any thread, fired by the owner (a Loop, or the
// process-wide timer thread).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <atomic>
#include <limits>
#include <vector>

#include "heddle/core/detail/control.hpp"
#include "heddle/core/detail/spin_lock.hpp"

namespace heddle::detail {

using Clock = std::chrono::steady_clock;

// A timer, in one of two kinds:
//  - a task timer (`expire` set): expire() runs under the queue's lock, must
//    be short and not touch the queue, and returns a claimed task to run
//    after unlocking (or null);
//  - a callback timer (`callback` set): the callback runs after unlocking,
//    on the queue owner's thread. Its state word makes cancel() wait for a
//    callback that is running, so the entry may be destroyed after cancel().
//      idle -> armed (arm) -> idle (cancel, under the lock)
//      armed -> firing (fire_expired, under the lock) -> idle (after the callback)
struct TimerEntry {
  static constexpr std::size_t kNotQueued = std::numeric_limits<std::size_t>::max();
  enum CallbackState : std::uint8_t { idle, armed, firing };
  Clock::time_point deadline{};
  std::uint64_t sequence = 0;
  std::size_t index = kNotQueued;
  TaskControl* (*expire)(TimerEntry* self) noexcept = nullptr;
  void (*callback)(void* context) = nullptr;
  void* context = nullptr;
  std::atomic<std::uint8_t> callback_state{idle};
  TimerEntry* next_fired = nullptr;
  bool queued() const noexcept { return index != kNotQueued; }
};

struct FiredTimers {
  TaskControl* tasks = nullptr;      // claimed tasks, in deadline order, linked by next_runnable
  TimerEntry* callbacks = nullptr;   // callback timers now firing, in order, linked by next_fired
};
// Runs fired callbacks (after the queue's lock is released) and returns
// each entry to idle.
void run_timer_callbacks(TimerEntry* fired) noexcept;
// True while `entry`'s own callback runs on this thread.
bool in_own_callback(const TimerEntry* entry) noexcept;

class TimerQueue {
 public:
  // Returns true when the entry became the earliest (the owner may need to
  // wake up sooner).
  bool arm(TimerEntry* entry);
  // Returns true if the entry was queued and is now removed (it will not
  // fire). For a callback timer that is firing, waits until its callback
  // has returned (unless called from that callback) and returns false.
  bool cancel(TimerEntry* entry) noexcept;
  // Expires every entry whose deadline is <= now, in deadline order.
  FiredTimers fire_expired(Clock::time_point now) noexcept;
  // The earliest deadline, or Clock::time_point::max() when empty.
  Clock::time_point next_deadline() const noexcept;
  std::size_t size() const noexcept;
  // Racy but cheap: lets the owner skip reading the clock when nothing is armed.
  bool maybe_empty() const noexcept { return armed_.load(std::memory_order_relaxed) == 0; }

 private:
  bool earlier(const TimerEntry* a, const TimerEntry* b) const noexcept {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->sequence < b->sequence);
  }
  void place(TimerEntry* entry, std::size_t index) noexcept {
    heap_[index] = entry;
    entry->index = index;
  }
  void sift_up(std::size_t index) noexcept;
  void sift_down(std::size_t index) noexcept;
  void remove_at(std::size_t index) noexcept;

  mutable SpinLock lock_;
  std::vector<TimerEntry*> heap_;
  std::atomic<std::size_t> armed_{0};  // heap_.size(), readable without the lock
  std::uint64_t next_sequence_ = 0;
};

}  // namespace heddle::detail
