// heddle sync (internal): the wait list every primitive is built on.
//
// Owns: WaitNode (one waiter, task or thread, living on the waiter's own
// stack), WaitList (an intrusive FIFO of nodes, guarded by the primitive's
// lock), claims, wake-up batches, and GuardedWaiters (the lock and list each
// lock-keeping primitive derives from).
//
// The protocol every primitive follows:
//   waiter:  lock; if it can proceed, do so and unlock; else wait_on(lock,
//            list, node), which enqueues the node, releases the lock and
//            parks. For a task it is a cancellation point: a cancelled
//            waiter withdraws its node (under the lock) and throws
//            heddle::Cancelled, having taken nothing.
//   waker:   lock; pop nodes and claim() each until one claim succeeds; only
//            then hand it what it waited for (ownership, a value); unlock;
//            run the Wakeup (after unlocking, never under the lock).
// A claim decides, once, between the waker and a cancellation (tasks: the
// Resumer's CAS; threads: the node's state word), so a value is never both
// handed over and kept, and a waiter never takes something after leaving.
// After a claim the waker may touch the node until its Wakeup runs (after
// unlocking), which sets the node's handed_over flag as its last touch.
// wait_on returns only once that flag is set: a claimed waiter may see its
// claim before the hand-over is written (a thread's early look at its state
// word, or a task claimed while still parking, which its parking side runs
// at once), so a hand-over under the lock is always complete when read.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "heddle/core/detail/intrusive_queue.hpp"
#include "heddle/core/detail/spin_lock.hpp"
#include "heddle/core/suspend.hpp"

namespace heddle::detail {

// Identifies who holds a lock-like primitive: a task id, or a thread's id
// with the top bit set (tasks and threads never collide).
std::uint64_t current_waiter_identity() noexcept;

// Lives on the waiter's stack, in the frame of every primitive's wait: the
// small fields share one word (96 bytes in all).
struct WaitNode {
  WaitNode* prev = nullptr;
  WaitNode* next = nullptr;
  Resumer resumer;                              // a task waiter
  Parker* thread_parker = nullptr;              // a thread waiter
  // Threads: when set, claim() decides on this word instead of thread_state.
  // One thread waiting on several lists at once (a channel select) points
  // all its nodes at one word, so exactly one of them can be claimed.
  std::atomic<std::uint32_t>* shared_state = nullptr;
  std::uint64_t identity = 0;                   // who waits (current_waiter_identity)
  // Free for the primitive: what is asked for and what is handed over.
  void* payload = nullptr;
  std::uintptr_t tag = 0;
  std::uintptr_t result = 0;
  WaitNode* next_handed = nullptr;  // link in a WakeBatch
  std::atomic<std::uint32_t> thread_state{0};   // threads: 0 waiting, 1 claimed, 2 withdrawn
  bool linked = false;
  // Set by the waker's Wakeup (or WakeBatch) when it runs, after the lock is
  // released and so after everything handed over: a woken waiter (which may
  // see its claim earlier) reads what it was given only once this is set.
  std::atomic<bool> handed_over{false};
};

class WaitList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  WaitNode* front() const noexcept { return head_; }
  void push_back(WaitNode* node) noexcept;
  void remove(WaitNode* node) noexcept;
  WaitNode* pop_front() noexcept;

 private:
  WaitNode* head_ = nullptr;
  WaitNode* tail_ = nullptr;
  std::size_t size_ = 0;
};

// A won claim on a waiter, to run after the primitive's lock is released.
// Runs itself on destruction, so a claimed waiter is never forgotten.
class Wakeup {
 public:
  Wakeup() = default;
  Wakeup(Wakeup&& other) noexcept;
  Wakeup& operator=(Wakeup&& other) noexcept;
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;
  ~Wakeup() { run(); }

  // True when the claim was won (even if there is nothing left to run:
  // a task still parking is run by its own parking side).
  explicit operator bool() const noexcept { return claimed_; }
  void run() noexcept;

 private:
  friend Wakeup claim(WaitNode& node) noexcept;
  friend class WakeBatch;
  WaitNode* node_ = nullptr;
  TaskControl* task_ = nullptr;
  Parker* parker_ = nullptr;
  bool claimed_ = false;
};

// Claims a waiter taken off a list (call under the primitive's lock). An
// empty Wakeup means the waiter is leaving (cancelled, timed out): skip it.
Wakeup claim(WaitNode& node) noexcept;

// Many wake-ups to run after unlocking, with no allocation: claimed tasks
// and thread parkers are linked through their type-stable control blocks.
class WakeBatch {
 public:
  WakeBatch() = default;
  WakeBatch(const WakeBatch&) = delete;
  WakeBatch& operator=(const WakeBatch&) = delete;
  ~WakeBatch() { run(); }
  void add(Wakeup&& wakeup) noexcept;
  void run() noexcept;

 private:
  WaitNode* nodes_ = nullptr;  // a stack (their flags are set all at once), linked by next_handed
  // FIFO, so that waiters are woken in the order they were claimed.
  IntrusiveQueue<TaskControl, &TaskControl::next_deferred> tasks_;
  IntrusiveQueue<Parker, &Parker::next_in_batch> parkers_;
};

enum class WaitStatus : std::uint8_t { woken, timed_out };

// Returns once the waker that claimed `node` has run its Wakeup (which sets
// handed_over after unlocking), so everything handed over is readable and
// the waker no longer touches the node. Call only for a node a waker claimed.
void wait_for_hand_over(const WaitNode& node) noexcept;

// For primitives' destructors. Destroying a primitive that still has parked
// waiters is a bug that nothing can repair (they would wake, or be
// cancelled, on freed memory), so every build aborts, with one line naming
// the primitive, its address, the number of waiters and one of them (a
// task's id, name and spawn site, or "a thread"). `one` may be null (a
// CondVar's waiters between registering and parking are on no list). The
// checks are one load per list; the report is out of line and cold.
[[noreturn]] void report_destroyed_with_waiters(const char* primitive, const void* address, std::size_t waiters,
                                               const WaitNode* one) noexcept;

inline void check_no_waiters(const char* primitive, const void* address, const WaitList& waiters) noexcept {
  if (!waiters.empty()) [[unlikely]] {
    report_destroyed_with_waiters(primitive, address, waiters.size(), waiters.front());
  }
}

inline void check_no_waiters(const char* primitive, const void* address, const WaitList& first,
                             const WaitList& second) noexcept {
  if (!first.empty() || !second.empty()) [[unlikely]] {
    report_destroyed_with_waiters(primitive, address, first.size() + second.size(),
                                  first.empty() ? second.front() : first.front());
  }
}

// Enqueues the caller (task or thread) as `node` at the back of `list` and
// parks it until a waker claims it. `lock` must be held; it is released by
// this call, and not held on return. Tasks: an interruptible wait is a
// cancellation point (node withdrawn, then heddle::Cancelled). Threads: an
// optional deadline (node withdrawn, then timed_out).
WaitStatus wait_on(SpinLock& lock, WaitList& list, WaitNode& node, bool interruptible = true,
                   const std::chrono::steady_clock::time_point* deadline = nullptr) HEDDLE_RELEASE(lock);

// What every primitive that keeps its waiters under a lock (Mutex, Event,
// Semaphore, CondVar, Barrier, WaitGroup, Once, SharedMutex) holds: the lock
// and the FIFO of parked waiters. The primitive guards its own state with
// the same lock (HEDDLE_GUARDED_BY(lock_)), waits with wait_on(lock_,
// waiters_, node) and checks for waiters in its destructor.
class GuardedWaiters {
 protected:
  GuardedWaiters() noexcept = default;
  ~GuardedWaiters() = default;
  GuardedWaiters(const GuardedWaiters&) = delete;
  GuardedWaiters& operator=(const GuardedWaiters&) = delete;

  // Waiters parked now (a snapshot). Takes the lock.
  std::size_t waiter_count() const noexcept {
    SpinLockGuard guard(lock_);
    return waiters_.size();
  }
  // For the primitive's destructor (aborts naming it if a waiter is parked).
  // Without the lock: nobody may hold it while the primitive is destroyed.
  void check_destroyed_without_waiters(const char* primitive, const void* self) const noexcept
      HEDDLE_NO_THREAD_SAFETY_ANALYSIS {
    check_no_waiters(primitive, self, waiters_);
  }

  mutable SpinLock lock_;
  WaitList waiters_ HEDDLE_GUARDED_BY(lock_);
};

}  // namespace heddle::detail
