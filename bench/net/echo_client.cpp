// echo_load_client: the load generator of the echo_pingpong figure.
//
//   echo_load_client --port P [--host 127.0.0.1] [--connections 1000]
//                    [--size 64] [--seconds 5] [--warmup 1]
//
// Opens N TCP connections to an echo server and runs a ping-pong on each:
// send SIZE bytes, wait until the same SIZE bytes have come back (checked
// byte for byte), send the next message. After a warm-up, counts the round
// trips completed in SECONDS and prints
//   connections: N
//   messages_per_second: <total round trips per second, all connections>
// Plain C++ on epoll (one thread, nonblocking sockets, level-triggered), so
// it measures every server the same way. Exits 1 with a message on stderr
// when the server misbehaves: refuses or drops a connection, echoes wrong
// bytes, or stops answering.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const char* format, ...) {
  std::va_list args;
  va_start(args, format);
  std::fputs("echo_load_client: error: ", stderr);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
  va_end(args);
  std::exit(1);
}

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  long connections = 1000;
  long size = 64;
  double seconds = 5.0;
  double warmup = 1.0;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: echo_load_client --port P [--host ADDR] [--connections N] [--size BYTES]\n"
               "                        [--seconds S] [--warmup S]\n");
  std::exit(2);
}

long parse_long(const char* text, long low, long high) {
  char* end = nullptr;
  errno = 0;
  long value = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < low || value > high) usage();
  return value;
}

double parse_double(const char* text, double low) {
  char* end = nullptr;
  double value = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(value >= low)) usage();
  return value;
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (i + 1 >= argc) usage();
    const char* value = argv[++i];
    if (flag == "--port") {
      options.port = static_cast<int>(parse_long(value, 1, 65535));
    } else if (flag == "--host") {
      options.host = value;
    } else if (flag == "--connections") {
      options.connections = parse_long(value, 1, 1000000);
    } else if (flag == "--size") {
      options.size = parse_long(value, 1, 1 << 20);
    } else if (flag == "--seconds") {
      options.seconds = parse_double(value, 0.01);
    } else if (flag == "--warmup") {
      options.warmup = parse_double(value, 0.0);
    } else {
      usage();
    }
  }
  if (options.port == 0) usage();
  return options;
}

// Raises the soft descriptor limit to the hard one; returns how many
// connections fit (some descriptors stay free for stdio and epoll).
long fit_connections(long wanted) {
  constexpr long kReserved = 16;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) fail("getrlimit: %s", std::strerror(errno));
  if (limit.rlim_cur != limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  long available = (limit.rlim_cur == RLIM_INFINITY) ? wanted + kReserved
                                                      : static_cast<long>(limit.rlim_cur);
  long fit = available - kReserved;
  if (fit >= wanted) return wanted;
  if (fit < 1) fail("RLIMIT_NOFILE allows only %ld descriptors", available);
  std::fprintf(stderr,
               "echo_load_client: warning: RLIMIT_NOFILE (hard limit) allows %ld descriptors: "
               "using %ld connections instead of %ld\n",
               available, fit, wanted);
  return fit;
}

enum class State { connecting, running };

struct Connection {
  int fd = -1;
  State state = State::connecting;
  std::uint64_t sequence = 0;  // of the message in flight
  std::size_t sent = 0;        // bytes of it written
  std::size_t received = 0;    // bytes of its echo read
  bool want_write = false;     // EPOLLOUT registered
  std::vector<unsigned char> out;
  std::vector<unsigned char> in;
};

// Message `sequence` of connection `id`: distinct bytes per message, so a
// stale, duplicated or misplaced echo does not compare equal.
void fill_message(std::vector<unsigned char>& out, std::uint32_t id, std::uint64_t sequence) {
  std::uint64_t x = (static_cast<std::uint64_t>(id) << 40) ^ sequence ^ 0x9e3779b97f4a7c15ull;
  for (std::size_t i = 0; i < out.size(); i += sizeof x) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(out.data() + i, &x, std::min(sizeof x, out.size() - i));
  }
}

class Client {
 public:
  explicit Client(const Options& options) : options_(options) {}

  double run() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) fail("epoll_create1: %s", std::strerror(errno));
    connect_all();

    const auto start = Clock::now();
    const auto connect_deadline = start + std::chrono::seconds(10);
    auto measure_from = start + to_duration(options_.warmup);
    bool measuring = false;
    Clock::time_point measure_end{};
    std::uint64_t measured_start_count = 0;
    std::uint64_t last_count = 0;
    auto last_progress = start;

    std::vector<epoll_event> events(1024);
    for (;;) {
      int ready = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 100);
      if (ready < 0) {
        if (errno == EINTR) continue;
        fail("epoll_wait: %s", std::strerror(errno));
      }
      for (int i = 0; i < ready; ++i) handle(events[static_cast<std::size_t>(i)]);

      const auto now = Clock::now();
      if (completed_ != last_count) {
        last_count = completed_;
        last_progress = now;
      } else if (now - last_progress > std::chrono::seconds(5)) {
        fail("no echo for 5 s (%ld of %zu connections established, %llu round trips done): "
             "the server stalled",
             connected_, connections_.size(), static_cast<unsigned long long>(completed_));
      }
      if (connected_ < static_cast<long>(connections_.size())) {
        if (now > connect_deadline) {
          fail("only %ld of %zu connections established after 10 s", connected_,
               connections_.size());
        }
        continue;  // the warm-up starts counting once every connection is up
      }
      if (!measuring) {
        if (now >= measure_from) {
          measuring = true;
          measure_from = now;
          measure_end = now + to_duration(options_.seconds);
          measured_start_count = completed_;
        }
      } else if (now >= measure_end) {
        const double elapsed = std::chrono::duration<double>(now - measure_from).count();
        const std::uint64_t done = completed_ - measured_start_count;
        if (done == 0) fail("no round trip completed in %.1f s", elapsed);
        return static_cast<double>(done) / elapsed;
      }
    }
  }

  std::size_t connections() const { return connections_.size(); }

  ~Client() {
    for (auto& c : connections_) {
      if (c.fd >= 0) close(c.fd);
    }
    if (epoll_ >= 0) close(epoll_);
  }

 private:
  static Clock::duration to_duration(double seconds) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  }

  void connect_all() {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(options_.port));
    if (inet_pton(AF_INET, options_.host.c_str(), &address.sin_addr) != 1) {
      fail("not an IPv4 address: %s", options_.host.c_str());
    }
    connections_.resize(static_cast<std::size_t>(options_.connections));
    for (std::size_t id = 0; id < connections_.size(); ++id) {
      Connection& c = connections_[id];
      c.out.resize(static_cast<std::size_t>(options_.size));
      c.in.resize(static_cast<std::size_t>(options_.size));
      c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c.fd < 0) fail("socket (connection %zu): %s", id, std::strerror(errno));
      int one = 1;
      setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      bool now = connect(c.fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
      if (!now && errno != EINPROGRESS) {
        fail("connect to %s:%d (connection %zu): %s", options_.host.c_str(), options_.port, id,
             std::strerror(errno));
      }
      epoll_event event{};
      event.events = EPOLLOUT;
      event.data.u64 = id;
      c.want_write = true;
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &event) != 0) {
        fail("epoll_ctl: %s", std::strerror(errno));
      }
    }
  }

  void set_interest(std::size_t id, bool write) {
    Connection& c = connections_[id];
    if (c.want_write == write) return;
    epoll_event event{};
    event.events = write ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
    event.data.u64 = id;
    if (epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &event) != 0) {
      fail("epoll_ctl: %s", std::strerror(errno));
    }
    c.want_write = write;
  }

  void handle(const epoll_event& event) {
    const std::size_t id = static_cast<std::size_t>(event.data.u64);
    Connection& c = connections_[id];
    if (c.state == State::connecting) {
      int error = 0;
      socklen_t length = sizeof error;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &length);
      if (error != 0) {
        fail("connect to %s:%d (connection %zu): %s", options_.host.c_str(), options_.port, id,
             std::strerror(error));
      }
      if ((event.events & EPOLLOUT) == 0) return;
      c.state = State::running;
      ++connected_;
      fill_message(c.out, static_cast<std::uint32_t>(id), c.sequence);
      set_interest(id, false);
      send(id);
      return;
    }
    if (event.events & (EPOLLIN | EPOLLERR | EPOLLHUP)) receive(id);
    if ((event.events & EPOLLOUT) && c.sent < c.out.size()) send(id);
  }

  void send(std::size_t id) {
    Connection& c = connections_[id];
    while (c.sent < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        set_interest(id, true);
        return;
      } else {
        fail("send (connection %zu): %s", id, std::strerror(errno));
      }
    }
    set_interest(id, false);
  }

  void receive(std::size_t id) {
    Connection& c = connections_[id];
    for (;;) {
      // Never read past the message in flight: extra bytes would be a
      // server error, caught when they fail to match the next message.
      const std::size_t want = c.in.size() - c.received;
      ssize_t n = ::recv(c.fd, c.in.data() + c.received, want, 0);
      if (n == 0) {
        fail("the server closed connection %zu after %llu round trips", id,
             static_cast<unsigned long long>(c.sequence));
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        fail("recv (connection %zu): %s", id, std::strerror(errno));
      }
      c.received += static_cast<std::size_t>(n);
      if (c.received < c.in.size()) continue;
      if (c.sent < c.out.size()) {
        fail("connection %zu: the server echoed %zu bytes before they were all sent", id,
             c.received);
      }
      if (std::memcmp(c.in.data(), c.out.data(), c.in.size()) != 0) {
        std::size_t at = 0;
        while (c.in[at] == c.out[at]) ++at;
        fail("connection %zu, message %llu: echoed byte %zu is 0x%02x, sent 0x%02x", id,
             static_cast<unsigned long long>(c.sequence), at, c.in[at], c.out[at]);
      }
      ++completed_;
      ++c.sequence;
      c.received = 0;
      c.sent = 0;
      fill_message(c.out, static_cast<std::uint32_t>(id), c.sequence);
      send(id);
      return;  // one round trip per wake-up: the echo of this one is not here yet
    }
  }

  const Options& options_;
  int epoll_ = -1;
  std::vector<Connection> connections_;
  long connected_ = 0;
  std::uint64_t completed_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  options.connections = fit_connections(options.connections);
  Client client(options);
  const double rate = client.run();
  std::printf("connections: %zu\n", client.connections());
  std::printf("messages_per_second: %.0f\n", rate);
  return 0;
}
