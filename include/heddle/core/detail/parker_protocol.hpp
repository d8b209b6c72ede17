// heddle core (internal): the Parker's protocol on its 32-bit state word.
//
// Owns: the steps that move Parker::state (core/detail/control.hpp), as
// function templates over the word's type: std::atomic<std::uint32_t> in
// src/core/parker.cpp, a checked atomic in tests/model, which runs this same
// code through every interleaving. The futex calls and the task's
// suspension stay in parker.cpp; these steps only decide.
//
// States: 0 empty, 1 token (an unpark waits to be consumed), 2 waiter parked.
//
// | step         | from -> to        | who                                   | ordering                   |
// |--------------|-------------------|---------------------------------------|----------------------------|
// | take_token   | 1 -> 0            | the owner, before and after waiting   | acq_rel CAS                |
// | begin_wait   | 0 -> 2, or 1 -> 0 | the owner, about to wait (false: a    | acq_rel CAS (acquire on    |
// |              |                   | token came meanwhile, now consumed)   | failure), relaxed store    |
// | withdraw     | 2 -> 0            | the owner, cancelled or timed out     | acq_rel CAS                |
// | post         | any -> 1          | an unparker; if it was 2, it wakes    | acq_rel exchange           |
// |              |                   | the waiter                            |                            |
//
// Only the owner leaves 1 or 2 for 0, and only an unparker makes 1, so an
// unpark is never lost: it is a token the next park consumes, or it finds
// the waiter (2) and wakes it, once (its exchange took the 2).
#pragma once

#include <atomic>
#include <cstdint>

namespace heddle::detail::parker_protocol {

inline constexpr std::uint32_t kEmpty = 0;
inline constexpr std::uint32_t kToken = 1;
inline constexpr std::uint32_t kWaiter = 2;

template <class Word>
bool take_token(Word& state) noexcept {
  std::uint32_t token = kToken;
  return state.compare_exchange_strong(token, kEmpty, std::memory_order_acq_rel, std::memory_order_relaxed);
}

template <class Word>
bool begin_wait(Word& state) noexcept {
  std::uint32_t empty = kEmpty;
  if (state.compare_exchange_strong(empty, kWaiter, std::memory_order_acq_rel, std::memory_order_acquire)) {
    return true;
  }
  // Only a token can be there (only the owner makes 2): consume it. The
  // failed CAS's acquire read it.
  state.store(kEmpty, std::memory_order_relaxed);
  return false;
}

// `failure`: the ordering of a failed withdrawal, which read a token (a
// thread that timed out consumes it next and must see what the unparker
// published: acquire; a cancelled task ignores it: relaxed).
template <class Word>
bool withdraw(Word& state, std::memory_order failure) noexcept {
  std::uint32_t waiting = kWaiter;
  return state.compare_exchange_strong(waiting, kEmpty, std::memory_order_acq_rel, failure);
}

// True if the owner was waiting: the caller must wake it.
template <class Word>
bool post(Word& state) noexcept {
  return state.exchange(kToken, std::memory_order_acq_rel) == kWaiter;
}

template <class Word>
bool waiting(const Word& state) noexcept {
  return state.load(std::memory_order_acquire) == kWaiter;
}

// A thread's park, once take_token found no token. `wait()` sleeps while
// the word holds kWaiter (a futex wait on it; it may return early).
template <class Word, class Wait>
void wait_thread(Word& state, Wait wait) {
  if (!begin_wait(state)) return;
  while (waiting(state)) wait();
  take_token(state);
}

template <class Word, class Wait>
void park_thread(Word& state, Wait wait) {
  if (!take_token(state)) wait_thread(state, wait);
}

// As park_thread, with a deadline: `wait()` returns true once it has passed.
// Returns false if the deadline passed before an unpark.
template <class Word, class WaitUntil>
bool park_thread_until(Word& state, WaitUntil wait) {
  if (take_token(state)) return true;
  if (!begin_wait(state)) return true;
  while (waiting(state)) {
    if (wait()) {
      if (withdraw(state, std::memory_order_acquire)) return false;
      break;  // an unpark arrived just now
    }
  }
  take_token(state);
  return true;
}

}  // namespace heddle::detail::parker_protocol
