// heddle sched (internal): the hook through which a reactor drives a Loop.
//
// Owns: the LoopDriver interface. The sched layer knows nothing of I/O; the
// io layer attaches one driver to a Loop the first time a task of that loop
// does I/O, and the loop then calls it:
//   - poll():  every turn the loop has runnable tasks (cheap: submits what
//              was queued this turn and takes completions without blocking);
//   - wait():  instead of its own sleep, when nothing is runnable; it must
//              return when a completion arrives, when the loop's wake
//              eventfd becomes readable, or at the deadline.
// Both run on the loop's thread only, and wake tasks with Resumer::wake(),
// which queues them on the loop.
#pragma once

#include <chrono>

namespace heddle::detail {

class LoopDriver {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~LoopDriver() = default;
  virtual void poll() = 0;
  // `deadline` is Clock::time_point::max() for "no timer armed". Must read
  // (reset) wake_fd when it reports readable.
  virtual void wait(int wake_fd, Clock::time_point deadline) = 0;
};

}  // namespace heddle::detail
