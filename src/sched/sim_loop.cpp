// heddle sched: SimLoop (semantics in include/heddle/sched/sim_loop.hpp).
#include "heddle/sched/sim_loop.hpp"

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <string>
#include <typeinfo>

#include "heddle/core/dump.hpp"
#include "heddle/sys/thread_marker.hpp"

namespace heddle {

namespace {

thread_local SimLoop* t_running_sim = nullptr;

// One step in this many, while a timer is armed and tasks are ready, time
// moves on to the next deadline first.
constexpr std::uint64_t kEarlyTimerOdds = 8;

// Virtual time starts here in every run (not at the real clock's now: a
// run must not depend on when it happens).
constexpr auto kEpoch = std::chrono::hours(24);

std::uint64_t split_mix(std::uint64_t& state) noexcept {  // SplitMix64: a good stream from any seed
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::uint64_t parse_seed(const char* name, const char* text) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text, &end, 0);
  if (errno != 0 || end == text || *end != '\0') {
    throw std::invalid_argument(std::string("heddle::SimLoop: ") + name + "=" + text + " is not a number");
  }
  return value;
}

}  // namespace

SimLoop::SimLoop(std::uint64_t seed)
    : seed_(seed), random_state_(seed), now_(Clock::time_point(kEpoch)), owner_(detail::this_thread_marker()) {}

SimLoop::~SimLoop() {
  if (live_ != 0) cancel_all_and_drain();
}

std::uint64_t SimLoop::random() noexcept { return split_mix(random_state_); }

void SimLoop::mix(std::uint64_t value) noexcept {
  trace_ = (trace_ ^ value) * 0x100000001b3ull;  // FNV-1a step
}

SimLoop* SimLoop::current() noexcept {
  if (detail::TaskControl* task = detail::current_task()) {
    Scheduler* scheduler = task->scheduler;
    return scheduler && typeid(*scheduler) == typeid(SimLoop) ? static_cast<SimLoop*>(scheduler) : nullptr;
  }
  return t_running_sim;
}

std::vector<std::uint64_t> SimLoop::seeds(std::size_t count, std::uint64_t first) {
  if (const char* one = std::getenv("HEDDLE_SIM_SEED"); one && *one) return {parse_seed("HEDDLE_SIM_SEED", one)};
  if (const char* many = std::getenv("HEDDLE_SIM_SEEDS"); many && *many) {
    count = static_cast<std::size_t>(parse_seed("HEDDLE_SIM_SEEDS", many));
  }
  std::vector<std::uint64_t> result;
  result.reserve(count);
  for (std::size_t i = 0; i < count; ++i) result.push_back(first + i);
  return result;
}

bool SimLoop::on_scheduler_thread() const noexcept { return owner_ == detail::this_thread_marker(); }

void SimLoop::schedule(detail::TaskControl* claimed) noexcept {
  if (on_scheduler_thread()) {
    ready_.push_back(claimed);  // may throw bad_alloc: then we terminate, as for any noexcept
    return;
  }
  std::lock_guard lock(remote_mutex_);
  remote_.push_back(claimed);
}

void SimLoop::task_started(detail::TaskControl* task) noexcept {
  ++live_;
  task->scheduler_word = static_cast<std::uint32_t>(++next_sequence_);
  task->scheduler_prev = nullptr;
  task->scheduler_next = tasks_head_;
  if (tasks_head_) tasks_head_->scheduler_prev = task;
  tasks_head_ = task;
}

void SimLoop::task_finished(detail::TaskControl* task) noexcept {
  if (task->scheduler_prev) task->scheduler_prev->scheduler_next = task->scheduler_next;
  else tasks_head_ = task->scheduler_next;
  if (task->scheduler_next) task->scheduler_next->scheduler_prev = task->scheduler_prev;
  task->scheduler_prev = task->scheduler_next = nullptr;
  --live_;
}

void SimLoop::take_remote() {
  std::lock_guard lock(remote_mutex_);
  ready_.insert(ready_.end(), remote_.begin(), remote_.end());
  remote_.clear();
}

void SimLoop::fire_timers() {
  const detail::FiredTimers fired = timers_.fire_expired(now_);
  for (detail::TaskControl* task = fired.tasks; task;) {
    detail::TaskControl* next = task->next_runnable;
    task->next_runnable = nullptr;
    ready_.push_back(task);
    task = next;
  }
  detail::run_timer_callbacks(fired.callbacks);
}

void SimLoop::report_deadlock() {
  if (dump_on_deadlock_) {
    std::cerr << "heddle::SimLoop: deadlock (seed " << seed_ << ", step " << steps_ << "): " << live_
              << " task(s) parked and no timer armed; replay with HEDDLE_SIM_SEED=" << seed_ << "\n";
    dump_tasks(std::cerr);
  }
  throw SimDeadlock("heddle::SimLoop: deadlock at step " + std::to_string(steps_) + ": " + std::to_string(live_) +
                    " task(s) parked and no timer armed; replay with HEDDLE_SIM_SEED=" + std::to_string(seed_));
}

void SimLoop::run() {
  if (running_) throw std::logic_error("heddle::SimLoop::run: the loop is already running");
  running_ = true;
  owner_ = detail::this_thread_marker();
  SimLoop* previous_sim = std::exchange(t_running_sim, this);
  Scheduler* previous_scheduler = detail::thread_scheduler();
  detail::set_thread_scheduler(this);
  struct Restore {
    SimLoop* loop;
    SimLoop* previous_sim;
    Scheduler* previous_scheduler;
    ~Restore() {
      detail::set_thread_scheduler(previous_scheduler);
      t_running_sim = previous_sim;
      loop->running_ = false;
    }
  } restore{this, previous_sim, previous_scheduler};
  stop_requested_ = false;

  for (;;) {
    take_remote();
    if (!timers_.maybe_empty()) fire_timers();
    if (stop_requested_) return;
    if (!ready_.empty()) {
      if (!timers_.maybe_empty() && random() % kEarlyTimerOdds == 0) {
        now_ = std::max(now_, timers_.next_deadline());  // time passes before the next step
        mix(static_cast<std::uint64_t>(now_.time_since_epoch().count()));
        continue;
      }
      const std::size_t pick = static_cast<std::size_t>(random() % ready_.size());
      detail::TaskControl* task = ready_[pick];
      ready_[pick] = ready_.back();
      ready_.pop_back();
      ++steps_;
      mix(task->scheduler_word);
      detail::run_claimed_here(task);
      continue;
    }
    if (!timers_.maybe_empty()) {
      now_ = std::max(now_, timers_.next_deadline());  // nothing to do until then: jump
      mix(static_cast<std::uint64_t>(now_.time_since_epoch().count()));
      continue;
    }
    if (live_ == 0) return;
    {
      std::lock_guard lock(remote_mutex_);
      if (!remote_.empty()) continue;
    }
    report_deadlock();
  }
}

void SimLoop::cancel_all_and_drain() {
  // Cancel every live task (each is queued here as it is woken), then run
  // until they have unwound; a task that cannot unwind is a deadlock.
  for (;;) {
    detail::TaskControl* task = tasks_head_;
    while (task && (task->state.load(std::memory_order_acquire) & detail::kCancelRequested)) {
      task = task->scheduler_next;
    }
    if (!task) break;
    detail::request_cancel(task);
  }
  if (live_ != 0 && !running_) {
    try {
      run();
    } catch (const SimDeadlock&) {
      // Printed already; tasks that cannot unwind stay parked (and leak) rather than crash.
    }
  }
}

}  // namespace heddle
