// heddle sched: Pool, a work-stealing scheduler on N worker threads.
//
// Owns: the worker threads, one work-stealing deque and one LIFO slot per
// worker, a global queue for work from other threads, an inbox per worker
// for tasks pinned to it, and the parking of idle workers.
//
// Where a task runs:
//   - Spawn stays eager (work-first, as in Cilk): a task spawned by a Pool
//     task runs at once on the spawning worker, and the spawner's
//     continuation goes on that worker's deque, where idle workers steal it.
//     A spawn from outside the Pool queues the task on the global queue.
//   - A task woken on a worker goes in that worker's LIFO slot (it runs
//     next, while its data is still in cache) unless some worker is idle:
//     then on the deque, where the idle worker can steal it. The task the
//     slot held moves to the deque; at most kLifoBudget tasks in a row run
//     from the slot, so two tasks waking each other cannot starve the rest.
//   - A task woken from any other thread goes on the global queue.
//   - A worker looks for work in this order: its pinned inbox, its LIFO
//     slot, its deque, the global queue (first, one time in 61, so it is
//     never starved), then the other workers' deques from a random one.
//   - A task never runs on two threads at once: it is queued only once
//     claimed (core/detail/control.hpp), and taken from a queue only once.
//   - pin() keeps the running task on its current worker: it is then only
//     ever queued in that worker's inbox, which no other worker reads.
//
// Parking protocol (no lost wake-ups). Each worker has a futex word; idle
// workers are listed in `sleepers_` (under sleep_mutex_) and counted in
// sleeper_count_.
//   worker going idle:  under the mutex, word = 0, list itself, count + 1;
//                       seq_cst fence; look at every queue once more; if
//                       there is work, unlist itself (if nobody has yet)
//                       and run it; else futex-wait while word == 0.
//   producer:           queue the task; seq_cst fence; if count != 0, under
//                       the mutex unlist one sleeper, count - 1, word = 1,
//                       futex-wake it.
// The fences order each side's write before its read (Dekker): either the
// producer sees the worker counted, or the worker's last look sees the
// task. A worker pushing on its own deque skips the fence (it only reads
// the count): that task cannot be lost, since the pushing worker is awake
// and pops it itself, so a sleeper missed there costs parallelism only
// until the next push. Only the producer that unlists a worker sets its word, and only the
// worker resets it, so a wake-up is never consumed by the wrong sleep.
//
// Thread-locals: a Pool task may resume on another worker after any
// suspension point, so use heddle::TaskLocal (core/task_local.hpp) for
// per-task state, or pin() the task.
//
// Timers: each worker has a timer queue. A task's timers go on the queue
// of the worker it runs on when it arms them, and fire on that worker's
// thread (an idle worker sleeps until its earliest deadline).
//
// I/O: each worker has its own reactor (io_uring or epoll), made on its
// first I/O, polled every dispatcher turn and slept in when idle. A task
// doing I/O is pinned to its worker for the length of the operation, so
// its completion, its timeout and its cancellation all happen on the
// thread that owns the ring or epoll set; between operations it may move.
//
// Shutdown: shutdown() (and the destructor) cancels every live task, waits
// until all have unwound, then stops and joins the workers. Nothing leaks:
// a handle to a task of a shut-down Pool joins as cancelled.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "heddle/core/detail/intrusive_queue.hpp"
#include "heddle/core/scheduler.hpp"
#include "heddle/core/task.hpp"
#include "heddle/sched/detail/loop_driver.hpp"
#include "heddle/sched/detail/timer_queue.hpp"

namespace heddle {

namespace detail {
struct PoolWorker;
}

class Pool final : public Scheduler, public SpawnsTasks<Pool> {
 public:
  // Tasks run from the LIFO slot in a row before the worker looks elsewhere.
  static constexpr int kLifoBudget = 3;

  struct Options {
    std::size_t workers = 0;        // 0: std::thread::hardware_concurrency()
    bool pin_threads = false;       // pin worker i to CPU i % (CPUs in the affinity mask)
  };

  // Starts the worker threads. Throws std::invalid_argument for more than
  // 4096 workers, std::system_error if a thread cannot start.
  explicit Pool(std::size_t workers = 0);
  explicit Pool(Options options);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Spawns f as a task of this pool: eagerly when called from one of its
  // tasks, otherwise queued to start on a worker. [[nodiscard]]: a dropped
  // handle cancels and joins the task.
  // Throws std::logic_error after shutdown().
  using SpawnsTasks<Pool>::spawn;

  // Runs f as a task of this pool and waits for it (blocking the calling
  // thread, or parking the calling task); returns its value or rethrows.
  template <class F>
  auto run(F&& f, SpawnOptions options = {}, SourceLocation site = SourceLocation::current()) {
    return spawn(std::forward<F>(f), options, site).join();
  }

  // Cancels every live task, waits until they have all unwound, then stops
  // the workers. Idempotent. Throws std::logic_error from one of the pool's
  // own tasks (it would wait for itself).
  void shutdown();

  std::size_t workers() const noexcept { return workers_.size(); }
  std::size_t live_tasks() const noexcept;

  // The pool whose task is running, or whose worker thread this is; else null.
  static Pool* current() noexcept;
  // The index of the worker running the caller, or -1 off the pool.
  static int current_worker() noexcept;
  // Keeps the running task on the worker it runs on now, until unpin().
  // Throws std::logic_error outside a Pool task.
  static void pin();
  static void unpin();
  // True when the running task is a Pool task pinned to its worker.
  static bool pinned() noexcept;

  // Internal (sched/time.cpp): the worker running the caller's Pool task,
  // or null; its timer queue; arming on it (waking the worker if the timer
  // became its earliest).
  static detail::PoolWorker* worker_here() noexcept;
  static detail::TimerQueue& timer_queue(detail::PoolWorker* worker) noexcept;
  static void arm_timer(detail::PoolWorker* worker, detail::TimerEntry* entry);
  // Internal (io layer): the driver of the worker running the caller (null
  // until set), and installing it. Both on the worker's own thread.
  static detail::LoopDriver* driver_here() noexcept;
  static void set_driver_here(std::unique_ptr<detail::LoopDriver> driver);

  struct Stats {
    std::uint64_t steals = 0;        // tasks taken from another worker's deque
    std::uint64_t global_pops = 0;   // tasks taken from the global queue
    std::uint64_t parks = 0;         // times a worker went to sleep
  };
  Stats stats() const noexcept;

  // Scheduler.
  void schedule(detail::TaskControl* claimed) noexcept override;
  bool on_scheduler_thread() const noexcept override;
  detail::TaskControl* take_next_here() noexcept override;
  void task_started(detail::TaskControl* task) noexcept override;
  void task_finished(detail::TaskControl* task) noexcept override;
  void requeue(detail::TaskControl* task, Requeue why) noexcept override;
  bool spawns_work_first() const noexcept override { return true; }

 private:
  friend struct detail::PoolWorker;
  void start(Options options);
  friend class SpawnsTasks<Pool>;
  void check_accepting() const;
  void worker_main(detail::PoolWorker& worker);
  detail::TaskControl* find_work(detail::PoolWorker& worker) noexcept;
  detail::TaskControl* steal_from_others(detail::PoolWorker& worker) noexcept;
  detail::TaskControl* pop_global() noexcept;
  void push_global(detail::TaskControl* task) noexcept;
  void push_local(detail::PoolWorker& worker, detail::TaskControl* task) noexcept;
  void push_inbox(detail::PoolWorker& worker, detail::TaskControl* task) noexcept;
  bool has_work_for(const detail::PoolWorker& worker) const noexcept;
  void sleep(detail::PoolWorker& worker);
  void withdraw(detail::PoolWorker& worker) noexcept;
  void fire_timers(detail::PoolWorker& worker);
  void notify(detail::PoolWorker& worker) noexcept;
  void wake_one() noexcept;
  void wake(detail::PoolWorker& worker) noexcept;
  void stop_workers() noexcept;

  std::vector<std::unique_ptr<detail::PoolWorker>> workers_;
  std::unique_ptr<detail::PoolWorker> outside_;  // holds the list of tasks started from outside
  std::atomic<bool> accepting_{true};
  // Global queue: FIFO, linked by next_runnable.
  std::mutex global_mutex_;
  detail::IntrusiveQueue<detail::TaskControl, &detail::TaskControl::next_runnable> global_;
  std::atomic<std::size_t> global_size_{0};
  // Parking.
  std::mutex sleep_mutex_;
  std::vector<detail::PoolWorker*> sleepers_;
  std::atomic<std::size_t> sleeper_count_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> shut_down_{false};
  std::mutex shutdown_mutex_;
};

}  // namespace heddle
