// heddle example: `http demo` (see demo.hpp).
//
// Two Loops on two threads: the server's on the main thread, the load
// generator's on a second one. With the two in one Loop, every request
// would be written, parsed, answered and read on one core and the figures
// would measure the client as much as the server; on a machine with two
// cores each side gets its own, which is how wrk is run against a server.
//
// Phases, all over loopback:
//   1. load: C keep-alive connections, each a client task that sends GET /,
//      reads the response and records its round trip, for S seconds, with a
//      progress line each second;
//   2. idle: N keep-alive connections opened (one request each, so that
//      every server task has served a request) and left idle, to measure
//      what an idle connection costs; then closed;
//   3. report: throughput, latency percentiles, memory per idle connection,
//      the connection tasks' stack high-water mark.
#include "demo.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

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

// Round trips in nanoseconds, log-linear: 64 buckets per power of two, so a
// percentile is within 1.6% of the true value, in 32 KiB whatever the count.
class LatencyHistogram {
 public:
  void record(std::uint64_t ns) noexcept {
    ++counts_[index_of(ns)];
    ++count_;
  }
  std::uint64_t count() const noexcept { return count_; }
  // The value below which a fraction `p` of the samples lie (bucket midpoint).
  std::uint64_t percentile(double p) const noexcept {
    if (count_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(p * static_cast<double>(count_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return midpoint_of(i);
    }
    return midpoint_of(counts_.size() - 1);
  }

 private:
  static constexpr unsigned kSubBits = 6;
  static constexpr std::uint64_t kSub = std::uint64_t{1} << kSubBits;
  static std::size_t index_of(std::uint64_t v) noexcept {
    if (v < kSub) return static_cast<std::size_t>(v);
    const unsigned exponent = 63u - static_cast<unsigned>(std::countl_zero(v));  // >= kSubBits
    const std::uint64_t sub = (v >> (exponent - kSubBits)) & (kSub - 1);
    return static_cast<std::size_t>((exponent - kSubBits + 1) * kSub + sub);
  }
  static std::uint64_t midpoint_of(std::size_t index) noexcept {
    if (index < kSub) return index;
    const unsigned exponent = static_cast<unsigned>(index / kSub) + kSubBits - 1;
    const std::uint64_t low = (kSub + index % kSub) << (exponent - kSubBits);
    return low + (std::uint64_t{1} << (exponent - kSubBits)) / 2;
  }
  std::array<std::uint64_t, (64 - kSubBits + 1) * kSub> counts_{};
  std::uint64_t count_ = 0;
};

std::string with_commas(std::uint64_t n) {
  std::string digits = std::to_string(n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(static_cast<std::size_t>(i), ",");
  return digits;
}

double milliseconds(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// Polls `done` every few milliseconds until it holds or `timeout` passes.
template <class F>
bool wait_for(F done, Clock::duration timeout) {
  const Clock::time_point until = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= until) return false;
    heddle::sleep_for(5ms);
  }
  return true;
}

struct LoadState {
  bool stop = false;
  std::uint64_t requests = 0;
  std::uint64_t failures = 0;
  std::string first_error;
  LatencyHistogram latency;

  void fail(const std::string& what) {
    ++failures;
    if (first_error.empty()) first_error = what;
  }
};

// One keep-alive connection of the load phase: a request, its response, again.
void load_client(const io::SocketAddress& address, LoadState& state) {
  try {
    auto stream = io::TcpStream::connect(address, 5s);
    stream.set_no_delay(true);
    stream.set_timeout(5s);
    ResponseReader reader(stream);
    Response response;
    static const std::string request = get_request("/");
    while (!state.stop) {
      const Clock::time_point start = Clock::now();
      stream.write(request);
      if (!reader.next(response)) throw std::runtime_error("the server closed a keep-alive connection");
      const Clock::time_point end = Clock::now();
      if (response.status != 200 || response.body != "Hello, World!") {
        state.fail("unexpected response: status " + std::to_string(response.status));
        return;
      }
      state.latency.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(end - start).count()));
      ++state.requests;
    }
  } catch (const std::exception& e) {
    state.fail(e.what());
  }
}

struct ClientReport {
  bool ok = true;
  std::string error;
};

// The load generator's thread: phases 1 and 2.
void run_clients(const DemoOptions& options, const io::SocketAddress& address, const Server& server,
                 ClientReport& report) {
  heddle::Loop loop;
  auto main_task = loop.spawn([&] {
    const bool tty = ::isatty(STDOUT_FILENO) != 0;
    // ---- phase 1: load
    LoadState state;
    const Clock::time_point start = Clock::now();
    const Clock::time_point end = start + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(options.seconds));
    {
      heddle::TaskGroup clients;
      for (int i = 0; i < options.connections; ++i) clients.spawn([&] { load_client(address, state); });
      // The progress line, once a second, until the end of the phase.
      std::uint64_t last_requests = 0;
      Clock::time_point last = start;
      while (!state.stop) {
        heddle::sleep_until(std::min(last + 1s, end));
        const Clock::time_point now = Clock::now();
        const double rate = static_cast<double>(state.requests - last_requests) /
                            std::chrono::duration<double>(now - last).count();
        std::printf("%s  %5.1f s  %12s requests  %10s req/s%s", tty ? "\r" : "",
                    std::chrono::duration<double>(now - start).count(), with_commas(state.requests).c_str(),
                    with_commas(static_cast<std::uint64_t>(rate)).c_str(), tty ? "" : "\n");
        std::fflush(stdout);
        last = now;
        last_requests = state.requests;
        if (now >= end) state.stop = true;
      }
      clients.wait();
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (tty) std::printf("\n");
    std::printf("\nthroughput: %s requests/s (%s requests in %.2f s over %d connections, %s failed)\n",
                with_commas(static_cast<std::uint64_t>(static_cast<double>(state.requests) / seconds)).c_str(),
                with_commas(state.requests).c_str(), seconds, options.connections,
                with_commas(state.failures).c_str());
    std::printf("latency:    p50 %.3f ms   p99 %.3f ms   p99.9 %.3f ms   (each request's round trip, "
                "measured by its client task)\n",
                milliseconds(state.latency.percentile(0.50)), milliseconds(state.latency.percentile(0.99)),
                milliseconds(state.latency.percentile(0.999)));
    std::fflush(stdout);
    if (state.failures != 0) {
      report.ok = false;
      report.error = state.first_error;
    }

    // ---- phase 2: idle connections
    if (options.idle == 0) return;
    if (!wait_for([&] { return server.stats().open.load() == 0; }, 5s)) {
      report.ok = false;
      report.error = "the load phase's connections did not close";
      return;
    }
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    const int open_now = open_descriptors();
    constexpr int kSpareDescriptors = 32;
    const long room = (static_cast<long>(limit.rlim_cur) - open_now - kSpareDescriptors) / 2;
    const std::size_t target = std::min(options.idle, static_cast<std::size_t>(std::max(room, 0L)));
    std::string why_fewer;
    if (target < options.idle) {
      why_fewer = "RLIMIT_NOFILE is " + with_commas(limit.rlim_cur) + " (hard limit " + with_commas(limit.rlim_max) +
                  "),\n      " + std::to_string(open_now) + " descriptors are open and " +
                  std::to_string(kSpareDescriptors) +
                  " are kept spare, and each loopback connection costs two descriptors\n"
                  "      in this process (the client's end and the server's)";
    }
    std::printf("\nidle: opening %s keep-alive connections...\n", with_commas(target).c_str());
    std::fflush(stdout);

    std::vector<io::TcpStream> idle;
    idle.reserve(target);  // before the baseline: what is measured is the connections
    const std::uint64_t requests_before = server.stats().requests.load();
    const std::size_t rss_before = resident_bytes();
    const Clock::time_point open_start = Clock::now();
    std::string open_error;
    {
      // A few openers at a time: connect, one request, keep the connection.
      heddle::TaskGroup openers;
      std::size_t next = 0;
      std::size_t goal = target;
      for (int k = 0; k < 32; ++k) {
        openers.spawn([&] {
          while (next < goal) {
            ++next;
            try {
              auto stream = io::TcpStream::connect(address, 5s);
              stream.set_timeout(5s);
              stream.write(get_request("/"));
              Response response;
              bool got;
              {
                ResponseReader reader(stream);
                got = reader.next(response);
              }
              if (!got || response.status != 200) throw std::runtime_error("no 200 response");
              idle.push_back(std::move(stream));
            } catch (const std::exception& e) {
              if (open_error.empty()) open_error = e.what();
              goal = next;  // stop opening
            }
          }
        });
      }
      openers.wait();
    }
    const double open_seconds = std::chrono::duration<double>(Clock::now() - open_start).count();
    const std::size_t opened = idle.size();
    // Every server task has answered; let each get back to its read.
    wait_for([&] { return server.stats().requests.load() >= requests_before + opened; }, 5s);
    heddle::sleep_for(200ms);
    const std::size_t rss_after = resident_bytes();
    const std::size_t server_open = server.stats().open.load();

    std::printf("idle: %s keep-alive connections open (asked for %s) in %.2f s; the server holds %s tasks\n",
                with_commas(opened).c_str(), with_commas(options.idle).c_str(), open_seconds,
                with_commas(server_open).c_str());
    if (!why_fewer.empty()) std::printf("      fewer than asked: %s\n", why_fewer.c_str());
    if (!open_error.empty()) std::printf("      opening stopped at an error: %s\n", open_error.c_str());
    if (opened > 0) {
      const double delta = static_cast<double>(rss_after) - static_cast<double>(rss_before);
      std::printf("memory per idle connection: %.1f KiB (resident set grew %.1f MiB for %s connections)\n",
                  delta / 1024.0 / static_cast<double>(opened), delta / (1024.0 * 1024.0),
                  with_commas(opened).c_str());
      std::printf("      both ends are in this process and counted: the server's parked connection task (the\n"
                  "      touched pages of its pooled stack, which hold its read and write buffers and parser,\n"
                  "      and its control block) and the client's socket object. Kernel socket buffers and\n"
                  "      epoll/io_uring state are kernel memory, not in the resident set.\n");
    }
    std::fflush(stdout);
    idle.clear();  // closes every client end; each server task reads the end and finishes
    if (!wait_for([&] { return server.stats().open.load() == 0; }, 10s)) {
      report.ok = false;
      report.error = "idle connections did not close on the server";
    }
  });
  loop.run();
  main_task.join();
}

}  // namespace

int run_demo(const DemoOptions& options) {
  // Room for the idle connections: the soft descriptor limit up to the hard one.
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }

  Server server;
  auto listener = io::TcpListener::bind(io::SocketAddress::loopback_ipv4());
  const io::SocketAddress address = listener.local_address();
  heddle::Event clients_done;
  ClientReport report;

  heddle::Loop loop;
  std::printf("heddle demo: an HTTP/1.1 server and its load generator over loopback\n");
  std::printf("  server: %s, one Loop on the main thread (%s), a task per connection on a %zu KiB pooled stack\n",
              address.to_string().c_str(), std::string(io::to_string(io::current_backend())).c_str(),
              server.options().stack_bytes / 1024);
  std::printf("  load:   %d keep-alive connections, each a client task of a second Loop on its own thread, "
              "%.0f s\n\n",
              options.connections, options.seconds);
  std::fflush(stdout);

  std::thread clients([&] {
    try {
      run_clients(options, address, server, report);
    } catch (const std::exception& e) {
      report.ok = false;
      report.error = e.what();
    }
    clients_done.set();
  });
  auto main_task = loop.spawn([&] {
    auto serving = heddle::spawn([&] { server.serve(listener); });
    clients_done.wait();
    serving.cancel();
    try {
      serving.join();
    } catch (const heddle::Cancelled&) {
    }
  });
  loop.run();
  main_task.join();
  clients.join();

  const ServerStats& stats = server.stats();
  const auto pool = server.stack_pool().stats();
  std::printf("stack high water of the connection tasks: %.0f KiB of %zu KiB (max over %s tasks; each task read\n"
              "      heddle::high_water of its own pool stack as it ended: resident pages, %zu-byte granularity)\n",
              static_cast<double>(stats.stack_high_water.load()) / 1024.0, server.options().stack_bytes / 1024,
              with_commas(stats.accepted.load()).c_str(), stats.stack_high_water_granularity.load());
  std::printf("      stacks made: %zu with guard pages, %zu with canaries\n", pool.guarded_created, pool.canary_created);
  std::printf("server: %s connections, %s responses, %s timed out, %s connection errors, %s accept back-offs\n",
              with_commas(stats.accepted.load()).c_str(), with_commas(stats.requests.load()).c_str(),
              with_commas(stats.timed_out.load()).c_str(), with_commas(stats.connection_errors.load()).c_str(),
              with_commas(stats.accept_backoffs.load()).c_str());
  if (!report.ok) {
    std::printf("FAILED: %s\n", report.error.c_str());
    return 1;
  }
  return 0;
}

}  // namespace http_example
