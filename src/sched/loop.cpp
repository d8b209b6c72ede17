// heddle sched: Loop (protocol in include/heddle/sched/loop.hpp).
#include "heddle/sched/loop.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <system_error>
#include <typeinfo>

#include "core/task_report.hpp"
#include "sys/report_line.hpp"
#include "sys/timespec.hpp"
#include "wake_fd.hpp"

namespace heddle {

namespace {
thread_local Loop* t_running_loop = nullptr;
// Tasks run between two looks at the clock and the remote queue.
constexpr int kBatch = 64;
}

Loop::Loop() : owner_(detail::this_thread_marker()) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "heddle::Loop: eventfd");
}

Loop::~Loop() {
  if (live_.load(std::memory_order_acquire) != 0) cancel_all_and_drain();
  driver_.reset();  // after the tasks: they may have had operations in flight
  // A thread that queued the last task may still be inside notify().
  while (remote_wakers_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  ::close(wake_fd_);
}

void Loop::set_driver(std::unique_ptr<detail::LoopDriver> driver) {
  if (driver_) throw std::logic_error("heddle::Loop::set_driver: the loop already has a driver");
  driver_ = std::move(driver);
}

Loop* Loop::current() noexcept {
  if (detail::TaskControl* task = detail::current_task()) {
    // Loop is final: an exact type check is enough, and cheaper than a
    // dynamic_cast (this runs on every I/O operation and timer).
    Scheduler* scheduler = task->scheduler;
    return scheduler && typeid(*scheduler) == typeid(Loop) ? static_cast<Loop*>(scheduler) : nullptr;
  }
  return t_running_loop;
}

void Loop::push_local(detail::TaskControl* task) noexcept { local_.push_back(task); }

detail::TaskControl* Loop::pop_local() noexcept { return local_.pop_front(); }

void Loop::take_remote() noexcept { local_.append_chain(remote_.take_all_in_arrival_order()); }

void Loop::notify() noexcept {
  if (sleeping_.exchange(false, std::memory_order_acq_rel)) {
    detail::write_wake_fd(wake_fd_, "heddle::Loop");
  }
}

void Loop::schedule(detail::TaskControl* claimed) noexcept {
  if (on_scheduler_thread()) {
    push_local(claimed);
    return;
  }
  // Counted from before the push (which may let the loop finish and be
  // destroyed) until notify() is done with the loop: ~Loop waits for zero.
  remote_wakers_.fetch_add(1, std::memory_order_acq_rel);
  remote_.push(claimed);
  notify();
  remote_wakers_.fetch_sub(1, std::memory_order_acq_rel);
}

detail::TaskControl* Loop::take_next_here() noexcept {
  // A budget per turn, so that a ping-pong of direct hand-overs still lets
  // the loop look at its timers and remote queue.
  if (direct_budget_ <= 0 || local_.empty() || stop_requested_.load(std::memory_order_relaxed) ||
      !on_scheduler_thread()) {
    return nullptr;
  }
  --direct_budget_;
  return pop_local();
}

// Only a count: cancel_all finds the loop's tasks in the registry of every
// task (detail::for_each_control_block), so spawn takes no lock here.
void Loop::task_started(detail::TaskControl*) noexcept { live_.fetch_add(1, std::memory_order_acq_rel); }

void Loop::task_finished(detail::TaskControl*) noexcept {
  if (live_.fetch_sub(1, std::memory_order_acq_rel) == 1) notify();  // run() may be waiting for the last one
}

void Loop::arm_timer(detail::TimerEntry* entry) {
  if (timers_.arm(entry) && !on_scheduler_thread()) notify();  // an earlier deadline than the loop sleeps for
}

void Loop::stop() noexcept {
  stop_requested_.store(true, std::memory_order_release);
  sleeping_.store(true, std::memory_order_relaxed);
  notify();
}

void Loop::sleep_until_work(Clock::time_point deadline) {
  sleeping_.store(true, std::memory_order_seq_cst);
  // Re-check after announcing the sleep: a push from now on writes the eventfd.
  if (!remote_.empty(std::memory_order_seq_cst) || stop_requested_.load(std::memory_order_acquire) ||
      live_.load(std::memory_order_acquire) == 0) {
    sleeping_.store(false, std::memory_order_relaxed);
    return;
  }
  if (driver_) {
    driver_->wait(wake_fd_, deadline);
    sleeping_.store(false, std::memory_order_relaxed);
    return;
  }
  pollfd fd{wake_fd_, POLLIN, 0};
  timespec timeout{};
  timespec* timeout_pointer = nullptr;
  if (deadline != Clock::time_point::max()) {
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now()).count();
    timeout = detail::to_timespec(left > 0 ? left : 0);
    timeout_pointer = &timeout;
  }
  const int ready = ::ppoll(&fd, 1, timeout_pointer, nullptr);
  if (ready > 0) {
    std::uint64_t count;
    [[maybe_unused]] ssize_t got = ::read(wake_fd_, &count, sizeof count);
  } else if (ready < 0 && errno != EINTR) {
    throw std::system_error(errno, std::generic_category(), "heddle::Loop: ppoll");
  }
  sleeping_.store(false, std::memory_order_relaxed);
}

// What run() and run_until_finished() set up and put back, once the caller
// has claimed the loop (runner_): it runs on this thread, which it now
// belongs to.
class Loop::RunScope {
 public:
  explicit RunScope(Loop& loop) noexcept : loop_(loop) {
    loop.owner_.store(detail::this_thread_marker(), std::memory_order_relaxed);
    previous_loop_ = std::exchange(t_running_loop, &loop);
    previous_scheduler_ = detail::thread_scheduler();
    detail::set_thread_scheduler(&loop);
  }
  ~RunScope() {
    detail::set_thread_scheduler(previous_scheduler_);
    t_running_loop = previous_loop_;
    loop_.runner_.store(Runner::none, std::memory_order_release);
  }
  RunScope(const RunScope&) = delete;
  RunScope& operator=(const RunScope&) = delete;

 private:
  Loop& loop_;
  Loop* previous_loop_ = nullptr;
  Scheduler* previous_scheduler_ = nullptr;
};

// The start of every turn: remote wake-ups, expired timers, the driver.
// Inlined into both of its callers, as it was written inside run() before.
__attribute__((always_inline)) inline void Loop::gather_work() {
  if (!remote_.empty()) take_remote();
  if (!timers_.maybe_empty()) {
    const detail::FiredTimers fired = timers_.fire_expired(Clock::now());
    local_.append_chain(fired.tasks);
    detail::run_timer_callbacks(fired.callbacks);
  }
  if (driver_) driver_->poll();
}

void Loop::run() {
  for (;;) {
    if (t_running_loop == this) throw std::logic_error("heddle::Loop::run: the loop is already running");
    Runner idle = Runner::none;
    if (runner_.compare_exchange_weak(idle, Runner::run, std::memory_order_acq_rel, std::memory_order_acquire)) {
      break;
    }
    if (idle == Runner::run) throw std::logic_error("heddle::Loop::run: the loop is already running");
    // Another thread's dropped handle is finishing its task on the loop
    // (finish_cancelled_here): that ends by itself; then this run() runs.
    if (idle == Runner::handle) std::this_thread::yield();
  }
  RunScope scope(*this);
  for (;;) {
    gather_work();
    // Run a batch of queued tasks, those woken meanwhile included; then
    // look at timers and remote work again, so neither is starved.
    direct_budget_ = kBatch;
    for (int ran = 0; ran < kBatch; ++ran) {
      detail::TaskControl* task = pop_local();
      if (!task) break;
      detail::run_claimed_here(task);
      if (stop_requested_.load(std::memory_order_relaxed)) break;
    }
    if (stop_requested_.exchange(false, std::memory_order_acq_rel)) return;  // consumed: the next run() runs
    if (!local_.empty()) continue;
    if (live_.load(std::memory_order_acquire) == 0 && timers_.size() == 0 &&
        remote_.empty(std::memory_order_acquire)) {
      return;
    }
    sleep_until_work(timers_.next_deadline());
  }
}

namespace {

[[noreturn]] void report_handle_dropped_inside_run(void* task) noexcept {
  const auto* t = static_cast<const detail::TaskControl*>(task);
  detail::ReportLine line;
  detail::append_task(line.append("heddle: the handle of "), *t)
      .append(" was destroyed unjoined outside any task on the thread of the running heddle::Loop that runs "
              "the task (in a Timer callback?): waiting there for the task to unwind would block the loop "
              "forever; join or detach it, or drop it in a task")
      .write_line();
  std::abort();
}

}  // namespace

bool Loop::finish_cancelled_here(detail::TaskControl* task) {
  if (t_running_loop == this) {
    // This thread runs the loop and is inside its run(), but in no task (a
    // Timer callback): waiting would stop the only thread that can finish
    // the task.
    detail::run_off_task_stack(&report_handle_dropped_inside_run, task);
    __builtin_trap();  // not reached
  }
  if (!on_scheduler_thread()) return false;  // the loop runs, or will run, on another thread
  Runner idle = Runner::none;
  if (!runner_.compare_exchange_strong(idle, Runner::handle, std::memory_order_acq_rel, std::memory_order_acquire)) {
    return false;  // another thread's run() took it first: it finishes the task
  }
  run_until_finished(task);
  return true;
}

// run(), until `task` has finished rather than until no task is left: the
// other tasks, timers and I/O of the loop run meanwhile (its unwinding may
// wait for them). A stop() is kept for the next run(). The caller has
// claimed the loop (runner_ is Runner::handle).
void Loop::run_until_finished(const detail::TaskControl* task) {
  RunScope scope(*this);
  bool stop_for_next_run = false;
  while (!detail::is_finished(task)) {
    gather_work();
    direct_budget_ = kBatch;
    for (int ran = 0; ran < kBatch && !detail::is_finished(task); ++ran) {
      detail::TaskControl* next = pop_local();
      if (!next) break;
      detail::run_claimed_here(next);
    }
    if (stop_requested_.exchange(false, std::memory_order_acq_rel)) stop_for_next_run = true;
    if (!local_.empty() || detail::is_finished(task)) continue;
    sleep_until_work(timers_.next_deadline());
  }
  if (stop_for_next_run) stop_requested_.store(true, std::memory_order_release);
}

void Loop::cancel_all_and_drain() {
  // Cancel every live task (each is queued on this loop as it is woken),
  // then run the loop until they have all unwound.
  cancel_all();
  if (live_.load(std::memory_order_acquire) != 0 && runner_.load(std::memory_order_acquire) == Runner::none) run();
}

void Loop::cancel_all() noexcept {
  // One pass over the registry, as Pool::shutdown does: cancel_if_scheduler
  // touches a block only within the life it read, so a block reused by
  // another scheduler meanwhile is left alone. A cancelled task only queues
  // on this loop (it has a scheduler: never run inline here).
  detail::for_each_control_block(
      [](detail::TaskControl* block, void* loop) {
        detail::cancel_if_scheduler(block, static_cast<Loop*>(loop));
      },
      this);
}

}  // namespace heddle
