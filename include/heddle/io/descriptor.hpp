// heddle io: FileDescriptor, the owner of one open descriptor.
//
// Owns: a descriptor number and, for the epoll reactor, which epoll set it
// is registered with. Every socket and file type of the io layer holds one,
// so a descriptor is closed on every path out of its owner's scope,
// cancellation included.
//
// Closing while tasks wait on it (close(), the destructor, move-assignment
// over it; from any task or thread) first ends each of their operations
// with std::system_error(ECANCELED) "descriptor closed while waiting", and
// returns only once each is out of the kernel (io_uring: cancelled and its
// completion in; epoll: off the epoll set and the wait lists); only then is
// the number released, so a descriptor that reuses it never meets an
// operation of the old one. The waiting tasks are not cancelled: they get
// the error and go on. With no operation in flight, close() costs one
// exchange and one check (a look at the number's slot) more than close(2).
// A second close does nothing. A plain thread blocked in an operation
// (poll(2)) is not woken by a close, as with threads.
//
// The protocol (which operations are in flight, who wakes whom) is in
// src/io/in_flight.cpp.
#pragma once

#include <atomic>
#include <utility>

namespace heddle::io {

namespace detail {
class Reactor;
}

class FileDescriptor {
 public:
  FileDescriptor() = default;
  // Takes ownership of `fd` (which may be -1).
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  ~FileDescriptor() { close(); }
  FileDescriptor(FileDescriptor&& other) noexcept
      : fd_(other.fd_.exchange(-1, std::memory_order_relaxed)),
        registered_(std::exchange(other.registered_, nullptr)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) {
      close();
      fd_.store(other.fd_.exchange(-1, std::memory_order_relaxed), std::memory_order_relaxed);
      registered_ = std::exchange(other.registered_, nullptr);
    }
    return *this;
  }

  int get() const noexcept { return fd_.load(std::memory_order_relaxed); }
  explicit operator bool() const noexcept { return get() >= 0; }
  // Gives up ownership: the caller closes the returned descriptor.
  int release() noexcept;
  // Ends the operations waiting on it (see above), then closes it (errors
  // of close(2) are ignored: the descriptor is gone either way, and
  // retrying would close someone else's). Inline: destroying a moved-from
  // descriptor costs a load.
  void close() noexcept {
    if (get() >= 0) close_owned();
  }

  // Internal (epoll reactor): the reactor this descriptor is registered
  // with, so that a descriptor is registered once per reactor.
  detail::Reactor* registered_with() const noexcept { return registered_; }
  void set_registered_with(detail::Reactor* reactor) noexcept { registered_ = reactor; }
  // Internal (in_flight.cpp): the number, read in the order the close
  // protocol needs (sequentially consistent).
  int number_for_close_protocol() const noexcept { return fd_.load(std::memory_order_seq_cst); }

 private:
  void close_owned() noexcept;

  // Atomic: close() may run on another thread than the tasks using it.
  std::atomic<int> fd_{-1};
  detail::Reactor* registered_ = nullptr;
};

}  // namespace heddle::io
