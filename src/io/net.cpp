// heddle io: sockets (see include/heddle/io/net.hpp).
#include "heddle/io/net.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <system_error>

namespace heddle::io {

namespace {

using detail::OpKind;
using detail::Operation;

[[noreturn]] void fail(int error, const char* what, const SocketAddress* address = nullptr) {
  std::string message = what;
  if (address) message += " " + address->to_string();
  if (error == ETIMEDOUT) message += " (timed out)";
  if (error == ECANCELED) message += " (descriptor closed while waiting)";
  throw std::system_error(error, std::system_category(), message);
}

FileDescriptor open_socket(int family, int type, const char* what) {
  const int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(errno, what);
  return FileDescriptor(fd);
}

// Lengths the kernel takes in one call (io_uring's are 32-bit).
constexpr std::size_t kMaxTransfer = std::size_t{1} << 30;

// Connects a fresh socket of `family`/SOCK_STREAM to `address`.
FileDescriptor connect_stream(const SocketAddress& address, std::optional<Clock::duration> timeout,
                              const char* what) {
  if (address.empty()) fail(EINVAL, what, &address);
  FileDescriptor fd = open_socket(address.family(), SOCK_STREAM, what);
  SocketAddress target = address;  // the kernel reads it while the operation runs
  Operation op;
  op.kind = OpKind::connect;
  op.descriptor = &fd;
  op.fd = fd.get();
  op.address = target.data();
  op.address_length = target.size();
  if (timeout) op.deadline = Clock::now() + *timeout;
  const int r = detail::perform(op);
  if (r < 0) fail(-r, what, &address);
  return fd;
}

}  // namespace

// ---- Socket ----

detail::Operation Socket::operation(detail::OpKind kind) noexcept {
  Operation op;
  op.kind = kind;
  op.descriptor = &fd_;
  op.fd = fd_.get();
  if (timeout_) op.deadline = Clock::now() + *timeout_;
  return op;
}

SocketAddress Socket::local_address() const {
  SocketAddress address;
  socklen_t length = SocketAddress::capacity();
  if (::getsockname(fd_.get(), address.data(), &length) < 0) fail(errno, "heddle::io::Socket::local_address");
  address.set_size(length);
  return address;
}

void Socket::set_option(int level, int name, int value, const char* what) {
  if (::setsockopt(fd_.get(), level, name, &value, sizeof value) < 0) fail(errno, what);
}

// ---- StreamSocket ----

std::size_t StreamSocket::read(void* data, std::size_t size) {
  Operation op = operation(OpKind::recv);
  op.buffer = data;
  op.length = std::min(size, kMaxTransfer);
  const int r = detail::perform(op);
  if (r < 0) fail(-r, "heddle::io::StreamSocket::read");
  return static_cast<std::size_t>(r);
}

std::size_t StreamSocket::read_full(void* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const std::size_t got = read(static_cast<std::byte*>(data) + done, size - done);
    if (got == 0) break;
    done += got;
  }
  return done;
}

std::size_t StreamSocket::write_some(const void* data, std::size_t size) {
  Operation op = operation(OpKind::send);
  op.buffer = const_cast<void*>(data);
  op.length = std::min(size, kMaxTransfer);
  const int r = detail::perform(op);
  if (r < 0) fail(-r, "heddle::io::StreamSocket::write");
  return static_cast<std::size_t>(r);
}

void StreamSocket::write(const void* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) done += write_some(static_cast<const std::byte*>(data) + done, size - done);
}

void StreamSocket::shutdown_write() {
  if (::shutdown(fd_.get(), SHUT_WR) < 0) fail(errno, "heddle::io::StreamSocket::shutdown_write");
}

SocketAddress StreamSocket::peer_address() const {
  SocketAddress address;
  socklen_t length = SocketAddress::capacity();
  if (::getpeername(fd_.get(), address.data(), &length) < 0) fail(errno, "heddle::io::StreamSocket::peer_address");
  address.set_size(length);
  return address;
}

TcpStream TcpStream::connect(const SocketAddress& address, std::optional<Clock::duration> timeout) {
  if (address.family() != AF_INET && address.family() != AF_INET6) {
    fail(EAFNOSUPPORT, "heddle::io::TcpStream::connect", &address);
  }
  return TcpStream(connect_stream(address, timeout, "heddle::io::TcpStream::connect"));
}

void TcpStream::set_no_delay(bool on) {
  set_option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "heddle::io::TcpStream::set_no_delay");
}

UnixStream UnixStream::connect(const SocketAddress& address, std::optional<Clock::duration> timeout) {
  if (address.family() != AF_UNIX) fail(EAFNOSUPPORT, "heddle::io::UnixStream::connect", &address);
  return UnixStream(connect_stream(address, timeout, "heddle::io::UnixStream::connect"));
}

std::pair<UnixStream, UnixStream> UnixStream::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) {
    fail(errno, "heddle::io::UnixStream::pair");
  }
  return {UnixStream(FileDescriptor(fds[0])), UnixStream(FileDescriptor(fds[1]))};
}

// ---- Listener ----

template <class Stream>
Listener<Stream> Listener<Stream>::bind(const SocketAddress& address, int backlog) {
  return bind(address, ListenOptions{backlog, false});
}

template <class Stream>
Listener<Stream> Listener<Stream>::bind(const SocketAddress& address, ListenOptions options) {
  const int backlog = options.backlog;
  constexpr bool tcp = std::is_same_v<Stream, TcpStream>;
  const char* what = tcp ? "heddle::io::TcpListener::bind" : "heddle::io::UnixListener::bind";
  if (tcp ? (address.family() != AF_INET && address.family() != AF_INET6) : address.family() != AF_UNIX) {
    fail(EAFNOSUPPORT, what, &address);
  }
  Listener listener;
  listener.fd_ = open_socket(address.family(), SOCK_STREAM, what);
  if (tcp) listener.set_option(SOL_SOCKET, SO_REUSEADDR, 1, what);
  if (options.reuse_port) {
    if (!tcp) fail(EINVAL, "heddle::io::UnixListener::bind (reuse_port is for TCP listeners)", &address);
    listener.set_option(SOL_SOCKET, SO_REUSEPORT, 1, what);
  }
  if (::bind(listener.fd_.get(), address.data(), address.size()) < 0) fail(errno, what, &address);
  if constexpr (!tcp) {
    const std::string name = address.to_string();  // "unix:/path" or "unix:@abstract"
    if (name.size() > 5 && name[5] != '@') listener.path_ = name.substr(5);
  }
  if (::listen(listener.fd_.get(), backlog) < 0) fail(errno, what, &address);
  return listener;
}

template <class Stream>
Stream Listener<Stream>::accept(SocketAddress* peer) {
  SocketAddress address;
  Operation op = operation(OpKind::accept);
  op.address = address.data();
  op.address_length = SocketAddress::capacity();
  const int r = detail::perform(op);
  if (r < 0) {
    fail(-r, std::is_same_v<Stream, TcpStream> ? "heddle::io::TcpListener::accept" : "heddle::io::UnixListener::accept");
  }
  Stream stream{FileDescriptor(r)};
  if (peer) {
    address.set_size(op.address_length);
    *peer = address;
  }
  return stream;
}

template <class Stream>
void Listener<Stream>::remove_path() noexcept {
  if (!path_.empty() && fd_) ::unlink(path_.c_str());
  path_.clear();
}

template class Listener<TcpStream>;
template class Listener<UnixStream>;

// ---- datagrams ----

std::size_t DatagramSocket::send_to(const void* data, std::size_t size, const SocketAddress& to) {
  SocketAddress target = to;
  iovec vector{const_cast<void*>(data), size};
  msghdr message{};
  message.msg_name = target.data();
  message.msg_namelen = target.size();
  message.msg_iov = &vector;
  message.msg_iovlen = 1;
  Operation op = operation(OpKind::sendmsg);
  op.message = &message;
  const int r = detail::perform(op);
  if (r < 0) fail(-r, "heddle::io::DatagramSocket::send_to", &to);
  return static_cast<std::size_t>(r);
}

std::size_t DatagramSocket::receive_from(void* data, std::size_t size, SocketAddress* from) {
  SocketAddress source;
  iovec vector{data, size};
  msghdr message{};
  message.msg_name = source.data();
  message.msg_namelen = SocketAddress::capacity();
  message.msg_iov = &vector;
  message.msg_iovlen = 1;
  Operation op = operation(OpKind::recvmsg);
  op.message = &message;
  const int r = detail::perform(op);
  if (r < 0) fail(-r, "heddle::io::DatagramSocket::receive_from");
  if (from) {
    source.set_size(message.msg_namelen);
    *from = source;
  }
  return static_cast<std::size_t>(r);
}

void DatagramSocket::connect(const SocketAddress& peer) {
  // Datagram connect only sets the default peer: it never waits.
  if (::connect(fd_.get(), peer.data(), peer.size()) < 0) fail(errno, "heddle::io::DatagramSocket::connect", &peer);
}

std::size_t DatagramSocket::send(const void* data, std::size_t size) {
  Operation op = operation(OpKind::send);
  op.buffer = const_cast<void*>(data);
  op.length = size;
  const int r = detail::perform(op);
  if (r < 0) fail(-r, "heddle::io::DatagramSocket::send");
  return static_cast<std::size_t>(r);
}

std::size_t DatagramSocket::receive(void* data, std::size_t size) {
  Operation op = operation(OpKind::recv);
  op.buffer = data;
  op.length = size;
  const int r = detail::perform(op);
  if (r < 0) fail(-r, "heddle::io::DatagramSocket::receive");
  return static_cast<std::size_t>(r);
}

UdpSocket UdpSocket::bind(const SocketAddress& address) {
  const char* what = "heddle::io::UdpSocket::bind";
  if (address.family() != AF_INET && address.family() != AF_INET6) fail(EAFNOSUPPORT, what, &address);
  UdpSocket socket;
  socket.fd_ = open_socket(address.family(), SOCK_DGRAM, what);
  if (::bind(socket.fd_.get(), address.data(), address.size()) < 0) fail(errno, what, &address);
  return socket;
}

UnixDatagram UnixDatagram::bind(const SocketAddress& address) {
  const char* what = "heddle::io::UnixDatagram::bind";
  if (address.family() != AF_UNIX) fail(EAFNOSUPPORT, what, &address);
  UnixDatagram socket;
  socket.fd_ = open_socket(AF_UNIX, SOCK_DGRAM, what);
  if (::bind(socket.fd_.get(), address.data(), address.size()) < 0) fail(errno, what, &address);
  return socket;
}

UnixDatagram UnixDatagram::unbound() {
  UnixDatagram socket;
  socket.fd_ = open_socket(AF_UNIX, SOCK_DGRAM, "heddle::io::UnixDatagram::unbound");
  return socket;
}

std::pair<UnixDatagram, UnixDatagram> UnixDatagram::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) {
    fail(errno, "heddle::io::UnixDatagram::pair");
  }
  std::pair<UnixDatagram, UnixDatagram> ends;
  ends.first.fd_ = FileDescriptor(fds[0]);
  ends.second.fd_ = FileDescriptor(fds[1]);
  return ends;
}

}  // namespace heddle::io
