// heddle io: sockets. TCP (IPv4 and IPv6) and Unix stream sockets,
// listeners, UDP and Unix datagram sockets.
//
// Owns: one descriptor per object (moved, never copied; closed on every path
// out of scope). Every operation looks blocking and parks only the calling
// task; on a plain thread it blocks the thread. Each is a cancellation
// point, and cancelling a task parked in one cancels the kernel operation
// and waits for it before unwinding.
//
// Errors: std::system_error with the errno and the operation named
// ("heddle::io::TcpStream::connect 127.0.0.1:9: Connection refused"). End of
// stream is a value: read() returns 0. Writing to a connection the peer
// closed is an error (EPIPE), never SIGPIPE. Closing a socket while other
// tasks wait on it ends their operations with ECANCELED ("descriptor
// closed while waiting") before the number is released (descriptor.hpp).
//
// Timeouts: set_timeout(d) bounds each following operation on the socket
// (each read, each write...) by d; one that runs out fails with
// std::system_error(ETIMEDOUT). For a deadline over several operations,
// wrap them in heddle::with_deadline.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "heddle/io/address.hpp"
#include "heddle/io/descriptor.hpp"
#include "heddle/io/detail/operation.hpp"

namespace heddle::io {

using Clock = std::chrono::steady_clock;

// What every socket has: its descriptor and a per-operation timeout.
class Socket {
 public:
  int native_handle() const noexcept { return fd_.get(); }
  explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
  FileDescriptor& descriptor() noexcept { return fd_; }
  void close() noexcept { fd_.close(); }

  SocketAddress local_address() const;
  void set_timeout(std::optional<Clock::duration> timeout) noexcept { timeout_ = timeout; }
  std::optional<Clock::duration> timeout() const noexcept { return timeout_; }
  // setsockopt with a name for errors.
  void set_option(int level, int name, int value, const char* what);

 protected:
  Socket() = default;
  explicit Socket(FileDescriptor fd) noexcept : fd_(std::move(fd)) {}
  // An operation on this socket, with its deadline.
  detail::Operation operation(detail::OpKind kind) noexcept;

  FileDescriptor fd_;
  std::optional<Clock::duration> timeout_;
};

class StreamSocket : public Socket {
 public:
  // Reads what is there (up to `size` bytes), waiting until something is;
  // returns 0 at the end of the stream.
  std::size_t read(void* data, std::size_t size);
  // Reads until `size` bytes or the end of the stream; returns how many.
  std::size_t read_full(void* data, std::size_t size);
  // Writes some of the bytes (at least one, unless size is 0); returns how many.
  std::size_t write_some(const void* data, std::size_t size);
  // Writes every byte (partial writes are continued).
  void write(const void* data, std::size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // No more writes: the peer reads the end of the stream.
  void shutdown_write();
  SocketAddress peer_address() const;

 protected:
  using Socket::Socket;
  StreamSocket() = default;
};

class TcpStream : public StreamSocket {
 public:
  TcpStream() = default;
  explicit TcpStream(FileDescriptor fd) noexcept : StreamSocket(std::move(fd)) {}
  // Connects to `address` (IPv4 or IPv6); `timeout` bounds the attempt.
  static TcpStream connect(const SocketAddress& address, std::optional<Clock::duration> timeout = std::nullopt);
  void set_no_delay(bool on);
};

class UnixStream : public StreamSocket {
 public:
  UnixStream() = default;
  explicit UnixStream(FileDescriptor fd) noexcept : StreamSocket(std::move(fd)) {}
  static UnixStream connect(const SocketAddress& address, std::optional<Clock::duration> timeout = std::nullopt);
  // Two connected ends (socketpair).
  static std::pair<UnixStream, UnixStream> pair();
};

// Accepts connections of Stream (TcpStream or UnixStream).
// How a listener binds.
struct ListenOptions {
  int backlog = 4096;
  // SO_REUSEPORT (TCP only): several listeners, one per loop of a Cluster,
  // bind the same port and the kernel spreads new connections over them.
  bool reuse_port = false;
};

template <class Stream>
class Listener : public Socket {
 public:
  Listener() = default;
  Listener(Listener&& other) noexcept : Socket(std::move(other)), path_(std::exchange(other.path_, {})) {}
  Listener& operator=(Listener&& other) noexcept {
    if (this != &other) {
      close();
      Socket::operator=(std::move(other));
      path_ = std::exchange(other.path_, {});
    }
    return *this;
  }
  ~Listener() { remove_path(); }
  // Binds and listens. TCP listeners set SO_REUSEADDR; a Unix listener
  // removes its socket file when closed or destroyed.
  static Listener bind(const SocketAddress& address, int backlog = 4096);
  // The same with options; reuse_port on a Unix listener is an error (EINVAL).
  static Listener bind(const SocketAddress& address, ListenOptions options);
  // Waits for the next connection. EMFILE and ENFILE come out as
  // std::system_error like every other error: a server backs off and retries.
  Stream accept(SocketAddress* peer = nullptr);
  void close() noexcept {
    remove_path();
    Socket::close();
  }

 private:
  void remove_path() noexcept;
  std::string path_;  // a Unix listener's socket file
};

using TcpListener = Listener<TcpStream>;
using UnixListener = Listener<UnixStream>;
extern template class Listener<TcpStream>;
extern template class Listener<UnixStream>;

class DatagramSocket : public Socket {
 public:
  std::size_t send_to(const void* data, std::size_t size, const SocketAddress& to);
  // Receives one datagram (truncated to `size`); `from` gets its sender.
  std::size_t receive_from(void* data, std::size_t size, SocketAddress* from = nullptr);
  // Sets the peer that send() and receive() use.
  void connect(const SocketAddress& peer);
  std::size_t send(const void* data, std::size_t size);
  std::size_t receive(void* data, std::size_t size);

 protected:
  using Socket::Socket;
  DatagramSocket() = default;
};

class UdpSocket : public DatagramSocket {
 public:
  UdpSocket() = default;
  static UdpSocket bind(const SocketAddress& address);
};

class UnixDatagram : public DatagramSocket {
 public:
  UnixDatagram() = default;
  static UnixDatagram bind(const SocketAddress& address);
  static UnixDatagram unbound();
  static std::pair<UnixDatagram, UnixDatagram> pair();
};

}  // namespace heddle::io
