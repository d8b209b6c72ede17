// heddle io (internal): the reactor interface and its two implementations.
//
// Owns: Reactor, the io layer's LoopDriver. One per Loop, created on the
// loop's thread by the first I/O of one of its tasks, destroyed with the
// loop (after its tasks). Every method runs on the loop's thread only; the
// only cross-thread entry into a loop is the loop's own remote queue.
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

std::unique_ptr<Reactor> make_epoll_reactor();
#if HEDDLE_HAVE_URING
// Null when the kernel refuses to set up a ring.
std::unique_ptr<Reactor> make_uring_reactor();
#endif

// Parks the running task with `op.waiter` set, cancellable; returns why it woke.
template <class OnSuspend>
heddle::detail::WakeReason park(OnSuspend&& on_suspend, bool interruptible = true) {
  return heddle::detail::suspend_with_hooks(on_suspend, static_cast<heddle::detail::NoCancelHook*>(nullptr),
                                            interruptible);
}

}  // namespace heddle::io::detail
