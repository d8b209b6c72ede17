// heddle io: SocketAddress (IPv4, IPv6 and Unix socket addresses) and name
// resolution.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace heddle::io {

class SocketAddress {
 public:
  SocketAddress() = default;

  // "127.0.0.1:8080", "[::1]:8080", "unix:/run/x.sock", "unix:@abstract".
  // Numeric only (no lookup: see resolve()). Throws std::invalid_argument
  // naming the text when it is not an address.
  static SocketAddress parse(std::string_view text);
  static SocketAddress ipv4(std::string_view host, std::uint16_t port);  // numeric host
  static SocketAddress ipv6(std::string_view host, std::uint16_t port);  // numeric host
  static SocketAddress loopback_ipv4(std::uint16_t port = 0);
  static SocketAddress loopback_ipv6(std::uint16_t port = 0);
  static SocketAddress any_ipv4(std::uint16_t port = 0);
  static SocketAddress any_ipv6(std::uint16_t port = 0);
  // A Unix socket path; a leading '@' names an abstract socket. Throws
  // std::invalid_argument when the path does not fit sockaddr_un.
  static SocketAddress unix_path(std::string_view path);
  // From a kernel-filled sockaddr.
  static SocketAddress from(const ::sockaddr* address, ::socklen_t length);

  int family() const noexcept { return storage_.ss_family; }
  bool empty() const noexcept { return length_ == 0; }
  std::uint16_t port() const noexcept;  // 0 for Unix addresses
  // "127.0.0.1:8080", "[::1]:8080", "unix:/path", "unix:@name", "unix:(unnamed)".
  std::string to_string() const;

  const ::sockaddr* data() const noexcept { return reinterpret_cast<const ::sockaddr*>(&storage_); }
  ::sockaddr* data() noexcept { return reinterpret_cast<::sockaddr*>(&storage_); }
  ::socklen_t size() const noexcept { return length_; }
  static constexpr ::socklen_t capacity() noexcept { return sizeof(::sockaddr_storage); }
  void set_size(::socklen_t length) noexcept { length_ = length; }

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  ::sockaddr_storage storage_{};
  ::socklen_t length_ = 0;
};

// Looks `host` up (getaddrinfo, run on the blocking pool so that the loop
// keeps running) and returns its addresses with `port`, in the resolver's
// order. Throws std::system_error naming the host when it has no address.
std::vector<SocketAddress> resolve(std::string_view host, std::uint16_t port);

}  // namespace heddle::io
