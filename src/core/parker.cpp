// heddle core: Parker, the one-waiter wake-up slot of a task or a thread
// (core/detail/control.hpp). A task parks by suspending; a thread parks on a
// futex.
#include <stdexcept>

#include "control_depot.hpp"
#include "heddle/core/detail/parker_protocol.hpp"
#include "heddle/core/suspend.hpp"
#include "sys/futex.hpp"
#include "sys/timespec.hpp"
#include "thread_state.hpp"

namespace heddle::detail {
namespace {

constexpr std::memory_order relaxed = std::memory_order_relaxed;

// A thread's own parker, made on first use (on the thread's stack: no task
// runs here when current_parker asks for it).
__attribute__((noinline)) Parker& thread_parker() {
  ThreadState& ts = thread_state();
  if (!ts.initialized) init_thread(ts);
  if (!ts.parker) ts.parker = take_thread_parker();
  return *ts.parker;
}
}  // namespace

Parker& current_parker() {
  if (TaskControl* t = t_current) return t->parker;
  return thread_parker();
}

// ---- Parker
//
// The steps on `state` are core/detail/parker_protocol.hpp's (its table);
// here they meet the futex and the task's suspension.

void Parker::park(bool interruptible, const char* leaf) {
  if (parker_protocol::take_token(state)) return;
  if (task == nullptr) {
    parker_protocol::wait_thread(state, [this] { futex_wait(&state, parker_protocol::kWaiter); });
    return;
  }
  auto on_suspend = [this](const Resumer& r) {
    waiting_generation = r.generation();
    // The token arrived while switching out: wake at once.
    if (!parker_protocol::begin_wait(state)) r.resume();
  };
  auto on_cancel = [this]() noexcept { parker_protocol::withdraw(state, relaxed); };
  const WakeReason reason = suspend_with_hooks(on_suspend, &on_cancel, interruptible, leaf);
  parker_protocol::take_token(state);
  finish_suspension(reason);
}

bool Parker::park_until(std::int64_t deadline_ns) {
  if (task) throw std::logic_error("heddle: Parker::park_until is for threads; tasks wait with a timer");
  return parker_protocol::park_thread_until(state, [this, deadline_ns] {
    // True: the deadline passed (futex_wait_until takes an absolute
    // CLOCK_MONOTONIC deadline).
    return !futex_wait_until(&state, parker_protocol::kWaiter, to_timespec(deadline_ns));
  });
}

void Parker::unpark() noexcept {
  if (!parker_protocol::post(state)) return;
  if (task) {
    wake_task(task, waiting_generation);
  } else {
    futex_wake(&state);
  }
}

}  // namespace heddle::detail
