// heddle tests: a small exhaustive interleaving checker (a stateless model
// checker, in the manner of CHESS and loom).
//
// Owns: model::Atomic (std::atomic's interface; every operation is a
// scheduling point), model::explore (runs a test's logical threads through
// every interleaving of those points, depth first, replaying the choices
// that lead to each new branch), and the helpers a thread body calls
// (check, note, block_until, choose, futex_wait, futex_wake).
//
// Semantics: sequentially consistent. One logical thread runs at a time (each
// is an OS thread holding a baton), so every load sees the latest store; the
// memory orders passed in are ignored. A compare_exchange_weak may also fail
// spuriously, as a branch of its own (Options::spurious_failures bounds how
// many per execution). What this does not cover is in README.md.
//
// A failing check, a deadlock (every unfinished thread blocked: a lost
// wake-up) or a livelock (Options::max_steps) stops the exploration; the
// Result then holds the interleaving that failed as a readable trace.
//
// A body is abandoned mid-way when its execution fails (longjmp back to the
// thread's start, past noexcept frames), so a body keeps nothing with a
// destructor on its own stack across an atomic operation: its state lives in
// what the setup function made (a shared_ptr the lambdas capture).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

namespace heddle::model {

enum class Op : std::uint8_t {
  load,
  store,
  exchange,
  fetch_add,
  fetch_sub,
  fetch_or,
  fetch_and,
  cas_succeeded,
  cas_failed,
  cas_failed_spuriously,
  futex_wait_returned,  // the word no longer held the expected value
  futex_slept,
  futex_woke_up,
  futex_wake,
  note,
};

namespace detail {
// A scheduling point: false outside a logical thread (the setup and the
// final checks run on the test's own thread, unscheduled and unrecorded).
bool schedule() noexcept;
void record(Op op, const void* object, std::uint64_t before, std::uint64_t after) noexcept;
// Whether this compare_exchange_weak fails spuriously (a branch).
bool spurious_failure() noexcept;
void futex_wait(const void* object, std::uint64_t value, std::uint64_t expected) noexcept;
void futex_wake(const void* object, std::uint64_t value) noexcept;
}  // namespace detail

// std::atomic<T> for an integral T, checked: see the header comment.
template <class T>
class Atomic {
  static_assert(std::is_integral_v<T>, "model::Atomic holds an integral type");

 public:
  constexpr Atomic() noexcept = default;
  constexpr Atomic(T value) noexcept : value_(value) {}  // NOLINT: as std::atomic's
  Atomic(const Atomic&) = delete;
  Atomic& operator=(const Atomic&) = delete;

  T load(std::memory_order = std::memory_order_seq_cst) const noexcept {
    const bool scheduled = detail::schedule();
    if (scheduled) detail::record(Op::load, this, bits(value_), bits(value_));
    return value_;
  }
  void store(T value, std::memory_order = std::memory_order_seq_cst) noexcept {
    const bool scheduled = detail::schedule();
    const T before = value_;
    value_ = value;
    if (scheduled) detail::record(Op::store, this, bits(before), bits(value_));
  }
  T exchange(T value, std::memory_order = std::memory_order_seq_cst) noexcept {
    return modify(Op::exchange, [value](T) { return value; });
  }
  T fetch_add(T operand, std::memory_order = std::memory_order_seq_cst) noexcept
    requires(!std::is_same_v<T, bool>)
  {
    return modify(Op::fetch_add, [operand](T v) { return static_cast<T>(v + operand); });
  }
  T fetch_sub(T operand, std::memory_order = std::memory_order_seq_cst) noexcept
    requires(!std::is_same_v<T, bool>)
  {
    return modify(Op::fetch_sub, [operand](T v) { return static_cast<T>(v - operand); });
  }
  T fetch_or(T operand, std::memory_order = std::memory_order_seq_cst) noexcept
    requires(!std::is_same_v<T, bool>)
  {
    return modify(Op::fetch_or, [operand](T v) { return static_cast<T>(v | operand); });
  }
  T fetch_and(T operand, std::memory_order = std::memory_order_seq_cst) noexcept
    requires(!std::is_same_v<T, bool>)
  {
    return modify(Op::fetch_and, [operand](T v) { return static_cast<T>(v & operand); });
  }

  bool compare_exchange_strong(T& expected, T desired, std::memory_order,
                               std::memory_order = std::memory_order_seq_cst) noexcept {
    return compare_exchange(expected, desired, false);
  }
  bool compare_exchange_strong(T& expected, T desired) noexcept { return compare_exchange(expected, desired, false); }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order,
                             std::memory_order = std::memory_order_seq_cst) noexcept {
    return compare_exchange(expected, desired, true);
  }
  bool compare_exchange_weak(T& expected, T desired) noexcept { return compare_exchange(expected, desired, true); }

  // The value, read without a scheduling point: for checks and for
  // block_until's conditions, never for the code under test.
  T peek() const noexcept { return value_; }

 private:
  static std::uint64_t bits(T value) noexcept { return static_cast<std::uint64_t>(value); }

  template <class F>
  T modify(Op op, F next) noexcept {
    const bool scheduled = detail::schedule();
    const T before = value_;
    value_ = next(before);
    if (scheduled) detail::record(op, this, bits(before), bits(value_));
    return before;
  }

  bool compare_exchange(T& expected, T desired, bool weak) noexcept {
    const bool scheduled = detail::schedule();
    const T before = value_;
    if (before != expected) {
      if (scheduled) detail::record(Op::cas_failed, this, bits(before), bits(expected));
      expected = before;
      return false;
    }
    if (weak && scheduled && detail::spurious_failure()) {
      detail::record(Op::cas_failed_spuriously, this, bits(before), bits(desired));
      return false;
    }
    value_ = desired;
    if (scheduled) detail::record(Op::cas_succeeded, this, bits(before), bits(desired));
    return true;
  }

  T value_{};
};

// What a logical thread's body calls.

// Fails the execution (and so the exploration) unless `ok`.
void check(bool ok, const char* what) noexcept;
// A line in the trace, not a scheduling point.
void note(std::string text) noexcept;
// Blocks the calling thread until `ready()` holds (read with peek, no
// scheduling points). A thread blocked for good is a deadlock.
void block_until(std::function<bool()> ready, const char* what) noexcept;
// A nondeterministic choice among `count` outcomes (a timeout that may or
// may not fire): every outcome is explored. Returns 0..count-1.
std::size_t choose(std::size_t count, const char* what) noexcept;
// A futex on a model word: sleeps unless the word differs from `expected`,
// until a futex_wake on the same word (no spurious wake-ups: the code under
// test must cope with them anyway, and leaving them out keeps lost wake-ups
// visible as deadlocks).
template <class T>
void futex_wait(const Atomic<T>& word, T expected) noexcept {
  if (detail::schedule()) detail::futex_wait(&word, static_cast<std::uint64_t>(word.peek()), expected);
}
template <class T>
void futex_wake(const Atomic<T>& word) noexcept {
  if (detail::schedule()) detail::futex_wake(&word, static_cast<std::uint64_t>(word.peek()));
}

// One execution's threads and checks, made afresh by the setup function.
class Execution {
 public:
  using Format = std::function<std::string(std::uint64_t)>;

  void thread(std::string name, std::function<void()> body);
  // Runs on the test's thread after every logical thread has finished.
  void at_end(std::function<void()> check);
  // Names an atomic (or the object that begins with one) in traces.
  void label(const void* object, std::string name, Format format = {});

  struct Label {
    const void* object;
    std::string name;
    Format format;
  };
  std::vector<std::pair<std::string, std::function<void()>>> threads;
  std::function<void()> end_check;
  std::vector<Label> labels;
};

struct Options {
  int spurious_failures = 1;                // per execution
  std::size_t max_steps = 500;              // scheduling points per execution: more is a livelock
  std::size_t max_executions = 1'000'000;   // a bound on the exploration itself
};

struct Result {
  std::size_t executions = 0;  // complete interleavings explored
  bool failed = false;
  std::string message;  // what failed
  std::string trace;    // the interleaving that failed, one event a line
  double seconds = 0;
  std::string report() const;  // message and trace, for a test's failure output
};

// Explores every interleaving of the threads `setup` makes (called once per
// execution, on fresh state), until one fails or all have passed.
Result explore(const std::function<void(Execution&)>& setup, const Options& options = {});

}  // namespace heddle::model
