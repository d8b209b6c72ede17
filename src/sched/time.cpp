// heddle sched: sleeping, timers, and the process timer thread.
#include "heddle/sched/time.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "heddle/sched/loop.hpp"
#include "heddle/sched/pool.hpp"
#include "heddle/sched/sim_loop.hpp"

namespace heddle {
namespace detail {
namespace {

// Timers of callers with no Loop: a thread that sleeps until the earliest
// deadline, fires what expired, and wakes sleeping tasks inline (they have
// no scheduler, so they resume on this thread). Started on first use and
// never stopped: tasks may sleep until the process exits.
class TimerThread {
 public:
  TimerThread() {
    std::thread([this] { loop(); }).detach();
  }
  TimerQueue& queue() noexcept { return queue_; }
  void arm(TimerEntry* entry) {
    if (queue_.arm(entry)) {
      std::lock_guard lock(mutex_);
      ++changes_;
      changed_.notify_one();
    }
  }

 private:
  [[noreturn]] void loop() {
    for (;;) {
      const FiredTimers fired = queue_.fire_expired(Clock::now());
      for (TaskControl* task = fired.tasks; task;) {
        TaskControl* next = task->next_runnable;
        task->next_runnable = nullptr;
        run_claimed(task);
        task = next;
      }
      run_timer_callbacks(fired.callbacks);
      std::unique_lock lock(mutex_);
      const std::uint64_t seen = changes_;
      const Clock::time_point next = queue_.next_deadline();
      if (next <= Clock::now()) continue;
      if (next == Clock::time_point::max()) {
        changed_.wait(lock, [&] { return changes_ != seen; });
      } else {
        changed_.wait_until(lock, next, [&] { return changes_ != seen; });
      }
    }
  }

  TimerQueue queue_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t changes_ = 0;
};

TimerThread& timer_thread() {
  static auto* thread = new TimerThread;  // never destroyed: see above
  return *thread;
}

struct SleepEntry : TimerEntry {
  Resumer resumer;
};

TaskControl* expire_sleep(TimerEntry* entry) noexcept {
  auto* sleep = static_cast<SleepEntry*>(entry);
  TaskControl* task = sleep->resumer.control();
  return claim_task(task, sleep->resumer.generation()) == Claim::claimed ? task : nullptr;
}

}  // namespace

TimerTarget TimerTarget::for_caller() {
  if (Loop* loop = Loop::current()) {
    return TimerTarget(&loop->timer_queue(), [](void* owner, TimerEntry* entry) {
      static_cast<Loop*>(owner)->arm_timer(entry);
    }, loop);
  }
  if (PoolWorker* worker = Pool::worker_here()) {
    return TimerTarget(&Pool::timer_queue(worker), [](void* owner, TimerEntry* entry) {
      Pool::arm_timer(static_cast<PoolWorker*>(owner), entry);
    }, worker);
  }
  if (SimLoop* sim = SimLoop::current()) {
    return TimerTarget(&sim->timer_queue(), [](void* owner, TimerEntry* entry) {
      static_cast<SimLoop*>(owner)->arm_timer(entry);
    }, sim);
  }
  TimerThread& thread = timer_thread();
  return TimerTarget(&thread.queue(), [](void* owner, TimerEntry* entry) {
    static_cast<TimerThread*>(owner)->arm(entry);
  }, &thread);
}

}  // namespace detail

void sleep_until(Clock::time_point deadline) {
  if (!detail::current_task()) {
    std::this_thread::sleep_until(deadline);
    return;
  }
  detail::SleepEntry entry;
  entry.deadline = deadline;
  entry.expire = &detail::expire_sleep;
  const detail::TimerTarget target = detail::TimerTarget::for_caller();
  detail::suspend_named("heddle::sleep_until",
      [&](const Resumer& r) {
        entry.resumer = r;
        target.arm(&entry);
      },
      [&]() noexcept { target.cancel(&entry); });
}

void sleep_for(Clock::duration duration) { sleep_until(now() + duration); }

Clock::time_point now() {
  if (SimLoop* sim = SimLoop::current()) return sim->now();
  return Clock::now();
}

void Timer::arm(Clock::time_point deadline, Callback callback, void* context) {
  if (entry_.callback_state.load(std::memory_order_acquire) == detail::TimerEntry::firing &&
      !detail::in_own_callback(&entry_)) {
    throw std::logic_error("heddle::Timer::arm: the timer's callback is running; arm a new Timer instead");
  }
  if (queue_) queue_->cancel(&entry_);
  const detail::TimerTarget target = detail::TimerTarget::for_caller();
  queue_ = &target.queue();
  entry_.deadline = deadline;
  entry_.callback = callback;
  entry_.context = context;
  target.arm(&entry_);
}

bool Timer::cancel() noexcept { return queue_ != nullptr && queue_->cancel(&entry_); }

}  // namespace heddle
