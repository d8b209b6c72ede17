// heddle io: which reactor drives a Loop's I/O.
//
// Owns: the choice between io_uring and epoll. Each Loop gets its reactor
// the first time one of its tasks does I/O. The choice, process-wide:
//   HEDDLE_IO=io_uring  io_uring, or std::runtime_error when the kernel (or
//                       a seccomp filter) refuses it or heddle was built
//                       without liburing;
//   HEDDLE_IO=epoll     epoll;
//   unset or "auto"     io_uring when it works, epoll otherwise.
// Any other value is an error naming it.
#pragma once

#include <cstdint>
#include <string_view>

namespace heddle {
class Loop;
}

namespace heddle::io {

enum class Backend { io_uring, epoll };

std::string_view to_string(Backend backend) noexcept;

// The backend of the running task's Loop (its reactor is created if it has
// none yet), or, outside a Loop, the one a Loop would get.
Backend current_backend();

// Gives `loop` a reactor of `backend` whatever HEDDLE_IO says (to compare
// backends in one process, say). Call it before the loop's first I/O.
// Throws std::logic_error if the loop already has a reactor, and
// std::runtime_error if io_uring was asked for and is unavailable.
void use_backend(Loop& loop, Backend backend);

// What a loop's reactor has done so far (for tests, tools and tuning).
struct ReactorStats {
  Backend backend = Backend::epoll;
  std::uint64_t operations = 0;    // operations that had to wait for the kernel
  std::uint64_t kernel_calls = 0;  // io_uring_submit / io_uring_enter, or epoll_wait calls
  std::uint64_t completions = 0;   // completions (io_uring) or readiness events (epoll) taken
};
// The stats of `loop`'s reactor; all zero when it has none yet.
ReactorStats reactor_stats(const Loop& loop) noexcept;

// True when heddle was built with liburing and the kernel lets this
// process set up a ring.
bool io_uring_available() noexcept;

}  // namespace heddle::io
