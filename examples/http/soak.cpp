// heddle example: `http soak` (see soak.hpp).
#include "soak.hpp"

#include <dirent.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define HEDDLE_SOAK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEDDLE_SOAK_ASAN 1
#endif
#endif
#if defined(HEDDLE_SOAK_ASAN)
// From <sanitizer/allocator_interface.h>, which g++ does not install.
extern "C" void __sanitizer_purge_allocator(void);
// AddressSanitizer keeps freed blocks in a quarantine, 256 MiB by default,
// to catch late uses. The soak frees millions of blocks, so the quarantine
// fills long after the baseline, and the shadow memory of the heap it grew
// stays resident when it is drained: a growth the soak would report as a
// leak. 16 MiB fills within the warm-up. For every mode of this program
// (it has one binary); ASAN_OPTIONS in the environment still overrides it.
extern "C" const char* __asan_default_options() { return "quarantine_size_mb=16"; }
#endif

#include "heddle/heddle.hpp"
#include "heddle/io/backend.hpp"
#include "heddle/io/net.hpp"
#include "http_client.hpp"
#include "process_stats.hpp"
#include "http_server.hpp"

namespace http_example {

namespace io = heddle::io;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr auto kRequestTimeout = 1s;
// How long past the request timeout a stalled client may wait for the
// server to disconnect it (a loaded sanitizer build is slow).
constexpr auto kDisconnectSlack = 4s;
constexpr auto kClientTimeout = 5s;  // each client read, write and connect
constexpr double kRssTolerance = 0.10;

enum class Kind { keep_alive, pipelined, short_lived, malformed, oversized, slowloris, reset };
constexpr std::size_t kKinds = 7;
constexpr std::array<const char*, kKinds> kKindNames = {"keep-alive", "pipelined", "short-lived", "malformed",
                                                        "oversized",  "slowloris", "reset"};
// Client tasks of each kind, running at once.
constexpr std::array<int, kKinds> kTasksOfKind = {8, 4, 2, 2, 2, 8, 2};

struct KindStats {
  std::uint64_t connections = 0;  // finished, whichever way
  std::uint64_t sent = 0;         // well-formed requests written
  std::uint64_t answered = 0;     // ...and answered correctly
  std::uint64_t expected = 0;     // 400s, 431s, disconnects or resets seen as intended
  std::uint64_t failures = 0;
};

// The client side's tally; the client Loop's tasks only touch it.
struct ClientState {
  bool stop = false;
  std::array<KindStats, kKinds> kinds{};
  std::vector<std::string> first_errors;  // the first few, for the summary

  KindStats& of(Kind kind) { return kinds[static_cast<std::size_t>(kind)]; }
  void fail(Kind kind, const std::string& what) {
    ++of(kind).failures;
    if (first_errors.size() < 8) first_errors.push_back(std::string(kKindNames[static_cast<std::size_t>(kind)]) + ": " + what);
  }
  std::uint64_t total(std::uint64_t KindStats::*field) const {
    std::uint64_t sum = 0;
    for (const KindStats& k : kinds) sum += k.*field;
    return sum;
  }
};

// What the client thread hands back to the main thread.
struct ClientReport {
  ClientState state;
  std::size_t rss_baseline = 0;
  double baseline_at_seconds = 0;
  std::size_t rss_peak = 0;
  std::string error;  // an unexpected exception in the client thread
};

// The resident set to compare with the baseline. Under AddressSanitizer the
// quarantine of freed blocks is drained first, so that both measurements
// count what the process holds rather than how much it recently freed.
std::size_t settled_resident_bytes() {
#if defined(HEDDLE_SOAK_ASAN)
  __sanitizer_purge_allocator();
#endif
  return resident_bytes();
}

double mebibytes(std::size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

template <class F>
bool wait_for(F done, Clock::duration timeout) {
  const Clock::time_point until = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= until) return false;
    heddle::sleep_for(5ms);
  }
  return true;
}

// One client task: its kind, its random stream, the shared tally.
struct Client {
  Kind kind;
  io::SocketAddress address;
  ClientState& state;
  std::minstd_rand random;

  KindStats& stats() { return state.of(kind); }
  int between(int low, int high) { return std::uniform_int_distribution<int>(low, high)(random); }
  bool one_in(int n) { return between(1, n) == 1; }
  void fail(const std::string& what) { state.fail(kind, what); }

  io::TcpStream connect() {
    auto stream = io::TcpStream::connect(address, kClientTimeout);
    stream.set_no_delay(true);
    stream.set_timeout(kClientTimeout);
    return stream;
  }

  std::string_view any_path() {
    static constexpr std::array<std::string_view, 5> paths = {"/", "/", "/?q=soak", "/missing", "/a/b/c"};
    return paths[static_cast<std::size_t>(between(0, static_cast<int>(paths.size()) - 1))];
  }
};

enum class Ending { keep_alive, close };  // what the request asks for

std::string request(std::string_view path, Ending ending = Ending::keep_alive, bool http10 = false) {
  std::string text = "GET ";
  text += path;
  text += http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
  text += "Host: 127.0.0.1\r\nUser-Agent: heddle-soak\r\n";
  if (ending == Ending::close && !http10) text += "Connection: close\r\n";
  text += "\r\n";
  return text;
}

// Reads the response to a well-formed request for `path` and checks it is
// the exact one; counts it answered. False (and a failure) otherwise.
bool expect_answer(Client& c, ResponseReader& reader, std::string_view path, Ending ending) {
  const bool root = path == "/" || path.starts_with("/?");
  const int status = root ? 200 : 404;
  const std::string_view body = root ? "Hello, World!" : "Not Found\n";
  Response response;
  if (!reader.next(response)) {
    c.fail("the server closed before answering a well-formed request");
    return false;
  }
  if (response.status != status || response.body != body || response.keep_alive != (ending == Ending::keep_alive)) {
    c.fail("GET " + std::string(path) + ": expected " + std::to_string(status) + ", got " +
           std::to_string(response.status) + (response.keep_alive ? " keep-alive" : " close") + " body \"" +
           response.body + "\"");
    return false;
  }
  ++c.stats().answered;
  return true;
}

// After a response that ends the connection: the server closes.
bool expect_close(Client& c, ResponseReader& reader) {
  Response response;
  if (reader.next(response)) {
    c.fail("a response after the server said it would close (status " + std::to_string(response.status) + ")");
    return false;
  }
  return true;
}

void reset_on_close(io::TcpStream& stream) {
  const linger abort_on_close{1, 0};
  ::setsockopt(stream.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
  stream.close();  // sends RST
}

bool is_disconnect(const std::system_error& e) {
  const int error = e.code().value();
  return error == ECONNRESET || error == EPIPE;
}

void keep_alive_connection(Client& c) {
  auto stream = c.connect();
  ResponseReader reader(stream);
  const int count = c.between(1, 100);
  const bool close_at_end = c.one_in(2);  // the server closes first: its side keeps the TIME_WAIT
  for (int i = 0; i < count; ++i) {
    const bool last = i + 1 == count || c.state.stop;
    const Ending ending = last && close_at_end ? Ending::close : Ending::keep_alive;
    const std::string_view path = c.any_path();
    stream.write(request(path, ending));
    ++c.stats().sent;
    if (!expect_answer(c, reader, path, ending)) return;
    if (ending == Ending::close) {
      expect_close(c, reader);
      return;
    }
    if (last) return;
    if (c.one_in(16)) heddle::sleep_for(std::chrono::milliseconds(c.between(1, 20)));  // well under the timeout
  }
}

void pipelined_connection(Client& c) {
  auto stream = c.connect();
  ResponseReader reader(stream);
  const int rounds = c.between(5, 50);  // many batches a connection: churn stays low
  for (int round = 0; round < rounds && !c.state.stop; ++round) {
    const int count = c.between(2, 40);
    std::vector<std::string_view> paths;
    std::string batch;
    for (int i = 0; i < count; ++i) {
      paths.push_back(c.any_path());
      batch += request(paths.back());
    }
    stream.write(batch);  // a few KiB at most: fits the socket buffers before any is read
    c.stats().sent += paths.size();
    for (const std::string_view path : paths) {
      if (!expect_answer(c, reader, path, Ending::keep_alive)) return;
    }
  }
}

void short_lived_connection(Client& c) {
  auto stream = c.connect();
  ResponseReader reader(stream);
  const std::string_view path = c.any_path();
  switch (c.between(0, 2)) {
    case 0:  // keep-alive asked for; the client closes
      stream.write(request(path));
      ++c.stats().sent;
      expect_answer(c, reader, path, Ending::keep_alive);
      break;
    case 1:  // Connection: close
      stream.write(request(path, Ending::close));
      ++c.stats().sent;
      if (expect_answer(c, reader, path, Ending::close)) expect_close(c, reader);
      break;
    default:  // HTTP/1.0 without keep-alive
      stream.write(request(path, Ending::close, /*http10=*/true));
      ++c.stats().sent;
      if (expect_answer(c, reader, path, Ending::close)) expect_close(c, reader);
      break;
  }
}

void malformed_connection(Client& c) {
  static constexpr std::array<std::string_view, 7> bad = {
      "GET / HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",                      // no colon after the header name
      "GET / HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n",                    // a space before the colon
      "GET /\r\n",                                                    // a request line without a version
      "NOT HTTP AT ALL\r\n\r\n",                                      // no method
      "GET / HTTP/1.1\r\nContent-Length: many\r\n\r\n",               // a length that is not a number
      "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",   // a chunk size that is not hex
      "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",  // two lengths
  };
  auto stream = c.connect();
  ResponseReader reader(stream);
  std::vector<std::string_view> paths(static_cast<std::size_t>(c.between(0, 3)));
  std::string batch;
  for (auto& path : paths) {
    path = c.any_path();
    batch += request(path);
  }
  batch += bad[static_cast<std::size_t>(c.between(0, static_cast<int>(bad.size()) - 1))];
  stream.write(batch);
  c.stats().sent += paths.size();
  for (const std::string_view path : paths) {
    if (!expect_answer(c, reader, path, Ending::keep_alive)) return;
  }
  Response response;
  if (!reader.next(response) || response.status != 400 || response.keep_alive) {
    c.fail("a malformed request: expected 400 and close, got " + std::to_string(response.status));
    return;
  }
  if (expect_close(c, reader)) ++c.stats().expected;
}

void oversized_connection(Client& c) {
  std::string text = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (c.one_in(2)) {
    text += "X-Big: " + std::string(static_cast<std::size_t>(c.between(8 * 1024, 12 * 1024)), 'a') + "\r\n";
  } else {
    for (int i = 0; i < 300; ++i) text += "X-Header-" + std::to_string(i) + ": some value, thirty bytes\r\n";
  }
  text += "\r\n";
  auto stream = c.connect();
  ResponseReader reader(stream);
  stream.write(text);  // the server answers 431 early, then drains what follows
  Response response;
  if (!reader.next(response) || response.status != 431 || response.keep_alive) {
    c.fail("a header section over 8 KiB: expected 431 and close, got " + std::to_string(response.status));
    return;
  }
  if (expect_close(c, reader)) ++c.stats().expected;
}

// The client stalls; the server must disconnect it after the request timeout.
void slowloris_connection(Client& c) {
  auto stream = c.connect();
  stream.set_timeout(kRequestTimeout + kDisconnectSlack + 1s);
  ResponseReader reader(stream);
  const int variant = c.between(0, 2);
  Clock::time_point idle_since = Clock::now();
  bool disconnected = false;
  try {
    if (variant == 0) {  // half a request, then nothing
      const std::string full = request("/");
      stream.write(std::string_view(full).substr(0, static_cast<std::size_t>(c.between(1, static_cast<int>(full.size()) - 1))));
    } else if (variant == 2) {  // a request, its answer, then an idle keep-alive connection
      stream.write(request("/"));
      ++c.stats().sent;
      if (!expect_answer(c, reader, "/", Ending::keep_alive)) return;
      idle_since = Clock::now();
    }
    if (variant == 1) {  // a header trickled a byte at a time, never finished
      stream.write("GET / HTTP/1.1\r\nX-Slow: ");
      // A write to a closed connection succeeds once (the peer answers RST)
      // and fails the next time: a disconnect is seen within two writes.
      while (Clock::now() - idle_since < kRequestTimeout + kDisconnectSlack) {
        heddle::sleep_for(100ms);
        stream.write("a");
      }
    } else {
      char byte;
      disconnected = stream.read(&byte, 1) == 0;
      if (!disconnected) c.fail("the server sent bytes to a stalled client");
    }
  } catch (const std::system_error& e) {
    if (!is_disconnect(e)) throw;
    disconnected = true;
  }
  const auto waited = Clock::now() - idle_since;
  if (!disconnected) {
    c.fail("a stalled client was not disconnected within " +
           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) + " ms");
  } else if (waited < kRequestTimeout / 2) {
    c.fail("a stalled client was disconnected after only " +
           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) + " ms");
  } else {
    ++c.stats().expected;
  }
}

// Requests, part of the responses, then RST: the server's write may fail.
void reset_connection(Client& c) {
  auto stream = c.connect();
  const int count = c.between(1, 400);  // at most 7 KiB of requests, 40 KiB of responses
  std::string batch;
  for (int i = 0; i < count; ++i) batch += "GET / HTTP/1.1\r\n\r\n";
  stream.write(batch);
  std::size_t to_read = static_cast<std::size_t>(c.between(0, count * 40));
  char buffer[2048];
  while (to_read > 0) {
    const std::size_t n = stream.read(buffer, std::min(sizeof buffer, to_read));
    if (n == 0) break;
    to_read -= std::min(n, to_read);
  }
  reset_on_close(stream);
  ++c.stats().expected;
}

void run_client(Client& c) {
  while (!c.state.stop) {
    try {
      switch (c.kind) {
        case Kind::keep_alive: keep_alive_connection(c); break;
        case Kind::pipelined: pipelined_connection(c); break;
        case Kind::short_lived: short_lived_connection(c); break;
        case Kind::malformed: malformed_connection(c); break;
        case Kind::oversized: oversized_connection(c); break;
        case Kind::slowloris: slowloris_connection(c); break;
        case Kind::reset: reset_connection(c); break;
      }
    } catch (const std::exception& e) {
      c.fail(e.what());
    }
    ++c.stats().connections;
    // The one-connection kinds pause between connections: unpaced they
    // open tens of thousands a second, and every connection that one side
    // closes first leaves a TIME_WAIT socket for a minute (the ephemeral
    // port range and the kernel's TIME_WAIT table are finite).
    switch (c.kind) {
      case Kind::short_lived: heddle::sleep_for(std::chrono::milliseconds(c.between(2, 10))); break;
      case Kind::malformed:
      case Kind::oversized:
      case Kind::reset: heddle::sleep_for(std::chrono::milliseconds(c.between(5, 20))); break;
      default: break;
    }
  }
}

// The client thread: every client task on one Loop, plus a monitor that
// prints progress, takes the RSS baseline and tracks the peak.
void run_clients(const SoakOptions& options, const io::SocketAddress& address, const Server& server,
                 ClientReport& report) {
  heddle::Loop loop;
  auto main_task = loop.spawn([&] {
    ClientState& state = report.state;
    const Clock::time_point start = Clock::now();
    const auto run_length = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.seconds));
    const Clock::time_point end = start + run_length;
    // The baseline: after the first 10% of the run (at least 1 s). By then
    // every kind of client has run many connections, so the server's stack
    // pool holds as many stacks as the population ever needs at once, each
    // thread's malloc arena has grown to its working size, and lazily bound
    // symbols and first-use buffers are in. Growth after it is what a leak
    // looks like; growth before it is warm-up.
    const Clock::time_point baseline_at = start + std::max<Clock::duration>(run_length / 10, 1s);
    const Clock::duration progress_every =
        std::clamp<Clock::duration>(run_length / 5, 1s, 10s);
    {
      heddle::TaskGroup clients;
      std::vector<Client> population;
      std::uint32_t seed = 1;
      for (std::size_t k = 0; k < kKinds; ++k) {
        for (int i = 0; i < kTasksOfKind[k]; ++i) {
          population.push_back(Client{static_cast<Kind>(k), address, state, std::minstd_rand(seed++)});
        }
      }
      for (Client& c : population) clients.spawn([&c] { run_client(c); });

      Clock::time_point next_progress = start + progress_every;
      while (Clock::now() < end) {
        heddle::sleep_for(100ms);
        report.rss_peak = std::max(report.rss_peak, resident_bytes());
        if (report.rss_baseline == 0 && Clock::now() >= baseline_at) {
          report.rss_baseline = settled_resident_bytes();
          report.baseline_at_seconds = seconds_since(start);
        }
        if (Clock::now() >= next_progress) {
          next_progress += progress_every;
          std::printf("  %6.0f s  %10llu requests answered  %8llu connections  %4llu open on the server  "
                      "RSS %6.1f MiB  %llu failures\n",
                      seconds_since(start), static_cast<unsigned long long>(state.total(&KindStats::answered)),
                      static_cast<unsigned long long>(state.total(&KindStats::connections)),
                      static_cast<unsigned long long>(server.stats().open.load()), mebibytes(resident_bytes()),
                      static_cast<unsigned long long>(state.total(&KindStats::failures)));
          std::fflush(stdout);
        }
      }
      state.stop = true;  // each client finishes its connection and leaves
      clients.wait();
    }
    report.rss_peak = std::max(report.rss_peak, resident_bytes());
  });
  loop.run();
  main_task.join();
}

}  // namespace

int run_soak(const SoakOptions& options) {
  const int fds_at_start = open_descriptors();
  const std::size_t rss_at_start = resident_bytes();

  ServerOptions server_options;
  server_options.request_timeout = kRequestTimeout;
  ClientReport report;
  bool tasks_back_to_zero = false;
  int fds_before_clients = -1, fds_after_clients = -1;
  std::size_t rss_after_clients = 0;
  ServerStats const* stats = nullptr;
  std::uint64_t accepted = 0, responses = 0, bad_requests = 0, too_large = 0, timed_out = 0, connection_errors = 0;
  std::size_t stack_high_water = 0;
  {
    Server server(server_options);
    stats = &server.stats();
    heddle::Loop loop;
    auto listener = io::TcpListener::bind(io::SocketAddress::loopback_ipv4());
    const io::SocketAddress address = listener.local_address();
    int population = 0;
    for (const int n : kTasksOfKind) population += n;
    std::printf("heddle soak: %.0f s, server on %s (%s), request timeout %lld ms, %d client tasks on a second "
                "Loop\n",
                options.seconds, address.to_string().c_str(), std::string(io::to_string(io::current_backend())).c_str(),
                static_cast<long long>(std::chrono::milliseconds(kRequestTimeout).count()), population);
    std::fflush(stdout);

    heddle::Event clients_done;
    std::thread clients;
    auto main_task = loop.spawn([&] {
      auto serving = heddle::spawn([&] { server.serve(listener); });
      heddle::sleep_for(10ms);  // the accept loop is parked: whatever the backend opens lazily is open
      fds_before_clients = open_descriptors();
      clients = std::thread([&] {
        try {
          run_clients(options, address, server, report);
        } catch (const std::exception& e) {
          report.error = e.what();
        }
        clients_done.set();  // the client Loop is gone by now
      });
      clients_done.wait();
      // Connections the clients closed last may still be ending (a lingering
      // close after an error response lasts up to the request timeout).
      tasks_back_to_zero = wait_for([&] { return server.stats().open.load() == 0; }, kRequestTimeout + 5s);
      heddle::sleep_for(100ms);  // let the last closes settle
      fds_after_clients = open_descriptors();
      rss_after_clients = settled_resident_bytes();
      serving.cancel();
      try {
        serving.join();
      } catch (const heddle::Cancelled&) {
      }
    });
    loop.run();
    main_task.join();
    clients.join();
    accepted = stats->accepted.load();
    responses = stats->requests.load();
    bad_requests = stats->bad_requests.load();
    too_large = stats->headers_too_large.load();
    timed_out = stats->timed_out.load();
    connection_errors = stats->connection_errors.load();
    stack_high_water = stats->stack_high_water.load();
  }
  const int fds_at_end = open_descriptors();
  const ClientState& state = report.state;

  std::printf("\nclients (connections finished; well-formed requests sent and answered correctly; outcomes "
              "as intended; failures):\n");
  static constexpr std::array<const char*, kKinds> outcome = {"", "", "", "400 + close", "431 + close",
                                                              "disconnected by the server", "reset by the client"};
  for (std::size_t k = 0; k < kKinds; ++k) {
    const KindStats& s = state.kinds[k];
    std::printf("  %-12s %9llu conns  %11llu sent  %11llu answered", kKindNames[k],
                static_cast<unsigned long long>(s.connections), static_cast<unsigned long long>(s.sent),
                static_cast<unsigned long long>(s.answered));
    if (outcome[k][0] != '\0') {
      std::printf("  %8llu %s", static_cast<unsigned long long>(s.expected), outcome[k]);
    }
    std::printf("  %llu failed\n", static_cast<unsigned long long>(s.failures));
  }
  std::printf("server: %llu connections, %llu responses, %llu 400s, %llu 431s, %llu timed out, %llu connection "
              "errors; stack high water %zu KiB of %zu KiB\n",
              static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(responses),
              static_cast<unsigned long long>(bad_requests), static_cast<unsigned long long>(too_large),
              static_cast<unsigned long long>(timed_out), static_cast<unsigned long long>(connection_errors),
              stack_high_water / 1024, server_options.stack_bytes / 1024);
  std::printf("memory: RSS start %.1f MiB, baseline %.1f MiB (at %.1f s), peak %.1f MiB, end %.1f MiB (%+.1f%% of "
              "baseline)\n",
              mebibytes(rss_at_start), mebibytes(report.rss_baseline), report.baseline_at_seconds,
              mebibytes(report.rss_peak), mebibytes(rss_after_clients),
              report.rss_baseline == 0 ? 0.0
                                       : 100.0 * (static_cast<double>(rss_after_clients) /
                                                      static_cast<double>(report.rss_baseline) -
                                                  1.0));
  std::printf("descriptors: %d before the clients, %d after them (server still up); %d at start, %d at end\n",
              fds_before_clients, fds_after_clients, fds_at_start, fds_at_end);
  for (const std::string& e : state.first_errors) std::printf("  first failures: %s\n", e.c_str());
  if (!report.error.empty()) std::printf("  client thread: %s\n", report.error.c_str());

  struct Check {
    const char* name;
    bool ok;
  };
  bool every_kind_ran = true;
  for (const KindStats& s : state.kinds) every_kind_ran = every_kind_ran && s.connections > 0;
  const std::vector<Check> checks = {
      {"no client failures", state.total(&KindStats::failures) == 0 && report.error.empty()},
      {"every kind of client ran", every_kind_ran},
      {"every well-formed request answered",
       state.total(&KindStats::sent) == state.total(&KindStats::answered) && state.total(&KindStats::sent) > 0},
      {"server tasks back to zero", tasks_back_to_zero},
      {"RSS within 10% of the baseline",
       report.rss_baseline != 0 &&
           static_cast<double>(rss_after_clients) <= static_cast<double>(report.rss_baseline) * (1.0 + kRssTolerance)},
      {"descriptors back to the count before the clients", fds_after_clients == fds_before_clients},
      {"descriptors back to the count at start", fds_at_end == fds_at_start},
  };
  std::string failed;
  for (const Check& check : checks) {
    std::printf("  [%s] %s\n", check.ok ? " ok " : "FAIL", check.name);
    if (!check.ok) failed += failed.empty() ? check.name : std::string(", ") + check.name;
  }
  if (!failed.empty()) {
    std::printf("soak: FAILED: %s\n", failed.c_str());
    return 1;
  }
  std::printf("soak: passed\n");
  return 0;
}

}  // namespace http_example
