// heddle io (internal): the reactor interface and its two implementations.
//
// Owns: Reactor, the io layer's LoopDriver. One per Loop (and one per Pool
// worker), created on its thread by the first I/O of one of its tasks,
// destroyed with the loop or pool (after its tasks). Every method runs on
// the owning thread only; the only cross-thread entry is the scheduler's
// own queue (a Pool task is pinned to its worker while it has an operation
// in flight, so its wake-ups come back to the same thread). A close() on
// another thread reaches a waiting operation that way too: it wakes the
// task, which takes its operation out of the kernel on its own thread.
#pragma once

#include <memory>

#include "heddle/io/backend.hpp"
#include "heddle/io/detail/operation.hpp"
#include "heddle/sched/detail/loop_driver.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sys/thread_marker.hpp"

namespace heddle::io::detail {

class Reactor : public heddle::detail::LoopDriver {
 public:
  virtual Backend backend() const noexcept = 0;
  // Performs op for a task of this reactor's loop (see perform()). Returns
  // -ECANCELED, without another system call on op.fd, once op.closing is
  // seen (in_flight.hpp): before each attempt and after each park.
  virtual int perform(Operation& op) = 0;
  // close() of op's descriptor on this reactor's thread, outside any task
  // (a timer callback, or the loop is not running): op's task is parked or
  // queued and cannot run before close() returns, so close() takes op out
  // of the kernel here (epoll: off the wait list and the epoll set;
  // io_uring: cancelled and its completion reaped) and wakes it.
  virtual void detach_here(Operation& op) noexcept = 0;

  // Which thread drives this reactor: the loop's (which run() may move), or
  // the Pool worker's that made it.
  void bind_to(const Loop* loop) noexcept {
    loop_ = loop;
    thread_ = heddle::detail::this_thread_marker();
  }
  bool runs_here() const noexcept {
    return loop_ ? loop_->on_scheduler_thread() : thread_ == heddle::detail::this_thread_marker();
  }

  ReactorStats stats() const noexcept {
    ReactorStats copy = stats_;
    copy.backend = backend();
    return copy;
  }

 protected:
  ReactorStats stats_;

 private:
  const Loop* loop_ = nullptr;
  const void* thread_ = nullptr;
};

// The reactor of `loop`, created (by the process-wide choice) if it has none.
Reactor& reactor_of(Loop& loop);
// The reactor of the Pool worker running the caller's task, created (by the
// process-wide choice) if it has none.
Reactor& reactor_of_worker();

std::unique_ptr<Reactor> make_epoll_reactor();
#if HEDDLE_HAVE_URING
// Null when the kernel refuses to set up a ring.
std::unique_ptr<Reactor> make_uring_reactor();
#endif

// The leaf name a task parked in `kind` shows in heddle::dump_tasks (a
// string literal: it is read after the suspension ends).
constexpr const char* leaf_of(OpKind kind) noexcept {
  switch (kind) {
    case OpKind::read: case OpKind::recv: case OpKind::recvmsg: return "heddle::io read";
    case OpKind::write: case OpKind::send: case OpKind::sendmsg: return "heddle::io write";
    case OpKind::accept: return "heddle::io accept";
    case OpKind::connect: return "heddle::io connect";
    case OpKind::poll_readable: case OpKind::poll_writable: return "heddle::io readiness";
    default: return "heddle::io file";
  }
}

// Parks the running task (op.waiter is set by on_suspend), cancellable
// unless `interruptible` is false; returns why it woke.
template <class OnSuspend>
heddle::detail::WakeReason park(OpKind kind, OnSuspend&& on_suspend, bool interruptible = true) {
  return heddle::detail::suspend_with_hooks(on_suspend, static_cast<heddle::detail::NoCancelHook*>(nullptr),
                                            interruptible, leaf_of(kind));
}

}  // namespace heddle::io::detail
