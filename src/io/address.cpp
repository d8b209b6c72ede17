// heddle io: SocketAddress and resolve().
#include "heddle/io/address.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "heddle/io/blocking.hpp"

namespace heddle::io {

namespace {

[[noreturn]] void bad_address(std::string_view text, const char* why) {
  throw std::invalid_argument("heddle::io::SocketAddress: \"" + std::string(text) + "\" " + why);
}

std::uint16_t parse_port(std::string_view text, std::string_view whole) {
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() || value > 65535) {
    bad_address(whole, "has no valid port (0-65535)");
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

SocketAddress SocketAddress::ipv4(std::string_view host, std::uint16_t port) {
  SocketAddress address;
  auto* in = reinterpret_cast<sockaddr_in*>(&address.storage_);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  const std::string text(host);
  if (::inet_pton(AF_INET, text.c_str(), &in->sin_addr) != 1) bad_address(host, "is not a numeric IPv4 address");
  address.length_ = sizeof(sockaddr_in);
  return address;
}

SocketAddress SocketAddress::ipv6(std::string_view host, std::uint16_t port) {
  SocketAddress address;
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&address.storage_);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  const std::string text(host);
  if (::inet_pton(AF_INET6, text.c_str(), &in6->sin6_addr) != 1) bad_address(host, "is not a numeric IPv6 address");
  address.length_ = sizeof(sockaddr_in6);
  return address;
}

SocketAddress SocketAddress::loopback_ipv4(std::uint16_t port) { return ipv4("127.0.0.1", port); }
SocketAddress SocketAddress::loopback_ipv6(std::uint16_t port) { return ipv6("::1", port); }
SocketAddress SocketAddress::any_ipv4(std::uint16_t port) { return ipv4("0.0.0.0", port); }
SocketAddress SocketAddress::any_ipv6(std::uint16_t port) { return ipv6("::", port); }

SocketAddress SocketAddress::unix_path(std::string_view path) {
  SocketAddress address;
  auto* un = reinterpret_cast<sockaddr_un*>(&address.storage_);
  un->sun_family = AF_UNIX;
  if (path.empty()) bad_address(path, "is an empty Unix socket path");
  if (path.size() >= sizeof un->sun_path) bad_address(path, "is too long for a Unix socket path (108 bytes)");
  std::memcpy(un->sun_path, path.data(), path.size());
  const bool abstract = path.front() == '@';
  if (abstract) un->sun_path[0] = '\0';
  // Abstract names are exactly as long as given; paths end with their NUL.
  address.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
  return address;
}

SocketAddress SocketAddress::parse(std::string_view text) {
  if (text.starts_with("unix:")) return unix_path(text.substr(5));
  try {
    if (text.starts_with("[")) {
      const auto close = text.find("]:");
      if (close == std::string_view::npos) bad_address(text, "is not [IPv6]:port");
      return ipv6(text.substr(1, close - 1), parse_port(text.substr(close + 2), text));
    }
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) bad_address(text, "has no port (host:port)");
    return ipv4(text.substr(0, colon), parse_port(text.substr(colon + 1), text));
  } catch (const std::invalid_argument& e) {
    if (std::string_view(e.what()).find(text) != std::string_view::npos) throw;
    // A part was bad: name the whole text too.
    throw std::invalid_argument(std::string(e.what()) + " in \"" + std::string(text) + "\"");
  }
}

SocketAddress SocketAddress::from(const sockaddr* address, socklen_t length) {
  SocketAddress result;
  if (length > sizeof result.storage_) length = sizeof result.storage_;
  std::memcpy(&result.storage_, address, length);
  result.length_ = length;
  return result;
}

std::uint16_t SocketAddress::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

std::string SocketAddress::to_string() const {
  char host[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(port());
  }
  if (family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(port());
  }
  if (family() == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
    const std::size_t offset = offsetof(sockaddr_un, sun_path);
    if (length_ <= offset) return "unix:(unnamed)";
    std::size_t size = length_ - offset;
    if (un->sun_path[0] == '\0') return "unix:@" + std::string(un->sun_path + 1, size - 1);
    return "unix:" + std::string(un->sun_path, ::strnlen(un->sun_path, size));
  }
  return "(no address)";
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  return a.length_ == b.length_ && std::memcmp(&a.storage_, &b.storage_, a.length_) == 0;
}

std::vector<SocketAddress> resolve(std::string_view host, std::uint16_t port) {
  const std::string name(host);
  return heddle::blocking([&] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const int error = ::getaddrinfo(name.c_str(), nullptr, &hints, &list);
    if (error != 0) {
      throw std::system_error(error == EAI_SYSTEM ? errno : EHOSTUNREACH, std::system_category(),
                              "heddle::io::resolve " + name + ": " + ::gai_strerror(error));
    }
    std::vector<SocketAddress> addresses;
    for (addrinfo* entry = list; entry; entry = entry->ai_next) {
      SocketAddress address = SocketAddress::from(entry->ai_addr, entry->ai_addrlen);
      if (address.family() == AF_INET) {
        reinterpret_cast<sockaddr_in*>(address.data())->sin_port = htons(port);
      } else if (address.family() == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(address.data())->sin6_port = htons(port);
      } else {
        continue;
      }
      addresses.push_back(address);
    }
    ::freeaddrinfo(list);
    if (addresses.empty()) {
      throw std::system_error(EHOSTUNREACH, std::system_category(), "heddle::io::resolve " + name + ": no address");
    }
    return addresses;
  });
}

}  // namespace heddle::io
