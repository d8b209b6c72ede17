// heddle io: blocking(f), for calls that have no asynchronous form.
//
// Owns: the process-wide blocking pool. blocking(f) runs f on a pool thread
// and parks the calling task until f returns, then returns f's value or
// rethrows its exception in the task. For getaddrinfo, a slow library, a
// file system that io_uring cannot help with: the task's scheduler keeps
// running its other tasks meanwhile.
//
// Invariants:
//  - f is called exactly once, or (cancelled while still queued) never;
//  - blocking() never returns nor unwinds while f runs: f may hold
//    references into the task's stack (it is called in place, not copied);
//  - at most max_threads calls run at once; the rest wait in FIFO order;
//  - a call allocates nothing beyond starting a pool thread when one is
//    needed: the job record lives on the parked task's stack.
//
// The pool starts threads lazily, up to a maximum (64 by default; the
// environment variable HEDDLE_BLOCKING_THREADS, read at first use, or
// set_blocking_threads()); a thread idle for about 10 s exits. The pool is
// never destroyed and its threads are detached: they never keep the
// process from exiting (src/io/blocking.cpp says why).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "heddle/core/detail/result_slot.hpp"
#include "heddle/core/suspend.hpp"

namespace heddle {

namespace io::detail {

// One blocking() call. Lives on the calling task's stack; the pool links it
// into its queue and hands it to a worker. The state machine (who moves it,
// under which lock) is documented in src/io/blocking.cpp.
struct BlockingJob {
  enum class State : std::uint8_t {
    unsubmitted,  // not given to the pool (yet, or the task was cancelled before parking)
    queued,       // in the pool's FIFO, waiting for a thread
    running,      // handed to a worker thread, which calls (or is calling) f
    done,         // f returned or threw (or no thread could be started: `error` says so)
    withdrawn,    // cancelled while queued: removed from the queue, f never runs
  };

  void (*invoke)(BlockingJob& job) noexcept = nullptr;  // calls f, storing its result or `error`
  BlockingJob* prev = nullptr;                          // the pool's queue links
  BlockingJob* next = nullptr;
  Resumer waiter;  // whom to wake when done; empty once the suspension it named was cancelled
  State state = State::unsubmitted;  // guarded by the pool's mutex
  std::exception_ptr error;
};

// Submits `job`, parks the running task until it is done, and rethrows the
// job's error. A cancellation point (see blocking()).
void run_blocking(BlockingJob& job);

template <class F, class R>
struct BlockingCall final : BlockingJob {
  F& fn;
  heddle::detail::ResultSlot<R> result;

  explicit BlockingCall(F& f) noexcept : fn(f) { invoke = &call; }
  // Runs on a pool thread; `result` and `error` are read by the task only
  // after the worker has published `done` under the pool's mutex.
  static void call(BlockingJob& job) noexcept {
    auto& self = static_cast<BlockingCall&>(job);
    try {
      self.result.run(self.fn);
    } catch (...) {
      self.error = std::current_exception();
    }
  }
};

}  // namespace io::detail

// Runs f() on the blocking pool and parks the calling task until it returns;
// returns f's value, or rethrows what f threw.
//  - Outside a task (a thread's own stack) it simply calls f inline.
//  - In a task with no scheduler, the task resumes on the pool thread that
//    ran f (the wake policy); in a Loop's task, on the loop's thread.
//  - A cancellation point. Cancelled while f is still queued: f never runs
//    and heddle::Cancelled is thrown at once. Cancelled once f has started:
//    the task waits, uninterruptibly, until f returns (f may use the task's
//    stack), discards f's result or exception, and throws heddle::Cancelled.
//  - When no pool thread can be started and none is alive, throws the
//    std::system_error that thread creation reported.
template <class F>
auto blocking(F&& f) -> std::invoke_result_t<std::decay_t<F>&> {
  using R = std::invoke_result_t<std::decay_t<F>&>;
  using Fn = std::remove_reference_t<F>;
  static_assert(std::is_same_v<std::invoke_result_t<Fn&>, R>,
                "heddle::blocking calls f in place, as an lvalue; pass a non-const callable");
  if (!heddle::detail::current_task()) return std::invoke(f);
  io::detail::BlockingCall<Fn, R> call(f);
  io::detail::run_blocking(call);
  return call.result.take();
}

// Sets the most pool threads that run blocking() calls at once (default 64,
// or HEDDLE_BLOCKING_THREADS). Lowering it lets running calls finish; the
// surplus threads then exit. Throws std::invalid_argument naming the value
// when `threads` is 0.
void set_blocking_threads(std::size_t threads);

struct BlockingPoolStats {
  std::size_t threads = 0;      // pool threads alive (idle or busy)
  std::size_t idle = 0;         // of which waiting for work
  std::size_t queued = 0;       // calls waiting for a thread
  std::size_t max_threads = 0;  // the current limit
};
// A consistent snapshot (taken under the pool's lock); for tests and metrics.
BlockingPoolStats blocking_pool_stats();

namespace io::detail {
// For tests: how long a pool thread waits for work before exiting (default
// 10 s). Idle threads re-arm their wait with the new value at once.
void set_blocking_idle_timeout(std::chrono::nanoseconds timeout);
}  // namespace io::detail

}  // namespace heddle
