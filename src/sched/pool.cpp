// heddle sched: Pool (the protocol is described in include/heddle/sched/pool.hpp).
#include "heddle/sched/pool.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <typeinfo>

#include "heddle/arch/cpu_relax.hpp"
#include "heddle/arch/sanitizer.hpp"
#include "heddle/core/detail/spin_lock.hpp"
#include "heddle/core/detail/treiber_stack.hpp"
#include "heddle/sched/detail/work_stealing_deque.hpp"
#include "sys/futex.hpp"
#include "sys/timespec.hpp"
#include "wake_fd.hpp"

namespace heddle {
namespace detail {

// How many tasks were started and finished on one worker (or, for the
// outside counters, elsewhere). A worker's counters are written by that
// worker only, so its updates are a plain load and a release store, no
// locked instruction; live_tasks() reads every `finished` before every
// `started`, so a task whose finish it counts has its start counted too
// (the start happens before the finish) and the difference is never below
// the number of tasks alive throughout the read: never a false zero.
struct PoolCounters {
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> finished{0};
};

struct PoolWorker {
  Pool* pool = nullptr;
  std::size_t index = 0;
  std::thread thread;
  WorkStealingDeque deque;
  // Owner only.
  TaskControl* lifo = nullptr;
  int lifo_streak = 0;           // tasks run from the slot in a row
  IntrusiveQueue<TaskControl, &TaskControl::next_runnable> pinned;  // taken from the inbox, FIFO
  std::uint64_t random = 0;
  unsigned tick = 0;
  // Pinned tasks queued from any thread.
  TreiberStack<TaskControl, &TaskControl::next_runnable> inbox;
  // Parking: `word` is the futex; `listed` is guarded by Pool::sleep_mutex_.
  std::atomic<std::uint32_t> word{0};
  bool listed = false;
  std::atomic<bool> listed_hint{false};  // `listed`, readable without the mutex (push_inbox)
  PoolCounters counters;
  int handovers = 0;             // direct hand-overs since the dispatcher last ran
  // Timers of tasks that armed them on this worker; fired on its thread.
  TimerQueue timers;
  // The io layer's reactor for this worker (set on its first I/O), and the
  // eventfd that wakes the worker while it sleeps in the driver.
  std::unique_ptr<LoopDriver> driver;
  int wake_fd = -1;
  std::atomic<bool> has_driver{false};
  std::atomic<std::uint64_t> steals{0};
  std::atomic<std::uint64_t> global_pops{0};
  std::atomic<std::uint64_t> parks{0};
};

namespace {

constexpr unsigned kPinShift = 16;  // scheduler_word: pinned worker + 1, shifted
constexpr unsigned kGlobalEvery = 61;  // a prime, as Go uses: not in step with any batching
constexpr int kSpinRounds = 1000;
// Direct task-to-task hand-overs before the worker goes back to its
// dispatcher to fire timers and poll its reactor.
constexpr int kHandoverBudget = 64;
constexpr std::size_t kMaxWorkers = 4096;

thread_local PoolWorker* t_worker = nullptr;

// The store-then-load ordering of the parking protocol (pool.hpp): a
// seq_cst fence on each side. ThreadSanitizer does not model fences (GCC
// refuses them under -fsanitize=thread), so its builds use a read-modify-
// write of one shared word instead: those are totally ordered and
// synchronise, which gives the same guarantee at the price of a shared
// cache line.
#if HEDDLE_TSAN
std::atomic<std::uint64_t> parking_order{0};
inline void parking_fence() noexcept { parking_order.fetch_add(0, std::memory_order_seq_cst); }
#else
inline void parking_fence() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }
#endif

// Not inlined: a task may move between threads, so no caller may keep a
// thread-local's address across a suspension.
__attribute__((noinline)) PoolWorker* this_worker() noexcept { return t_worker; }

std::uint64_t next_random(std::uint64_t& state) noexcept {  // xorshift64
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

Pool* pool_of(TaskControl* task) noexcept {
  Scheduler* scheduler = task->scheduler;
  return scheduler && typeid(*scheduler) == typeid(Pool) ? static_cast<Pool*>(scheduler) : nullptr;
}

}  // namespace
}  // namespace detail

using detail::PoolWorker;
using detail::TaskControl;

Pool::Pool(std::size_t workers) { start(Options{workers, false}); }
Pool::Pool(Options options) { start(options); }

void Pool::start(Options options) {
  std::size_t count = options.workers;
  if (count == 0) count = std::max(1u, std::thread::hardware_concurrency());
  if (count > detail::kMaxWorkers) {
    throw std::invalid_argument("heddle::Pool: " + std::to_string(count) + " workers requested; at most " +
                                std::to_string(detail::kMaxWorkers));
  }
  std::vector<int> cpus;
  if (options.pin_threads) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
      throw std::system_error(errno, std::generic_category(), "heddle::Pool: sched_getaffinity");
    }
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  // One list per worker and one (index `count`) for tasks started outside.
  workers_.reserve(count + 1);
  for (std::size_t i = 0; i <= count; ++i) {
    auto worker = std::make_unique<PoolWorker>();
    worker->pool = this;
    worker->index = i;
    worker->random = 0x9e3779b97f4a7c15ull * (i + 1);
    workers_.push_back(std::move(worker));
  }
  // The extra entry only holds the outside list: keep it out of workers_.
  outside_ = std::move(workers_.back());
  workers_.pop_back();
  try {
    for (std::size_t i = 0; i < count; ++i) {
      PoolWorker& worker = *workers_[i];
      const int cpu = cpus.empty() ? -1 : cpus[i % cpus.size()];
      worker.thread = std::thread([this, &worker, cpu] {
        if (cpu >= 0) {
          cpu_set_t set;
          CPU_ZERO(&set);
          CPU_SET(cpu, &set);
          pthread_setaffinity_np(pthread_self(), sizeof set, &set);  // best effort: a failure only costs locality
        }
        const std::string name = "heddle-pool-" + std::to_string(worker.index);
        pthread_setname_np(pthread_self(), name.c_str());
        worker_main(worker);
      });
    }
  } catch (...) {
    stop_workers();
    throw;
  }
}

void Pool::check_accepting() const {
  if (!accepting_.load(std::memory_order_acquire)) {
    throw std::logic_error("heddle::Pool::spawn: the pool was shut down");
  }
}

Pool::~Pool() {
  shutdown();
  // The workers are joined: their reactors go now, on this thread.
  for (auto& worker : workers_) {
    worker->driver.reset();
    if (worker->wake_fd >= 0) ::close(worker->wake_fd);
  }
}

// ---- queues

void Pool::push_global(TaskControl* task) noexcept {
  {
    std::lock_guard lock(global_mutex_);
    global_.push_back(task);
    global_size_.fetch_add(1, std::memory_order_relaxed);
  }
  wake_one();
}

TaskControl* Pool::pop_global() noexcept {
  if (global_size_.load(std::memory_order_relaxed) == 0) return nullptr;
  std::lock_guard lock(global_mutex_);
  TaskControl* task = global_.pop_front();
  if (task) {
    global_size_.fetch_sub(1, std::memory_order_relaxed);
  }
  return task;
}

void Pool::push_local(PoolWorker& worker, TaskControl* task) noexcept {
  if (!worker.deque.push(task)) {
    push_global(task);  // full: the global queue takes the overflow
    return;
  }
  // An idle worker may steal it. No fence here, unlike the other pushes:
  // a task on a running worker's own deque is never lost (its owner pops
  // it), so a sleeper missed in the race only costs parallelism until the
  // next push sees it, and the fence would cost every spawn.
  if (sleeper_count_.load(std::memory_order_relaxed) != 0) wake_one();
}

void Pool::push_inbox(PoolWorker& worker, TaskControl* task) noexcept {
  worker.inbox.push(task);
  detail::parking_fence();  // the producer's half of the parking protocol
  if (worker.listed_hint.load(std::memory_order_relaxed)) wake(worker);
}

// ---- Scheduler

void Pool::schedule(TaskControl* claimed) noexcept {
  if (const std::uint32_t pin = claimed->scheduler_word >> detail::kPinShift) {
    push_inbox(*workers_[pin - 1], claimed);
    return;
  }
  PoolWorker* worker = detail::this_worker();
  if (worker && worker->pool == this) {
    if (sleeper_count_.load(std::memory_order_relaxed) == 0) {
      // Everyone is busy: run it next here, while its data is in cache.
      if (TaskControl* previous = std::exchange(worker->lifo, claimed)) push_local(*worker, previous);
      return;
    }
    push_local(*worker, claimed);  // someone is idle: let it steal the task
    return;
  }
  push_global(claimed);
}

void Pool::requeue(TaskControl* task, Requeue why) noexcept {
  if (const std::uint32_t pin = task->scheduler_word >> detail::kPinShift) {
    push_inbox(*workers_[pin - 1], task);
    return;
  }
  PoolWorker* worker = detail::this_worker();
  if (why == Requeue::spawned && worker && worker->pool == this) {
    push_local(*worker, task);  // the spawner's continuation: stealable
    return;
  }
  push_global(task);  // a yield: behind everything runnable now
}

bool Pool::on_scheduler_thread() const noexcept {
  PoolWorker* worker = detail::this_worker();
  return worker && worker->pool == this;
}

TaskControl* Pool::take_next_here() noexcept {
  PoolWorker* worker = detail::this_worker();
  if (!worker || worker->pool != this) return nullptr;
  if (++worker->handovers > detail::kHandoverBudget) return nullptr;  // let the dispatcher poll
  return find_work(*worker);
}

void Pool::task_started(TaskControl*) noexcept {
  PoolWorker* worker = detail::this_worker();
  if (worker && worker->pool == this) {
    auto& started = worker->counters.started;
    started.store(started.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  } else {
    outside_->counters.started.fetch_add(1, std::memory_order_acq_rel);
  }
}

void Pool::task_finished(TaskControl*) noexcept {
  PoolWorker* worker = detail::this_worker();
  if (worker && worker->pool == this) {
    auto& finished = worker->counters.finished;
    finished.store(finished.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  } else {
    outside_->counters.finished.fetch_add(1, std::memory_order_acq_rel);
  }
}

// ---- workers

TaskControl* Pool::find_work(PoolWorker& worker) noexcept {
  // Now and then the global queue first, so local work cannot starve it.
  if (++worker.tick % detail::kGlobalEvery == 0) {
    if (TaskControl* task = pop_global()) {
      worker.global_pops.fetch_add(1, std::memory_order_relaxed);
      worker.lifo_streak = 0;
      return task;
    }
  }
  if (!worker.inbox.empty()) {
    worker.pinned.append_chain(worker.inbox.take_all_in_arrival_order());  // behind those already taken
  }
  if (TaskControl* task = worker.pinned.pop_front()) {
    worker.lifo_streak = 0;
    return task;
  }
  if (worker.lifo) {
    if (worker.lifo_streak < kLifoBudget) {
      ++worker.lifo_streak;
      return std::exchange(worker.lifo, nullptr);
    }
    push_local(worker, std::exchange(worker.lifo, nullptr));  // streak over: behind the rest
  }
  worker.lifo_streak = 0;
  if (TaskControl* task = worker.deque.pop()) return task;
  if (TaskControl* task = pop_global()) {
    worker.global_pops.fetch_add(1, std::memory_order_relaxed);
    return task;
  }
  return nullptr;
}

TaskControl* Pool::steal_from_others(PoolWorker& worker) noexcept {
  const std::size_t count = workers_.size();
  if (count < 2) return nullptr;
  const std::size_t start = static_cast<std::size_t>(detail::next_random(worker.random) % count);
  for (std::size_t i = 0; i < count; ++i) {
    PoolWorker& victim = *workers_[(start + i) % count];
    if (&victim == &worker || victim.deque.maybe_empty()) continue;
    if (TaskControl* task = victim.deque.steal()) {
      worker.steals.fetch_add(1, std::memory_order_relaxed);
      return task;
    }
  }
  return nullptr;
}

bool Pool::has_work_for(const PoolWorker& worker) const noexcept {
  if (!worker.inbox.empty() || !worker.pinned.empty() || worker.lifo ||
      global_size_.load(std::memory_order_relaxed) != 0) {
    return true;
  }
  for (const auto& other : workers_) {
    if (!other->deque.maybe_empty()) return true;
  }
  return false;
}

void Pool::worker_main(PoolWorker& worker) {
  detail::t_worker = &worker;
  detail::set_thread_scheduler(this);
  for (;;) {
    worker.handovers = 0;
    if (!worker.timers.maybe_empty()) fire_timers(worker);
    if (worker.driver) worker.driver->poll();
    TaskControl* task = find_work(worker);
    if (!task) task = steal_from_others(worker);
    if (task) {
      detail::run_claimed_here(task);
      continue;
    }
    // Spin a little before sleeping: a wake-up that comes within a few
    // microseconds then costs no futex call on either side.
    bool found = false;
    for (int round = 0; round < detail::kSpinRounds && !found; ++round) {
      arch::cpu_relax();
      found = has_work_for(worker);
    }
    if (found) continue;
    if (stopping_.load(std::memory_order_acquire)) break;
    sleep(worker);
  }
  detail::set_thread_scheduler(nullptr);
  detail::t_worker = nullptr;
}

void Pool::fire_timers(PoolWorker& worker) {
  const detail::FiredTimers fired = worker.timers.fire_expired(detail::Clock::now());
  for (TaskControl* task = fired.tasks; task;) {
    TaskControl* next = task->next_runnable;
    task->next_runnable = nullptr;
    schedule(task);
    task = next;
  }
  detail::run_timer_callbacks(fired.callbacks);
}

// Sleeps until woken, until the worker's earliest timer, or until its
// reactor has completions; then withdraws from the sleepers (if nobody
// woke it) and returns to the dispatcher, which looks for work again.
void Pool::sleep(PoolWorker& worker) {
  {
    std::lock_guard lock(sleep_mutex_);
    worker.word.store(0, std::memory_order_relaxed);
    worker.listed = true;
    worker.listed_hint.store(true, std::memory_order_relaxed);
    sleepers_.push_back(&worker);
    sleeper_count_.fetch_add(1, std::memory_order_relaxed);
  }
  detail::parking_fence();  // the worker's half of the parking protocol
  const detail::Clock::time_point deadline = worker.timers.next_deadline();
  if (has_work_for(worker) || stopping_.load(std::memory_order_acquire) || deadline <= detail::Clock::now()) {
    withdraw(worker);
    return;
  }
  worker.parks.fetch_add(1, std::memory_order_relaxed);
  if (worker.driver) {
    worker.driver->wait(worker.wake_fd, deadline);
  } else if (deadline == detail::Clock::time_point::max()) {
    while (worker.word.load(std::memory_order_acquire) == 0) detail::futex_wait(&worker.word, 0);
  } else {
    // The steady clock is CLOCK_MONOTONIC, the futex deadline's clock.
    detail::futex_wait_until(&worker.word, 0, detail::to_timespec(detail::to_nanoseconds(deadline)));
  }
  withdraw(worker);
}

void Pool::withdraw(PoolWorker& worker) noexcept {
  std::lock_guard lock(sleep_mutex_);
  if (!worker.listed) return;  // a producer woke it
  worker.listed = false;
  worker.listed_hint.store(false, std::memory_order_relaxed);
  sleepers_.erase(std::find(sleepers_.begin(), sleepers_.end(), &worker));
  sleeper_count_.fetch_sub(1, std::memory_order_relaxed);
}

// Wakes a worker that a producer has just unlisted (word set to 1).
void Pool::notify(PoolWorker& worker) noexcept {
  detail::futex_wake(&worker.word);
  if (worker.has_driver.load(std::memory_order_acquire)) {
    detail::write_wake_fd(worker.wake_fd, "heddle::Pool");
  }
}

void Pool::wake_one() noexcept {
  detail::parking_fence();  // the producer's half of the parking protocol
  if (sleeper_count_.load(std::memory_order_relaxed) == 0) return;
  PoolWorker* worker = nullptr;
  {
    std::lock_guard lock(sleep_mutex_);
    if (sleepers_.empty()) return;
    worker = sleepers_.back();
    sleepers_.pop_back();
    worker->listed = false;
    worker->listed_hint.store(false, std::memory_order_relaxed);
    sleeper_count_.fetch_sub(1, std::memory_order_relaxed);
    worker->word.store(1, std::memory_order_release);
  }
  notify(*worker);
}

void Pool::wake(PoolWorker& worker) noexcept {
  {
    std::lock_guard lock(sleep_mutex_);
    if (!worker.listed) return;
    worker.listed = false;
    worker.listed_hint.store(false, std::memory_order_relaxed);
    sleepers_.erase(std::find(sleepers_.begin(), sleepers_.end(), &worker));
    sleeper_count_.fetch_sub(1, std::memory_order_relaxed);
    worker.word.store(1, std::memory_order_release);
  }
  notify(worker);
}

void Pool::stop_workers() noexcept {
  stopping_.store(true, std::memory_order_seq_cst);
  for (auto& worker : workers_) wake(*worker);
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
  }
}

// ---- shutdown and introspection

std::size_t Pool::live_tasks() const noexcept {
  std::uint64_t finished = outside_->counters.finished.load(std::memory_order_acquire);
  for (const auto& worker : workers_) finished += worker->counters.finished.load(std::memory_order_acquire);
  std::uint64_t started = outside_->counters.started.load(std::memory_order_acquire);
  for (const auto& worker : workers_) started += worker->counters.started.load(std::memory_order_acquire);
  return started > finished ? static_cast<std::size_t>(started - finished) : 0;
}

namespace {
struct CancelVisit {
  Pool* pool;
  std::size_t cancelled = 0;
};
}  // namespace

void Pool::shutdown() {
  if (TaskControl* task = detail::current_task(); task && task->scheduler == this) {
    throw std::logic_error("heddle::Pool::shutdown: called from one of the pool's own tasks (it would wait for itself)");
  }
  if (on_scheduler_thread()) throw std::logic_error("heddle::Pool::shutdown: called on one of the pool's workers");
  std::lock_guard lock(shutdown_mutex_);
  if (shut_down_.load(std::memory_order_acquire)) return;
  accepting_.store(false, std::memory_order_release);
  // Cancel every live task of this pool, found in the core's registry of
  // control blocks (so spawn pays nothing to be found here). Each woken
  // task is queued and unwinds on a worker. The cancel is tied to the
  // generation read with the scheduler: a block that finished and was
  // reused meanwhile (by any scheduler's task) has moved on and is left
  // alone. Tasks missed that way, and tasks spawned while others unwind,
  // are found on the next pass.
  for (;;) {
    CancelVisit visit{this};
    detail::for_each_control_block(
        [](TaskControl* block, void* context) {
          auto& v = *static_cast<CancelVisit*>(context);
          if (detail::cancel_if_scheduler(block, v.pool)) ++v.cancelled;
        },
        &visit);
    if (live_tasks() == 0) break;
    std::this_thread::sleep_for(std::chrono::microseconds(visit.cancelled ? 50 : 500));
  }
  stop_workers();
  shut_down_.store(true, std::memory_order_release);
}

Pool::Stats Pool::stats() const noexcept {
  Stats stats;
  for (const auto& worker : workers_) {
    stats.steals += worker->steals.load(std::memory_order_relaxed);
    stats.global_pops += worker->global_pops.load(std::memory_order_relaxed);
    stats.parks += worker->parks.load(std::memory_order_relaxed);
  }
  return stats;
}

Pool* Pool::current() noexcept {
  if (TaskControl* task = detail::current_task()) return detail::pool_of(task);
  PoolWorker* worker = detail::this_worker();
  return worker ? worker->pool : nullptr;
}

int Pool::current_worker() noexcept {
  PoolWorker* worker = detail::this_worker();
  if (!worker) return -1;
  if (TaskControl* task = detail::current_task(); task && task->scheduler != worker->pool) return -1;
  return static_cast<int>(worker->index);
}

void Pool::pin() {
  TaskControl* task = detail::current_task();
  PoolWorker* worker = detail::this_worker();
  if (!task || !detail::pool_of(task) || !worker || worker->pool != task->scheduler) {
    throw std::logic_error("heddle::Pool::pin: called outside a task of a heddle::Pool");
  }
  task->scheduler_word = static_cast<std::uint32_t>(worker->index + 1) << detail::kPinShift;
}

bool Pool::pinned() noexcept {
  TaskControl* task = detail::current_task();
  return task && detail::pool_of(task) && (task->scheduler_word >> detail::kPinShift) != 0;
}

PoolWorker* Pool::worker_here() noexcept {
  TaskControl* task = detail::current_task();
  PoolWorker* worker = detail::this_worker();
  if (!task || !worker || task->scheduler != worker->pool) return nullptr;
  return worker;
}

detail::TimerQueue& Pool::timer_queue(PoolWorker* worker) noexcept { return worker->timers; }

void Pool::arm_timer(PoolWorker* worker, detail::TimerEntry* entry) {
  if (worker->timers.arm(entry) && detail::this_worker() != worker) worker->pool->wake(*worker);
}

detail::LoopDriver* Pool::driver_here() noexcept {
  PoolWorker* worker = worker_here();
  return worker ? worker->driver.get() : nullptr;
}

void Pool::set_driver_here(std::unique_ptr<detail::LoopDriver> driver) {
  PoolWorker* worker = worker_here();
  if (!worker) throw std::logic_error("heddle::Pool::set_driver_here: not on a task of a Pool's worker");
  if (worker->driver) throw std::logic_error("heddle::Pool::set_driver_here: the worker already has a driver");
  if (worker->wake_fd < 0) {
    worker->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (worker->wake_fd < 0) throw std::system_error(errno, std::generic_category(), "heddle::Pool: eventfd");
  }
  worker->driver = std::move(driver);
  worker->has_driver.store(true, std::memory_order_release);
}

void Pool::unpin() {
  TaskControl* task = detail::current_task();
  if (!task || !detail::pool_of(task)) throw std::logic_error("heddle::Pool::unpin: called outside a task of a heddle::Pool");
  task->scheduler_word = 0;
}

}  // namespace heddle
