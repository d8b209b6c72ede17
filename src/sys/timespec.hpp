// heddle sys (internal): nanoseconds to and from the kernel's timespec.
//
// Owns the one conversion every layer uses: a deadline or a timeout in
// nanoseconds as the timespec a system call takes (futex, ppoll, io_uring's
// __kernel_timespec), and a timespec the kernel gives back (clock_gettime,
// statx) as nanoseconds. Nanoseconds are std::int64_t, as in
// std::chrono::nanoseconds; a timespec's tv_nsec is always in
// [0, 1'000'000'000) for the non-negative values heddle converts.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace heddle::detail {

inline constexpr std::int64_t kNanosecondsPerSecond = 1'000'000'000;

// Any struct with tv_sec and tv_nsec: timespec, __kernel_timespec,
// statx_timestamp.
template <class T>
concept TimespecLike = requires(T t) {
  t.tv_sec;
  t.tv_nsec;
};

// `ns` (not negative) as a Timespec.
template <TimespecLike Timespec = timespec>
constexpr Timespec to_timespec(std::int64_t ns) noexcept {
  Timespec result{};
  result.tv_sec = static_cast<decltype(result.tv_sec)>(ns / kNanosecondsPerSecond);
  result.tv_nsec = static_cast<decltype(result.tv_nsec)>(ns % kNanosecondsPerSecond);
  return result;
}

template <TimespecLike Timespec>
constexpr std::int64_t to_nanoseconds(const Timespec& time) noexcept {
  return static_cast<std::int64_t>(time.tv_sec) * kNanosecondsPerSecond + static_cast<std::int64_t>(time.tv_nsec);
}

// A time point as nanoseconds since its clock's epoch: for
// std::chrono::steady_clock, the kernel's CLOCK_MONOTONIC.
template <class Clock, class Duration>
constexpr std::int64_t to_nanoseconds(std::chrono::time_point<Clock, Duration> time) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}

static_assert(to_nanoseconds(to_timespec(1'500'000'001)) == 1'500'000'001);
static_assert(to_timespec(2'000'000'000).tv_sec == 2 && to_timespec(2'000'000'000).tv_nsec == 0);

}  // namespace heddle::detail
