// heddle sched: the 4-ary timer heap.
#include "heddle/sched/detail/timer_queue.hpp"

#include <sched.h>

#include "heddle/core/detail/intrusive_queue.hpp"

namespace heddle::detail {

namespace {
constexpr std::size_t kArity = 4;
std::size_t parent_of(std::size_t i) noexcept { return (i - 1) / kArity; }
std::size_t first_child_of(std::size_t i) noexcept { return i * kArity + 1; }
}  // namespace

void TimerQueue::sift_up(std::size_t index) noexcept {
  TimerEntry* entry = heap_[index];
  while (index > 0) {
    const std::size_t parent = parent_of(index);
    if (!earlier(entry, heap_[parent])) break;
    place(heap_[parent], index);
    index = parent;
  }
  place(entry, index);
}

void TimerQueue::sift_down(std::size_t index) noexcept {
  TimerEntry* entry = heap_[index];
  const std::size_t size = heap_.size();
  for (;;) {
    const std::size_t first = first_child_of(index);
    if (first >= size) break;
    std::size_t best = first;
    const std::size_t last = first + kArity < size ? first + kArity : size;
    for (std::size_t child = first + 1; child < last; ++child) {
      if (earlier(heap_[child], heap_[best])) best = child;
    }
    if (!earlier(heap_[best], entry)) break;
    place(heap_[best], index);
    index = best;
  }
  place(entry, index);
}

void TimerQueue::remove_at(std::size_t index) noexcept {
  TimerEntry* removed = heap_[index];
  TimerEntry* last = heap_.back();
  heap_.pop_back();
  removed->index = TimerEntry::kNotQueued;
  if (last == removed) return;
  place(last, index);
  // The moved entry may belong above or below its new place.
  if (index > 0 && earlier(last, heap_[parent_of(index)])) {
    sift_up(index);
  } else {
    sift_down(index);
  }
}

bool TimerQueue::arm(TimerEntry* entry) {
  lock_.lock();
  if (entry->queued()) remove_at(entry->index);  // re-arming moves the deadline
  try {
    heap_.push_back(entry);
  } catch (...) {
    lock_.unlock();
    throw;
  }
  entry->sequence = next_sequence_++;
  if (entry->callback) entry->callback_state.store(TimerEntry::armed, std::memory_order_relaxed);
  sift_up(heap_.size() - 1);
  armed_.store(heap_.size(), std::memory_order_relaxed);
  const bool earliest = entry->index == 0;
  lock_.unlock();
  return earliest;
}

namespace {
thread_local const TimerEntry* t_running_callback = nullptr;
}

bool TimerQueue::cancel(TimerEntry* entry) noexcept {
  lock_.lock();
  const bool queued = entry->queued();
  if (queued) {
    remove_at(entry->index);
    armed_.store(heap_.size(), std::memory_order_relaxed);
    entry->callback_state.store(TimerEntry::idle, std::memory_order_relaxed);
  }
  lock_.unlock();
  if (!queued && entry->callback && t_running_callback != entry) {
    while (entry->callback_state.load(std::memory_order_acquire) == TimerEntry::firing) sched_yield();
  }
  return queued;
}

bool in_own_callback(const TimerEntry* entry) noexcept { return t_running_callback == entry; }

void run_timer_callbacks(TimerEntry* fired) noexcept {
  while (fired) {
    TimerEntry* next = fired->next_fired;  // read first: the callback may re-arm its timer
    t_running_callback = fired;
    fired->callback(fired->context);
    t_running_callback = nullptr;
    // Only if the callback did not re-arm its own timer.
    std::uint8_t firing = TimerEntry::firing;
    fired->callback_state.compare_exchange_strong(firing, TimerEntry::idle, std::memory_order_acq_rel);
    fired = next;
  }
}

FiredTimers TimerQueue::fire_expired(Clock::time_point now) noexcept {
  IntrusiveQueue<TaskControl, &TaskControl::next_runnable> tasks;
  IntrusiveQueue<TimerEntry, &TimerEntry::next_fired> callbacks;
  lock_.lock();
  while (!heap_.empty() && heap_.front()->deadline <= now) {
    TimerEntry* entry = heap_.front();
    remove_at(0);
    if (entry->callback) {
      entry->callback_state.store(TimerEntry::firing, std::memory_order_relaxed);
      callbacks.push_back(entry);
    } else if (TaskControl* task = entry->expire(entry)) {
      tasks.push_back(task);
    }
  }
  armed_.store(heap_.size(), std::memory_order_relaxed);
  lock_.unlock();
  return FiredTimers{tasks.take_all(), callbacks.take_all()};
}

Clock::time_point TimerQueue::next_deadline() const noexcept {
  lock_.lock();
  const Clock::time_point next = heap_.empty() ? Clock::time_point::max() : heap_.front()->deadline;
  lock_.unlock();
  return next;
}

std::size_t TimerQueue::size() const noexcept {
  lock_.lock();
  const std::size_t size = heap_.size();
  lock_.unlock();
  return size;
}

}  // namespace heddle::detail
