// heddle io: FileDescriptor, the owner of one open descriptor.
//
// Owns: a descriptor number and, for the epoll reactor, which epoll set it
// is registered with. Every socket and file type of the io layer holds one,
// so a descriptor is closed on every path out of its owner's scope,
// cancellation included.
//
// A descriptor must not be closed while another task waits on it (as with
// close(2) on a thread: the waiter's result would be undefined). Close it
// from the task that uses it, or cancel the waiting task first.
#pragma once

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
      : fd_(std::exchange(other.fd_, -1)), registered_(std::exchange(other.registered_, nullptr)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) {
      close();
      fd_ = std::exchange(other.fd_, -1);
      registered_ = std::exchange(other.registered_, nullptr);
    }
    return *this;
  }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  // Gives up ownership: the caller closes the returned descriptor.
  int release() noexcept;
  // Closes the descriptor (errors of close(2) are ignored: the descriptor
  // is gone either way, and retrying would close someone else's).
  void close() noexcept;

  // Internal (epoll reactor): the reactor this descriptor is registered
  // with, so that a descriptor is registered once per reactor.
  detail::Reactor* registered_with() const noexcept { return registered_; }
  void set_registered_with(detail::Reactor* reactor) noexcept { registered_ = reactor; }

 private:
  int fd_ = -1;
  detail::Reactor* registered_ = nullptr;
};

}  // namespace heddle::io
