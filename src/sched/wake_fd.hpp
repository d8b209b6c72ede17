// heddle sched (internal): waking a scheduler thread that sleeps in its
// driver (an io reactor) through its eventfd.
#pragma once

#include <errno.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

#include "heddle/core/detail/control.hpp"
#include "heddle/sys/fault.hpp"
#include "sys/report_line.hpp"

namespace heddle::detail {

struct WakeFdFailure {
  int fd;
  const char* owner;
  int error;
};

[[noreturn]] inline void report_wake_fd_failure(void* context) noexcept {
  const auto* failure = static_cast<const WakeFdFailure*>(context);
  ReportLine()
      .append("heddle: ")
      .append(failure->owner)
      .append(": writing its wake-up eventfd ")
      .append_signed(failure->fd)
      .append(" failed (errno ")
      .append_signed(failure->error)
      .append(")")
      .write_line();
  std::abort();
}

// Adds one to the eventfd `fd`. A lost wake-up would leave the scheduler
// asleep with work queued, so: EINTR retries; EAGAIN means the counter is
// already so high that the fd is readable (the sleeper wakes anyway); any
// other error is a bug (a closed descriptor) and aborts, naming it, from off
// the task's stack (a bounded task wakes schedulers too).
inline void write_wake_fd(int fd, const char* owner) noexcept {
  const std::uint64_t one = 1;
  for (;;) {
    const fault::detail::Decision fault = fault::detail::take(fault::Site::wake_write);
    const ssize_t written = fault.hit ? (errno = fault.error, -1) : ::write(fd, &one, sizeof one);
    if (written == static_cast<ssize_t>(sizeof one) || (written < 0 && errno == EAGAIN)) return;
    if (written < 0 && errno == EINTR) continue;
    WakeFdFailure failure{fd, owner, written < 0 ? errno : 0};
    run_off_task_stack(&report_wake_fd_failure, &failure);
    __builtin_trap();  // not reached (a trap, not abort(): no call, so no frame on a bounded stack)
  }
}

}  // namespace heddle::detail
