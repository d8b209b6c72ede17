// heddle sync: wait lists, claims and wake-up batches (protocol in
// include/heddle/sync/detail/wait_list.hpp).
#include "heddle/sync/detail/wait_list.hpp"

#include <sched.h>

#include <cstdlib>

#include <utility>

#include "heddle/arch/cpu_relax.hpp"
#include "core/task_report.hpp"
#include "sys/report_line.hpp"
#include "sys/timespec.hpp"

namespace heddle::detail {

namespace {

struct DestroyedWithWaiters {
  const char* primitive;
  const void* address;
  std::size_t waiters;
  const WaitNode* one;
};

[[noreturn]] void write_destroyed_with_waiters(void* context) noexcept {
  const auto* report = static_cast<const DestroyedWithWaiters*>(context);
  ReportLine line;
  line.append("heddle: ")
      .append(report->primitive)
      .append(" at ")
      .append_hex(reinterpret_cast<std::uintptr_t>(report->address))
      .append(" destroyed while ")
      .append_decimal(report->waiters)
      .append(report->waiters == 1 ? " waiter is" : " waiters are")
      .append(" parked on it");
  // A parked waiter's node and control block stay put while it is parked:
  // the waiter cannot leave before the list it is on is unlocked, and the
  // primitive's owner is destroying it, so nobody holds its lock.
  if (const WaitNode* node = report->one; node == nullptr) {
    line.append(" (between registering and parking)");
  } else if (node->thread_parker != nullptr) {
    line.append("; the first: a thread (not a task)");
  } else if (const TaskControl* task = node->resumer.control()) {
    append_task(line.append("; the first: "), *task);
  }
  line.write_line();
  std::abort();
}

}  // namespace

void report_destroyed_with_waiters(const char* primitive, const void* address, std::size_t waiters,
                                   const WaitNode* one) noexcept {
  DestroyedWithWaiters report{primitive, address, waiters, one};
  // A primitive may be destroyed on a bounded task's stack: the report and
  // abort() run on the unwind stack (src/core/task.cpp).
  run_off_task_stack(&write_destroyed_with_waiters, &report);
  __builtin_trap();  // not reached
}

std::uint64_t current_waiter_identity() noexcept {
  if (TaskControl* t = current_task()) return t->id;
  static std::atomic<std::uint64_t> next_thread{1};
  thread_local const std::uint64_t identity =
      (std::uint64_t{1} << 63) | next_thread.fetch_add(1, std::memory_order_relaxed);
  return identity;
}

void WaitList::push_back(WaitNode* node) noexcept {
  node->next = nullptr;
  node->prev = tail_;
  if (tail_) tail_->next = node; else head_ = node;
  tail_ = node;
  node->linked = true;
  ++size_;
}

void WaitList::remove(WaitNode* node) noexcept {
  if (node->prev) node->prev->next = node->next; else head_ = node->next;
  if (node->next) node->next->prev = node->prev; else tail_ = node->prev;
  node->prev = node->next = nullptr;
  node->linked = false;
  --size_;
}

WaitNode* WaitList::pop_front() noexcept {
  WaitNode* node = head_;
  if (node) remove(node);
  return node;
}

Wakeup::Wakeup(Wakeup&& other) noexcept
    : node_(std::exchange(other.node_, nullptr)),
      task_(std::exchange(other.task_, nullptr)),
      parker_(std::exchange(other.parker_, nullptr)),
      claimed_(std::exchange(other.claimed_, false)) {}

Wakeup& Wakeup::operator=(Wakeup&& other) noexcept {
  if (this != &other) {
    run();
    node_ = std::exchange(other.node_, nullptr);
    task_ = std::exchange(other.task_, nullptr);
    parker_ = std::exchange(other.parker_, nullptr);
    claimed_ = std::exchange(other.claimed_, false);
  }
  return *this;
}

void Wakeup::run() noexcept {
  // The node may be gone as soon as the flag is set: nothing of it is read after.
  if (WaitNode* node = std::exchange(node_, nullptr)) node->handed_over.store(true, std::memory_order_release);
  if (TaskControl* task = std::exchange(task_, nullptr)) run_claimed(task);
  if (Parker* parker = std::exchange(parker_, nullptr)) parker->unpark();
}

Wakeup claim(WaitNode& node) noexcept {
  Wakeup wakeup;
  if (node.thread_parker) {
    std::atomic<std::uint32_t>& state = node.shared_state ? *node.shared_state : node.thread_state;
    std::uint32_t waiting = 0;
    if (state.compare_exchange_strong(waiting, 1, std::memory_order_acq_rel)) {
      wakeup.parker_ = node.thread_parker;
      wakeup.node_ = &node;
      wakeup.claimed_ = true;
    }
    return wakeup;
  }
  switch (claim_task(node.resumer.control(), node.resumer.generation())) {
    case Claim::lost:
      break;
    case Claim::claimed:
      wakeup.task_ = node.resumer.control();
      wakeup.node_ = &node;
      wakeup.claimed_ = true;
      break;
    case Claim::pending:  // still parking: its parking side runs it
      wakeup.node_ = &node;
      wakeup.claimed_ = true;
      break;
  }
  return wakeup;
}

void WakeBatch::add(Wakeup&& wakeup) noexcept {
  if (WaitNode* node = std::exchange(wakeup.node_, nullptr)) {
    // Linked through the node: it cannot go away before its flag is set.
    node->next_handed = nodes_;
    nodes_ = node;
  }
  if (TaskControl* task = std::exchange(wakeup.task_, nullptr)) tasks_.push_back(task);
  if (Parker* parker = std::exchange(wakeup.parker_, nullptr)) parkers_.push_back(parker);
  wakeup.claimed_ = false;
}

void WakeBatch::run() noexcept {
  while (WaitNode* node = nodes_) {
    nodes_ = node->next_handed;  // read before the flag: then the node may go
    node->handed_over.store(true, std::memory_order_release);
  }
  // Each is popped (its link read and cleared) before it runs: a run task
  // may reuse the link field.
  while (TaskControl* task = tasks_.pop_front()) run_claimed(task);
  while (Parker* parker = parkers_.pop_front()) parker->unpark();
}

namespace {

// One object is both hooks of a task's wait, so the suspension's context is
// a single small frame object: wait_on is on every waiting task's stack, and
// a bounded task's stack is sized to its deepest frame.
struct TaskWait {
  SpinLock& lock;
  WaitList& list;
  WaitNode& node;
  bool enqueued = false;
  // on_suspend: runs after the task has switched out, so a waker that finds
  // the node can always claim it. The lock is still held from before the
  // switch (taken on the task's side of it, which the analysis cannot follow).
  void operator()(const Resumer& r) HEDDLE_NO_THREAD_SAFETY_ANALYSIS {
    node.resumer = r;
    list.push_back(&node);
    enqueued = true;
    lock.unlock();
  }
  // on_cancel: the task is cancelled while parked here.
  void operator()() noexcept {
    SpinLockGuard guard(lock);
    if (node.linked) list.remove(&node);
  }
};

// Releases `lock` in the suspension hook, or here if the task never parked:
// the analysis cannot see the hook's release.
WaitStatus wait_as_task(SpinLock& lock, WaitList& list, WaitNode& node, bool interruptible)
    HEDDLE_RELEASE(lock) HEDDLE_NO_THREAD_SAFETY_ANALYSIS {
  TaskWait wait{lock, list, node};
  constexpr const char* leaf = "heddle::sync wait";  // for dump_tasks; the backtrace names the primitive
  const WakeReason reason = suspend_with_hook_object(wait, interruptible, leaf);
  if (!wait.enqueued) lock.unlock();  // cancelled before it parked: nothing was enqueued
  finish_suspension(reason);
  return WaitStatus::woken;
}

// Not inlined into wait_on: a task never runs it (tools/heddle-stack's
// rules say so), and its deadline arithmetic would widen wait_on's frame on
// every task's stack.
__attribute__((noinline)) WaitStatus wait_as_thread(SpinLock& lock, WaitList& list, WaitNode& node,
                                                    const std::chrono::steady_clock::time_point* deadline)
    HEDDLE_RELEASE(lock) {
  Parker& parker = current_parker();
  node.thread_parker = &parker;
  node.thread_state.store(0, std::memory_order_relaxed);
  list.push_back(&node);
  lock.unlock();
  for (;;) {
    if (node.thread_state.load(std::memory_order_acquire) == 1) return WaitStatus::woken;
    if (!deadline) {
      parker.park(false);
      continue;
    }
    if (parker.park_until(to_nanoseconds(*deadline))) continue;
    SpinLockGuard guard(lock);
    std::uint32_t waiting = 0;
    if (node.thread_state.compare_exchange_strong(waiting, 2, std::memory_order_acq_rel)) {
      if (node.linked) list.remove(&node);
      return WaitStatus::timed_out;
    }
    // Claimed just before the deadline: it counts.
  }
}

}  // namespace

void wait_for_hand_over(const WaitNode& node) noexcept {
  for (int spins = 0; !node.handed_over.load(std::memory_order_acquire); ++spins) {
    if (spins < 64) {
      arch::cpu_relax();
    } else {
      sched_yield();  // the waker may have been preempted between unlock and Wakeup
    }
  }
}

WaitStatus wait_on(SpinLock& lock, WaitList& list, WaitNode& node, bool interruptible,
                   const std::chrono::steady_clock::time_point* deadline) {
  node.identity = current_waiter_identity();
  node.handed_over.store(false, std::memory_order_relaxed);  // a node may be reused for another wait
  const WaitStatus status = current_task() ? wait_as_task(lock, list, node, interruptible)
                                           : wait_as_thread(lock, list, node, deadline);
  if (status == WaitStatus::woken) {
    // A waiter may see its claim before the waker has finished handing over
    // (a thread checking its state, a task claimed while still parking):
    // what it was given is readable once the waker's Wakeup has run.
    wait_for_hand_over(node);
  }
  return status;
}

}  // namespace heddle::detail
