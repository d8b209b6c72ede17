// heddle sys (internal): the futex calls that put a thread to sleep on a
// 32-bit word and wake it.
//
// Owns the one set of wrappers over futex(2) that Parker (core: a thread
// waiting in join, a group or a sync primitive) and a sleeping Pool worker
// (sched) use. All are process-private (FUTEX_*_PRIVATE) and inline: each
// is one system call on a park or wake path. A wait may return without a
// wake (a signal, the word already changed, or spuriously): every caller
// re-checks its word in a loop.
#pragma once

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace heddle::detail {

// Sleeps while *word == expected, until a futex_wake.
inline void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

// As futex_wait, at most until `deadline`: absolute, on CLOCK_MONOTONIC
// (std::chrono::steady_clock on Linux), as FUTEX_WAIT_BITSET takes it.
// False when it returned because the deadline passed.
inline bool futex_wait_until(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                             const timespec& deadline) noexcept {
  const long r = syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_BITSET_PRIVATE, expected,
                         &deadline, nullptr, FUTEX_BITSET_MATCH_ANY);
  return !(r != 0 && errno == ETIMEDOUT);
}

// Wakes one thread sleeping on `word`.
inline void futex_wake(std::atomic<std::uint32_t>* word) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

}  // namespace heddle::detail
