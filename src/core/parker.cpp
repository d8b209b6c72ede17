// heddle core: Parker, the one-waiter wake-up slot of a task or a thread
// (core/detail/control.hpp). A task parks by suspending; a thread parks on a
// futex.
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <stdexcept>

#include "control_depot.hpp"
#include "heddle/core/suspend.hpp"
#include "thread_state.hpp"

namespace heddle::detail {
namespace {

constexpr std::memory_order acquire = std::memory_order_acquire;
constexpr std::memory_order acq_rel = std::memory_order_acq_rel;
constexpr std::memory_order relaxed = std::memory_order_relaxed;

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void futex_wake(std::atomic<std::uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

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

void Parker::park(bool interruptible, const char* leaf) {
  std::uint32_t token = 1;
  if (state.compare_exchange_strong(token, 0, acq_rel, relaxed)) return;
  if (task == nullptr) {
    std::uint32_t empty = 0;
    if (!state.compare_exchange_strong(empty, 2, acq_rel, acquire)) {
      state.store(0, relaxed);  // a token arrived meanwhile
      return;
    }
    while (state.load(acquire) == 2) futex_wait(&state, 2);
    token = 1;
    state.compare_exchange_strong(token, 0, acq_rel, relaxed);
    return;
  }
  auto on_suspend = [this](const Resumer& r) {
    waiting_generation = r.generation();
    std::uint32_t empty = 0;
    if (!state.compare_exchange_strong(empty, 2, acq_rel, acquire)) {
      state.store(0, relaxed);  // the token arrived while switching out: wake at once
      r.resume();
    }
  };
  auto on_cancel = [this]() noexcept {
    std::uint32_t waiting = 2;
    state.compare_exchange_strong(waiting, 0, acq_rel, relaxed);
  };
  const WakeReason reason = suspend_with_hooks(on_suspend, &on_cancel, interruptible, leaf);
  token = 1;
  state.compare_exchange_strong(token, 0, acq_rel, relaxed);
  finish_suspension(reason);
}

bool Parker::park_until(std::int64_t deadline_ns) {
  if (task) throw std::logic_error("heddle: Parker::park_until is for threads; tasks wait with a timer");
  std::uint32_t token = 1;
  if (state.compare_exchange_strong(token, 0, acq_rel, relaxed)) return true;
  std::uint32_t empty = 0;
  if (!state.compare_exchange_strong(empty, 2, acq_rel, acquire)) {
    state.store(0, relaxed);
    return true;
  }
  const timespec deadline{static_cast<time_t>(deadline_ns / 1'000'000'000),
                          static_cast<long>(deadline_ns % 1'000'000'000)};
  while (state.load(acquire) == 2) {
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline.
    const long r = syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&state), FUTEX_WAIT_BITSET_PRIVATE, 2,
                           &deadline, nullptr, FUTEX_BITSET_MATCH_ANY);
    if (r != 0 && errno == ETIMEDOUT) {
      std::uint32_t waiting = 2;
      if (state.compare_exchange_strong(waiting, 0, acq_rel, acquire)) return false;
      break;  // an unpark arrived just now
    }
  }
  token = 1;
  state.compare_exchange_strong(token, 0, acq_rel, relaxed);
  return true;
}

void Parker::unpark() noexcept {
  if (state.exchange(1, acq_rel) != 2) return;
  if (task) {
    wake_task(task, waiting_generation);
  } else {
    futex_wake(&state);
  }
}

}  // namespace heddle::detail
