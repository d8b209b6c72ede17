// heddle core (internal): the task state word and its named transitions.
//
// Owns: StateWord, the one atomic word that decides, between every thread
// that may touch a task, who runs it next. Each transition below is one
// member function; it is the only code that writes the word, through one
// compare-and-swap helper, and it asserts its precondition in debug builds.
// It is BasicStateWord over std::atomic: tests/model instantiates the same
// code over an atomic whose every operation is a scheduling point of an
// exhaustive interleaving checker (tests/model/README.md).
//
// The word packs:
//   bits 0-1  phase: running, parking, parked, finished
//   bit  2    resume_pending: a resume arrived while the task was parking
//   bit  3    cancel_requested: sticky; the next interruptible suspension throws
//   bit  4    joiner_waiting: a joiner's parker is in TaskControl::joiner
//   bit  5    detached: whoever sees both detached and finished releases the block
//   bits 8-   generation: +1 at every suspension and at finish
// A Resumer {control, generation} is stale once the generation has moved on:
// its claim then fails and does nothing.
//
// Transitions (from -> to; who may take it; memory ordering):
//
// | transition        | from                  | to                          | who                                   | ordering                |
// |-------------------|-----------------------|-----------------------------|---------------------------------------|-------------------------|
// | begin_life        | finished (or new)     | running, generation+1       | the spawner, before anyone sees it    | release store           |
// | abandon           | running (not started) | finished, same generation   | the spawner, when starting failed     | release store           |
// | begin_park        | running               | parking, generation+1       | the task itself, before switching out | release RMW             |
// | complete_park     | parking               | parked; or running, if a    | the context the task switched to,     | acq_rel CAS             |
// |                   |                       | resume is pending or an     | after the task's registers are saved  |                         |
// |                   |                       | interruptible cancel came   |                                       |                         |
// | reclaim           | parking               | running                     | the same, when the park hook threw    | acq_rel CAS             |
// | claim             | parked (generation g) | running                     | any thread holding a Resumer for g    | acq_rel CAS             |
// |                   | parking (generation g)| parking + resume_pending    | (Resumer::resume, a waker)            |                         |
// | cancel            | parked, interruptible | running + cancel_requested  | any thread (Task::cancel, a scheduler | acq_rel CAS             |
// |                   | any other live phase  | same + cancel_requested     | cancelling all); finished: no effect  |                         |
// | cancel_self       | running               | running + cancel_requested  | the task itself (this_task::cancel)   | acq_rel RMW             |
// | finish            | running               | finished, generation+1      | the context the task switched to for  | acq_rel RMW             |
// |                   |                       |                             | the last time                         |                         |
// | register_joiner   | any                   | same + joiner_waiting       | the handle's owner, in join()         | acq_rel RMW             |
// | detach            | any                   | same + detached             | the handle's owner, in detach()       | acq_rel RMW             |
//
// Exactly one of claim and cancel wins a parked task (a CAS decides), so a
// task is never run twice. Only the task itself moves the phase out of
// running; others may only add bits meanwhile, which begin_park's addition
// preserves.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>

namespace heddle::detail {

enum class Phase : std::uint64_t { running = 0, parking = 1, parked = 2, finished = 3 };
inline constexpr std::uint64_t kPhaseMask = 3;
inline constexpr std::uint64_t kResumePending = 4;
inline constexpr std::uint64_t kCancelRequested = 8;
inline constexpr std::uint64_t kJoinerWaiting = 16;
inline constexpr std::uint64_t kDetached = 32;
inline constexpr std::uint64_t kGenerationUnit = 256;

inline Phase phase_of(std::uint64_t s) noexcept { return static_cast<Phase>(s & kPhaseMask); }
inline std::uint64_t generation_of(std::uint64_t s) noexcept { return s / kGenerationUnit; }

// What a claim on a suspension did.
enum class Claim : std::uint8_t {
  lost,     // stale handle, or another resume/cancel won
  claimed,  // won a parked task: the caller must run it (run_claimed)
  pending,  // won a task still parking: the parking side runs it
};

// How complete_park ended.
enum class ParkEnd : std::uint8_t {
  parked,     // parked: a claim or cancel will run it
  resumed,    // a resume arrived while parking: the caller runs it
  cancelled,  // an interruptible park saw a cancel: the caller runs it
};

// What a cancel did.
enum class CancelEnd : std::uint8_t {
  none,     // finished, already cancelled, or (cancel_within) another life
  flagged,  // the bit is set: the task sees it at its next cancellation point
  claimed,  // won a parked interruptible task: the caller must run it
};

// Atomic: std::atomic, or a type with its interface (the model checker's).
template <template <class> class Atomic>
class BasicStateWord {
 public:
  static constexpr std::uint64_t kAnyGeneration = ~std::uint64_t{0};

  std::uint64_t load(std::memory_order order = std::memory_order_acquire) const noexcept {
    return word_.load(order);
  }
  // A read by an RMW that changes nothing: orders the reads before it too
  // (for dump_tasks under ThreadSanitizer, which has no fences).
  std::uint64_t load_by_rmw() noexcept { return word_.fetch_add(0, std::memory_order_acq_rel); }

  void begin_life() noexcept {
    const std::uint64_t s = word_.load(std::memory_order_relaxed);
    assert((s == 0 || phase_of(s) == Phase::finished) && "heddle: a control block reused while live");
    // Keep the generation growing across lives so old Resumers stay stale.
    word_.store((generation_of(s) + 1) * kGenerationUnit | static_cast<std::uint64_t>(Phase::running),
                std::memory_order_release);
  }

  void abandon() noexcept {
    const std::uint64_t s = word_.load(std::memory_order_relaxed);
    assert(phase_of(s) == Phase::running);
    // Same generation: the registry stops listing it.
    word_.store((s & ~kPhaseMask) | static_cast<std::uint64_t>(Phase::finished), std::memory_order_release);
  }

  void begin_park() noexcept {
    assert(phase_of(word_.load(std::memory_order_relaxed)) == Phase::running);
    word_.fetch_add(kGenerationUnit + static_cast<std::uint64_t>(Phase::parking), std::memory_order_release);
  }

  ParkEnd complete_park(const Atomic<bool>& interruptible) noexcept {
    std::uint64_t s = word_.load(std::memory_order_acquire);
    for (;;) {
      assert(phase_of(s) == Phase::parking);
      if (s & kResumePending) {
        if (move(s, running(s))) return ParkEnd::resumed;
      } else if ((s & kCancelRequested) && interruptible.load(std::memory_order_relaxed)) {
        if (move(s, running(s))) return ParkEnd::cancelled;
      } else if (move(s, (s & ~kPhaseMask) | static_cast<std::uint64_t>(Phase::parked))) {
        return ParkEnd::parked;
      }
    }
  }

  void reclaim() noexcept {
    std::uint64_t s = word_.load(std::memory_order_relaxed);
    do {
      assert(phase_of(s) == Phase::parking);
    } while (!move(s, running(s), std::memory_order_relaxed));
  }

  Claim claim(std::uint64_t generation) noexcept {
    std::uint64_t s = word_.load(std::memory_order_acquire);
    for (;;) {
      if (generation_of(s) != generation) return Claim::lost;
      const Phase phase = phase_of(s);
      if (phase == Phase::parked) {
        if (move(s, running(s))) return Claim::claimed;
      } else if (phase == Phase::parking && !(s & kResumePending)) {
        if (move(s, s | kResumePending)) return Claim::pending;
      } else {
        return Claim::lost;
      }
    }
  }

  // Within `generation` only (kAnyGeneration: whatever life the block is
  // in), for a canceller that read the word earlier and must not touch a
  // later life of a reused block.
  CancelEnd cancel(const Atomic<bool>& interruptible, std::uint64_t generation = kAnyGeneration) noexcept {
    std::uint64_t s = word_.load(std::memory_order_acquire);
    for (;;) {
      if ((generation != kAnyGeneration && generation_of(s) != generation) || phase_of(s) == Phase::finished ||
          (s & kCancelRequested)) {
        return CancelEnd::none;
      }
      if (phase_of(s) == Phase::parked && interruptible.load(std::memory_order_relaxed)) {
        if (move(s, running(s) | kCancelRequested)) return CancelEnd::claimed;
      } else if (move(s, s | kCancelRequested)) {
        return CancelEnd::flagged;
      }
    }
  }

  void cancel_self() noexcept {
    assert(phase_of(word_.load(std::memory_order_relaxed)) == Phase::running);
    word_.fetch_or(kCancelRequested, std::memory_order_acq_rel);
  }

  // Returns the word before: its joiner and detached bits say who releases
  // the block.
  std::uint64_t finish() noexcept {
    const std::uint64_t before =
        word_.fetch_add(kGenerationUnit + static_cast<std::uint64_t>(Phase::finished), std::memory_order_acq_rel);
    assert(phase_of(before) == Phase::running);
    return before;
  }

  // Both return whether the task had finished already.
  bool register_joiner() noexcept {
    return phase_of(word_.fetch_or(kJoinerWaiting, std::memory_order_acq_rel)) == Phase::finished;
  }
  bool detach() noexcept { return phase_of(word_.fetch_or(kDetached, std::memory_order_acq_rel)) == Phase::finished; }

 protected:  // not private: tests/model derives a deliberately broken claim
  // Clears the phase and the pending bit: the task is running again.
  static std::uint64_t running(std::uint64_t s) noexcept { return s & ~(kPhaseMask | kResumePending); }

  // The one compare-and-swap: `seen` is updated on failure.
  bool move(std::uint64_t& seen, std::uint64_t to, std::memory_order failure = std::memory_order_acquire) noexcept {
    return word_.compare_exchange_weak(seen, to, std::memory_order_acq_rel, failure);
  }

  Atomic<std::uint64_t> word_{0};
};

using StateWord = BasicStateWord<std::atomic>;

}  // namespace heddle::detail
