// heddle io: the blocking pool behind blocking(f).
//
// One process-wide pool: a mutex, a FIFO of queued jobs, a stack of idle
// workers, and counts. Jobs (BlockingJob) live on their parked tasks'
// stacks; workers (Worker) live on their threads' stacks. Everything below
// is guarded by BlockingPool::mutex_.
//
// A job's state (BlockingJob::state) and who moves it:
//   unsubmitted -> queued     submit(), from on_suspend (the task has
//                             switched out; runs on whoever it switched to),
//                             when no worker is idle
//   unsubmitted -> running    submit(), handing the job straight to an idle worker
//   queued      -> running    a worker taking the FIFO's front
//   queued      -> withdrawn  withdraw(), the suspension's on_cancel, on the
//                             cancelling thread; the job never runs
//   queued      -> done       fail_stranded_jobs(), when no thread could be
//                             started and none is alive (`error` says why)
//   running     -> done       the worker, after f returned; it copies `waiter`,
//                             unlocks, and never touches the job again
// `waiter` is set by submit() before the job is visible to any worker,
// cleared by withdraw(), and set again by the uninterruptible wait after a
// cancellation (which wakes itself if the job is already done). A worker
// wakes the copy it took under the mutex; if that suspension was cancelled
// meanwhile, the wake is stale and does nothing (Resumer's guarantee).
//
// Why the job's memory is safe: the task leaves run_blocking() only after it
// has seen, under the mutex, a state no worker holds the job in
// (unsubmitted, withdrawn, done) -- or was woken by the worker that set done.
// The worker's last access is that locked `done` store; the wake after the
// unlock uses only its copy of the Resumer, and control blocks are never freed.
//
// A worker's life: take a job (handed over, or the FIFO's front) and run it
// unlocked; with no job, push itself on the idle stack (most recent on top,
// so the coldest threads are the ones that time out) and wait on its own
// condition variable. Whoever decides that a thread exits -- the thread
// itself on idle timeout or when the pool shrank, set_blocking_threads()
// telling idle ones -- decrements alive_ at that moment, under the mutex, so
// the count never over- or under-shoots while threads are on their way out.
//
// Invariants (under the mutex):
//   - the FIFO is non-empty only when no worker is idle (submit hands work to
//     an idle worker before queueing; a worker goes idle only on an empty FIFO);
//   - a job is queued only while alive_ >= 1, or submit() has reserved a
//     thread for it (++alive_ before starting it); if that start fails and
//     no thread is left, every queued job is failed rather than stranded;
//   - a worker takes a job only while alive_ <= max_threads_, and threads are
//     started only while alive_ < max_threads_: at most max_threads_ jobs run.
//
// Threads are detached, and the pool is never destroyed (like the timer
// thread, src/sched/time.cpp). Joining them from a static destructor would
// make exit() wait for whatever f is stuck in (a getaddrinfo on a dead DNS
// server: 30 s), for tasks that can no longer be resumed anyway. A detached
// thread does not keep the process alive, and since the pool is leaked, a
// thread still running f after main() returned finds its mutex intact.
// Pool threads block the asynchronous signals, so a process-directed signal
// goes to a thread that expects it (a SignalSet's signalfd, the main thread),
// never to a thread in the middle of somebody's library call.
#include "heddle/io/blocking.hpp"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

namespace heddle {
namespace io::detail {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kDefaultMaxThreads = 64;
constexpr std::chrono::nanoseconds kDefaultIdleTimeout = std::chrono::seconds(10);

// "A whole number from 1": digits only, no sign, no overflow.
bool parse_thread_count(const char* text, std::size_t& count) noexcept {
  if (!text || !*text) return false;
  std::size_t value = 0;
  for (const char* p = text; *p; ++p) {
    if (*p < '0' || *p > '9') return false;
    const std::size_t digit = static_cast<std::size_t>(*p - '0');
    if (value > (static_cast<std::size_t>(-1) - digit) / 10) return false;
    value = value * 10 + digit;
  }
  if (value == 0) return false;
  count = value;
  return true;
}

std::size_t max_threads_from_environment() {
  const char* text = std::getenv("HEDDLE_BLOCKING_THREADS");
  if (!text) return kDefaultMaxThreads;
  std::size_t count = 0;
  if (!parse_thread_count(text, count)) {
    throw std::invalid_argument(std::string("heddle: HEDDLE_BLOCKING_THREADS=\"") + text +
                                "\" is not a thread count (a whole number, at least 1)");
  }
  return count;
}

class BlockingPool {
 public:
  BlockingPool() : max_threads_(max_threads_from_environment()) {}

  // on_suspend of the call's suspension: the task has switched out.
  void submit(BlockingJob& job, const Resumer& waiter) {
    std::unique_lock lock(mutex_);
    job.waiter = waiter;
    if (Worker* worker = pop_idle()) {
      job.state = BlockingJob::State::running;
      worker->job = &job;
      worker->wake.notify_one();
      return;
    }
    push_back(job);
    if (alive_ >= max_threads_) return;  // a busy worker takes it when it is done (FIFO)
    ++alive_;                            // reserved for the thread started below
    lock.unlock();
    start_thread();
  }

  // on_cancel of the call's suspension: the task is parked and cancelled.
  void withdraw(BlockingJob& job) noexcept {
    std::lock_guard lock(mutex_);
    if (job.state == BlockingJob::State::queued) {
      unlink(job);
      job.state = BlockingJob::State::withdrawn;
    }
    job.waiter = Resumer{};  // its suspension is over; a running job's worker must not aim at a later one
  }

  // After a cancellation: returns once no worker holds the job. A job that
  // is running keeps the task parked, uninterruptibly, until f returns.
  void wait_until_settled(BlockingJob& job) {
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (job.state == BlockingJob::State::queued) {  // not reachable: on_cancel withdrew it; stay safe
          unlink(job);
          job.state = BlockingJob::State::withdrawn;
        }
        if (job.state != BlockingJob::State::running) return;
      }
      suspend_uninterruptible([&](const Resumer& resumer) {
        std::unique_lock lock(mutex_);
        if (job.state == BlockingJob::State::running) {
          job.waiter = resumer;  // the worker wakes this suspension when f returns
          return;
        }
        lock.unlock();
        resumer.wake();  // done between the check and the park: the task is still parking, so this only marks it
      });
    }
  }

  void set_max_threads(std::size_t threads) {
    std::size_t to_start = 0;
    {
      std::lock_guard lock(mutex_);
      max_threads_ = threads;
      // Surplus idle threads exit now; busy ones after their job. The FIFO
      // is empty whenever a thread is idle, so nothing is left waiting.
      while (alive_ > max_threads_) {
        Worker* worker = pop_idle();
        if (!worker) break;
        --alive_;
        worker->told_to_exit = true;
        worker->wake.notify_one();
      }
      // A raised limit: start threads for the jobs that were waiting for one.
      while (alive_ < max_threads_ && to_start < queued_) {
        ++alive_;
        ++to_start;
      }
    }
    for (; to_start > 0; --to_start) start_thread();
  }

  void set_idle_timeout(std::chrono::nanoseconds timeout) {
    std::lock_guard lock(mutex_);
    idle_timeout_ = timeout;
    for (Worker* worker = idle_top_; worker; worker = worker->below) worker->wake.notify_one();
  }

  BlockingPoolStats stats() {
    std::lock_guard lock(mutex_);
    return BlockingPoolStats{alive_, idle_, queued_, max_threads_};
  }

 private:
  // A pool thread's own record, on its stack; on the idle stack while it waits.
  struct Worker {
    std::condition_variable wake;
    BlockingJob* job = nullptr;  // handed over by submit() while idle
    bool told_to_exit = false;   // set_blocking_threads() removed it (and counted it out)
    Worker* above = nullptr;     // idle stack links
    Worker* below = nullptr;
  };

  // Starts one thread for which alive_ was already incremented. On failure
  // gives the reservation back and fails the queued jobs if no thread is left.
  void start_thread() noexcept {
    std::error_code failure;
    // The new thread inherits this mask: block the asynchronous signals for
    // it (see the top of this file), and restore ours after.
    sigset_t all, previous;
    sigfillset(&all);
    for (int synchronous : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS}) sigdelset(&all, synchronous);
    ::pthread_sigmask(SIG_SETMASK, &all, &previous);
    try {
      std::thread([this] { worker_main(); }).detach();
    } catch (const std::system_error& error) {
      failure = error.code();
    } catch (const std::bad_alloc&) {
      failure = std::make_error_code(std::errc::not_enough_memory);
    }
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (failure) fail_stranded_jobs(failure);
  }

  // Thread creation failed. While some thread is alive it will reach the
  // queued jobs; with none, nothing would ever run them: they complete now
  // with the error (one at a time, so that waking, which may run a task
  // inline, happens unlocked).
  void fail_stranded_jobs(std::error_code failure) noexcept {
    std::unique_lock lock(mutex_);
    --alive_;
    while (alive_ == 0 && head_) {
      BlockingJob& job = *head_;
      unlink(job);
      try {
        job.error = std::make_exception_ptr(
            std::system_error(failure, "heddle::blocking: could not start a pool thread"));
      } catch (...) {
        job.error = std::current_exception();
      }
      job.state = BlockingJob::State::done;
      const Resumer waiter = job.waiter;
      lock.unlock();
      waiter.wake();
      lock.lock();
    }
  }

  void worker_main() noexcept {
    ::pthread_setname_np(::pthread_self(), "heddle-blocking");
    Worker self;
    std::unique_lock lock(mutex_);
    for (;;) {
      BlockingJob* job = std::exchange(self.job, nullptr);
      if (!job && head_) {
        job = head_;
        unlink(*job);
        job->state = BlockingJob::State::running;
      }
      if (!job) {
        if (alive_ > max_threads_) {  // the pool shrank
          --alive_;
          return;
        }
        if (!wait_idle(self, lock)) return;
        continue;
      }
      lock.unlock();
      job->invoke(*job);
      lock.lock();
      job->state = BlockingJob::State::done;
      const Resumer waiter = job->waiter;
      // The job belongs to its task again: its task may return at once.
      lock.unlock();
      // With no scheduler this runs the task here until it next parks; the
      // thread counts as busy meanwhile (it is not on the idle stack).
      waiter.wake();
      lock.lock();
      if (alive_ > max_threads_) {  // the pool shrank while f ran
        --alive_;
        return;
      }
    }
  }

  // Waits on the idle stack until handed a job (true) or told to exit or
  // idle for idle_timeout_ (false; counted out of alive_ either way).
  bool wait_idle(Worker& self, std::unique_lock<std::mutex>& lock) {
    push_idle(self);
    const Clock::time_point since = Clock::now();
    for (;;) {
      if (self.job) return true;        // submit() popped us
      if (self.told_to_exit) return false;  // set_max_threads() popped us and counted us out
      const Clock::time_point deadline = since + idle_timeout_;
      if (Clock::now() >= deadline) {
        remove_idle(self);
        --alive_;
        return false;
      }
      self.wake.wait_until(lock, deadline);
    }
  }

  void push_back(BlockingJob& job) noexcept {
    job.state = BlockingJob::State::queued;
    job.next = nullptr;
    job.prev = tail_;
    if (tail_) tail_->next = &job; else head_ = &job;
    tail_ = &job;
    ++queued_;
  }
  void unlink(BlockingJob& job) noexcept {
    if (job.prev) job.prev->next = job.next; else head_ = job.next;
    if (job.next) job.next->prev = job.prev; else tail_ = job.prev;
    job.prev = job.next = nullptr;
    --queued_;
  }

  void push_idle(Worker& worker) noexcept {
    worker.above = nullptr;
    worker.below = idle_top_;
    if (idle_top_) idle_top_->above = &worker;
    idle_top_ = &worker;
    ++idle_;
  }
  Worker* pop_idle() noexcept {
    Worker* worker = idle_top_;
    if (worker) remove_idle(*worker);
    return worker;
  }
  void remove_idle(Worker& worker) noexcept {
    if (worker.above) worker.above->below = worker.below; else idle_top_ = worker.below;
    if (worker.below) worker.below->above = worker.above;
    worker.above = worker.below = nullptr;
    --idle_;
  }

  std::mutex mutex_;
  BlockingJob* head_ = nullptr;  // FIFO of queued jobs
  BlockingJob* tail_ = nullptr;
  std::size_t queued_ = 0;
  Worker* idle_top_ = nullptr;  // idle workers, most recently idle on top
  std::size_t idle_ = 0;
  std::size_t alive_ = 0;  // threads running worker_main, plus those being started
  std::size_t max_threads_;
  std::chrono::nanoseconds idle_timeout_ = kDefaultIdleTimeout;
};

BlockingPool& blocking_pool() {
  static auto* pool = new BlockingPool;  // never destroyed: see the top of this file
  return *pool;
}

}  // namespace

void run_blocking(BlockingJob& job) {
  BlockingPool& pool = blocking_pool();  // throws here, in the task, if HEDDLE_BLOCKING_THREADS is bad
  bool cancelled = false;
  try {
    suspend([&](const Resumer& resumer) { pool.submit(job, resumer); }, [&]() noexcept { pool.withdraw(job); });
  } catch (const Cancelled&) {
    // Handled after the handler: a task must not switch out while it holds a
    // caught exception (the C++ runtime keeps those per thread, not per task).
    cancelled = true;
  }
  if (cancelled) {
    pool.wait_until_settled(job);  // f may still use this stack
    heddle::detail::throw_cancelled();
  }
  if (job.error) std::rethrow_exception(job.error);
}

void set_blocking_idle_timeout(std::chrono::nanoseconds timeout) { blocking_pool().set_idle_timeout(timeout); }

}  // namespace io::detail

void set_blocking_threads(std::size_t threads) {
  if (threads == 0) {
    throw std::invalid_argument("heddle::set_blocking_threads: " + std::to_string(threads) +
                                " threads; the blocking pool needs at least 1");
  }
  io::detail::blocking_pool().set_max_threads(threads);
}

BlockingPoolStats blocking_pool_stats() { return io::detail::blocking_pool().stats(); }

}  // namespace heddle
