// heddle io (internal): the reactor interface and its two implementations.
//
// Owns: Reactor, the io layer's LoopDriver. One per Loop (and one per Pool
// worker), created on its thread by the first I/O of one of its tasks,
// destroyed with the loop or pool (after its tasks). Every method runs on
// the owning thread only; the only cross-thread entry is the scheduler's
// own queue (a Pool task is pinned to its worker while it has an operation
// in flight, so its wake-ups come back to the same thread).
#pragma once

#include <memory>

#include "heddle/io/backend.hpp"
#include "heddle/io/detail/operation.hpp"
#include "heddle/sched/detail/loop_driver.hpp"

namespace heddle {
class Loop;
}

namespace heddle::io::detail {

class Reactor : public heddle::detail::LoopDriver {
 public:
  virtual Backend backend() const noexcept = 0;
  // Performs op for a task of this reactor's loop (see perform()).
  virtual int perform(Operation& op) = 0;
  ReactorStats stats() const noexcept {
    ReactorStats copy = stats_;
    copy.backend = backend();
    return copy;
  }

 protected:
  ReactorStats stats_;
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
