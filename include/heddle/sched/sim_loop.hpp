// heddle sched: SimLoop, a deterministic scheduler for testing concurrent code.
//
// Owns: a single-threaded scheduler whose every choice comes from one seed,
// and a virtual clock. Where a Loop runs ready tasks in the order they were
// woken and fires timers when the real clock says so, a SimLoop
//   - picks the next task to run at random among all ready ones;
//   - sometimes (one step in eight while a timer is armed) moves time on to
//     the next timer before running ready work, so timeouts race wake-ups;
//   - keeps virtual time: when nothing is ready, the clock jumps to the next
//     deadline, so a sleep of an hour finishes at once;
//   - fails loudly on a deadlock: run() throws SimDeadlock (after printing
//     every parked task) when tasks are parked and no timer can wake them.
// Given the same seed and the same program, a run makes the same choices
// in the same order (trace() summarises them), so a failure found with one
// seed replays exactly: every error message names the seed, and
// SimLoop::seeds() returns just HEDDLE_SIM_SEED when that is set.
//
// What keeps it deterministic: one thread runs everything. Tasks must not
// read the real clock (use heddle::now(), which is virtual under a SimLoop)
// or be woken by other threads (a wake from another thread is accepted and
// queued, but when it lands is up to that thread). I/O is not supported.
//
// Same interface as Loop: spawn(), run(), stop(), current(); destroying a
// SimLoop cancels its live tasks and runs them until they have unwound.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "heddle/core/scheduler.hpp"
#include "heddle/core/task.hpp"
#include "heddle/sched/detail/timer_queue.hpp"

namespace heddle {

// Thrown by SimLoop::run when live tasks are parked and nothing can wake them.
class SimDeadlock : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

class SimLoop final : public Scheduler, public SpawnsTasks<SimLoop> {
 public:
  using Clock = std::chrono::steady_clock;

  explicit SimLoop(std::uint64_t seed);
  ~SimLoop();
  SimLoop(const SimLoop&) = delete;
  SimLoop& operator=(const SimLoop&) = delete;

  // Spawns f as a task of this simulation (core/task.hpp, SpawnsTasks).
  using SpawnsTasks<SimLoop>::spawn;

  // Runs until no task is alive and no timer is armed, or until stop().
  // Throws SimDeadlock if tasks are parked with nothing left to wake them,
  // std::logic_error if already running.
  void run();
  void stop() noexcept { stop_requested_ = true; }
  // Whether run() prints every parked task to stderr before throwing
  // SimDeadlock (default: yes).
  void dump_on_deadlock(bool dump) noexcept { dump_on_deadlock_ = dump; }

  // The SimLoop whose task is running, or whose thread is running it.
  static SimLoop* current() noexcept;

  std::uint64_t seed() const noexcept { return seed_; }
  // Virtual time: starts at the same point in every run.
  Clock::time_point now() const noexcept { return now_; }
  // The next number of the seeded stream, for a test's own random choices
  // (what to cancel, when): they then replay with the seed too.
  std::uint64_t random() noexcept;
  // Tasks run so far, and a hash of every choice made (which task ran at
  // each step, and when time moved).
  std::uint64_t steps() const noexcept { return steps_; }
  std::uint64_t trace() const noexcept { return trace_; }
  std::size_t live_tasks() const noexcept { return live_; }

  // The seeds a test should run: {HEDDLE_SIM_SEED} when set, otherwise
  // `count` seeds from `first` (HEDDLE_SIM_SEEDS overrides count). Throws
  // std::invalid_argument naming a variable that is not a number.
  static std::vector<std::uint64_t> seeds(std::size_t count, std::uint64_t first = 1);

  // Scheduler.
  void schedule(detail::TaskControl* claimed) noexcept override;
  bool on_scheduler_thread() const noexcept override;
  void task_started(detail::TaskControl* task) noexcept override;
  void task_finished(detail::TaskControl* task) noexcept override;

  // Internal (sched/time.cpp): this loop's timers, on virtual time.
  void arm_timer(detail::TimerEntry* entry) { timers_.arm(entry); }
  detail::TimerQueue& timer_queue() noexcept { return timers_; }

 private:
  void mix(std::uint64_t value) noexcept;
  void take_remote();
  void fire_timers();
  [[noreturn]] void report_deadlock();
  void cancel_all_and_drain();

  std::uint64_t seed_;
  std::uint64_t random_state_;
  std::uint64_t steps_ = 0;
  std::uint64_t trace_ = 0;
  std::uint64_t next_sequence_ = 0;  // numbers tasks in spawn order: stable across runs
  Clock::time_point now_;
  const void* owner_;  // detail::this_thread_marker() of the thread that made or runs it
  bool running_ = false;
  bool stop_requested_ = false;
  bool dump_on_deadlock_ = true;
  std::size_t live_ = 0;
  std::vector<detail::TaskControl*> ready_;
  detail::TaskControl* tasks_head_ = nullptr;  // live tasks, for cancelling them at destruction
  std::mutex remote_mutex_;
  std::vector<detail::TaskControl*> remote_;  // woken from other threads
  detail::TimerQueue timers_;
};

}  // namespace heddle
