// heddle io (internal): one I/O operation and the call that performs it.
//
// Owns: Operation, the record of one system call a task waits for. It lives
// on the waiting task's stack, so it stays valid exactly as long as the task
// is parked in perform(); perform() never returns (nor unwinds) while the
// kernel may still write into the operation or its buffers. An operation on
// a FileDescriptor is listed under its number from before its first system
// call until perform() returns, and closing the descriptor ends it first
// (src/io/in_flight.cpp).
#pragma once

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "heddle/core/suspend.hpp"

namespace heddle::io {
class FileDescriptor;
}

namespace heddle::io::detail {

using Clock = std::chrono::steady_clock;
class Reactor;

enum class OpKind : std::uint8_t {
  // Descriptors that can wait for readiness (sockets, pipes, signalfd).
  read,
  write,
  recv,
  send,
  recvmsg,
  sendmsg,
  accept,
  connect,
  poll_readable,
  poll_writable,
  // Regular files: never "not ready", the kernel blocks instead.
  pread,
  pwrite,
  fsync,
  fdatasync,
  openat,
  statx,
};

constexpr bool is_file_operation(OpKind kind) noexcept { return kind >= OpKind::pread; }
// Which readiness an operation waits for when its descriptor is not ready.
constexpr bool waits_for_writable(OpKind kind) noexcept {
  return kind == OpKind::write || kind == OpKind::send || kind == OpKind::sendmsg || kind == OpKind::connect ||
         kind == OpKind::poll_writable;
}

struct Operation {
  OpKind kind{};
  FileDescriptor* descriptor = nullptr;  // the descriptor's owner, when there is one
  int fd = -1;
  void* buffer = nullptr;
  std::size_t length = 0;
  std::uint64_t offset = 0;
  int flags = 0;                         // recv/send flags, open flags, statx flags
  ::msghdr* message = nullptr;           // recvmsg, sendmsg
  ::sockaddr* address = nullptr;         // accept (out), connect (in)
  ::socklen_t address_length = 0;        // accept (in/out), connect (in)
  const char* path = nullptr;            // openat, statx
  unsigned mode = 0;                     // openat mode, statx mask
  struct ::statx* stat = nullptr;        // statx
  Clock::time_point deadline = Clock::time_point::max();

  // Reactor state, touched only on the loop's thread.
  Reactor* reactor = nullptr;
  Resumer waiter;
  int result = 0;
  bool done = false;
  bool timed_out = false;
  bool cancel_submitted = false;
  bool connect_started = false;
  bool linked = false;
  Operation* prev = nullptr;  // epoll wait lists
  Operation* next = nullptr;
  Operation* in_kernel = nullptr;  // io_uring: the entry the kernel holds for it (itself or its readiness wait)

  // Close protocol (src/io/in_flight.cpp): the operations in flight on a
  // descriptor number are listed, so that closing it ends them first.
  // Guarded by that number's slot lock, except where noted.
  void* in_flight_slot = nullptr;  // its number's slot, while listed
  Operation* in_flight_prev = nullptr;
  Operation* in_flight_next = nullptr;
  Resumer close_waker;    // the Resumer of its current interruptible park
  bool listed = false;    // on the list (the waiter's own flag: set and cleared by it)
  bool closing = false;   // set once by close(); read without the lock through atomic_ref
  bool close_woken = false;  // close() has woken it
  bool detached = false;  // close() ended it itself, on its reactor's thread (in_flight.cpp)
};

// Performs `op` for the caller and returns the system call's result: >= 0,
// or -errno (-ETIMEDOUT when op.deadline passed first).
//  - in a task of a heddle::Loop: through the loop's reactor; the task parks;
//  - on a plain thread (no task): blocking, like the system call itself;
//  - in a task with no scheduler: throws std::logic_error (nothing would
//    poll for its completion).
// A cancellation point: if the task is cancelled while parked, the kernel
// operation is cancelled and awaited, then heddle::Cancelled is thrown.
// -ECANCELED: op.descriptor was closed while the operation waited (in a
// task; a plain thread blocked in poll(2) is not woken by a close).
int perform(Operation& op);

// The non-blocking system call for `op` (what the epoll reactor and plain
// threads retry after readiness): >= 0, -EAGAIN when not ready, or -errno.
int attempt(Operation& op) noexcept;

// Throws std::system_error naming `what` when result < 0; returns it otherwise.
long check(long result, const char* what);

// How many operations are in flight on descriptor number `fd` (tests: wait
// until a task has started waiting on it).
std::size_t operations_in_flight(int fd) noexcept;

}  // namespace heddle::io::detail
