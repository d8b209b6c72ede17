// An HTTP/1.1 server on heddle: one task per connection, keep-alive and
// pipelining, written as blocking code (http_server.hpp says how).
//
//   http serve [--verbose] [--pool W | --threads N] [--port N]
//                           (--pool W: on a work-stealing Pool of W workers;
//                           --threads N: a Cluster of N loops, one per core,
//                           each with its own SO_REUSEPORT listener)
//                           serves on 127.0.0.1:N (default 8080) until SIGINT/SIGTERM;
//                           --verbose logs each connection error
//   http serve N            the same (benchmark harnesses pass the port last)
//   http demo [--seconds S] [--connections C] [--idle N]
//                           the server under a built-in load generator, then
//                           N idle connections: req/s, latency, memory (demo.cpp)
//   http soak [--seconds S] the server under a mixed client population (keep-alive,
//                           pipelined, slow, resetting, malformed...) for S seconds
//                           (default 600), then checked for leaks (soak.hpp)
//   http --self-test [--pool W | --threads N]  a quick functional run on an ephemeral port
#include <pthread.h>

#include <csignal>
#include <algorithm>
#include <unistd.h>
#include <memory>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "demo.hpp"
#include "heddle/heddle.hpp"
#include "heddle/io/backend.hpp"
#include "heddle/io/file.hpp"
#include "heddle/io/net.hpp"
#include "heddle/sched/cluster.hpp"
#include "heddle/sched/pool.hpp"
#include "http_client.hpp"
#include "http_server.hpp"
#include "soak.hpp"

namespace io = heddle::io;
using namespace std::chrono_literals;
using http_example::Response;
using http_example::ResponseReader;
using http_example::Server;

namespace {

void serve_until_signalled(int port, bool verbose) {
  io::SignalSet stop_signals{SIGINT, SIGTERM};
  http_example::ServerOptions options;
  options.log_connection_errors = verbose;
  Server server(options);
  auto listener = io::TcpListener::bind(io::SocketAddress::loopback_ipv4(static_cast<std::uint16_t>(port)));
  std::printf("http: serving on http://%s/ (%s); Ctrl-C stops\n", listener.local_address().to_string().c_str(),
              std::string(io::to_string(io::current_backend())).c_str());
  std::fflush(stdout);
  auto serving = heddle::spawn([&] { server.serve(listener); });
  stop_signals.wait();
  serving.cancel();  // unwinds the accept loop and every connection task
  try {
    serving.join();
  } catch (const heddle::Cancelled&) {
  }
  const auto& stats = server.stats();
  std::printf("http: %llu connections, %llu responses, %llu timed out, %llu connection errors\n",
              static_cast<unsigned long long>(stats.accepted.load()),
              static_cast<unsigned long long>(stats.requests.load()),
              static_cast<unsigned long long>(stats.timed_out.load()),
              static_cast<unsigned long long>(stats.connection_errors.load()));
}

// Keep-alive, pipelining, a 404 and a malformed request against the
// server at `address`; returns how many checks failed.
int run_client_checks(const io::SocketAddress& address) {
  int failures = 0;
  auto check = [&](bool ok, const char* what) {
    if (!ok) {
      ++failures;
      std::fprintf(stderr, "http self-test: FAILED: %s\n", what);
    }
  };
  try {
    // 50 clients, 20 keep-alive requests each.
    {
      heddle::TaskGroup clients;
      for (int c = 0; c < 50; ++c) {
        clients.spawn([&] {
          auto stream = io::TcpStream::connect(address);
          stream.set_timeout(2s);
          ResponseReader reader(stream);
          Response response;
          for (int i = 0; i < 20; ++i) {
            stream.write(http_example::get_request("/"));
            check(reader.next(response) && response.status == 200 && response.body == "Hello, World!",
                  "GET / answers 200 Hello, World!");
          }
        });
      }
      clients.wait();
    }
    // 100 pipelined requests in one write, answered in order.
    {
      auto stream = io::TcpStream::connect(address);
      stream.set_timeout(2s);
      std::string batch;
      for (int i = 0; i < 100; ++i) batch += http_example::get_request(i % 2 == 0 ? "/" : "/missing");
      stream.write(batch);
      ResponseReader reader(stream);
      Response response;
      for (int i = 0; i < 100; ++i) {
        check(reader.next(response) && response.status == (i % 2 == 0 ? 200 : 404),
              "pipelined responses come back in order");
      }
    }
    // A malformed request: 400, then the server closes.
    {
      auto stream = io::TcpStream::connect(address);
      stream.set_timeout(2s);
      stream.write("GET / HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n");  // no colon after the header name
      ResponseReader reader(stream);
      Response response;
      check(reader.next(response) && response.status == 400, "a malformed request gets 400");
      check(!reader.next(response), "the server closes after 400");
    }
  } catch (const std::exception& e) {
    ++failures;
    std::fprintf(stderr, "http self-test: FAILED: %s\n", e.what());
  }
  return failures;
}

void print_self_test(int failures, std::uint64_t requests, std::uint64_t connections, const char* where) {
  std::printf("http self-test (%s%s): %llu requests over %llu connections: %s\n",
              std::string(io::to_string(io::current_backend())).c_str(), where,
              static_cast<unsigned long long>(requests), static_cast<unsigned long long>(connections),
              failures == 0 ? "ok" : "FAILED");
}

// The self-test on one Loop, or on a Pool when called from a Pool task.
bool self_test() {
  http_example::ServerOptions options;
  options.request_timeout = 2s;
  Server server(options);
  auto listener = io::TcpListener::bind(io::SocketAddress::loopback_ipv4());
  auto serving = heddle::spawn([&] { server.serve(listener); });
  const int failures = run_client_checks(listener.local_address());
  serving.cancel();
  try {
    serving.join();
  } catch (const heddle::Cancelled&) {
  }
  print_self_test(failures, server.stats().requests.load(), server.stats().accepted.load(), "");
  return failures == 0;
}

// A Cluster of `threads` loops, each with its own Server and its own
// SO_REUSEPORT listener on one port (thread-per-core, nothing shared).
// `body(port)` runs on loop 0 once every loop listens; when it returns the
// cluster stops. Returns the servers, for their counters.
template <class Body>
std::vector<std::unique_ptr<Server>> run_cluster_servers(std::size_t threads, int port,
                                                          const http_example::ServerOptions& options, Body&& body) {
  const std::size_t cpus = static_cast<std::size_t>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  heddle::Cluster cluster({.threads = threads, .pin = threads <= cpus});
  std::vector<std::unique_ptr<Server>> servers(threads);
  std::atomic<int> chosen_port{port};
  std::atomic<std::size_t> listening{0};
  cluster.run([&](heddle::Loop&, std::size_t index) {
    if (index != 0 && port == 0) chosen_port.wait(0);  // loop 0 picks an ephemeral port first
    servers[index] = std::make_unique<Server>(options);
    auto listener = io::TcpListener::bind(
        io::SocketAddress::loopback_ipv4(static_cast<std::uint16_t>(chosen_port.load())), {.reuse_port = true});
    if (index == 0 && port == 0) {
      chosen_port.store(listener.local_address().port());
      chosen_port.notify_all();
    }
    ++listening;
    auto serving = heddle::spawn([&] { servers[index]->serve(listener); });
    if (index == 0) {
      while (listening.load() != threads) heddle::sleep_for(1ms);
      body(chosen_port.load());
      cluster.stop();  // every loop's tasks are cancelled and unwind
    }
    serving.join();
  });
  return servers;
}

std::uint64_t total(const std::vector<std::unique_ptr<Server>>& servers,
                    std::atomic<std::uint64_t> http_example::ServerStats::*counter) {
  std::uint64_t sum = 0;
  for (const auto& server : servers) {
    if (server) sum += (server->stats().*counter).load();
  }
  return sum;
}

bool self_test_cluster(std::size_t threads) {
  http_example::ServerOptions options;
  options.request_timeout = 2s;
  int failures = 0;
  auto servers = run_cluster_servers(threads, 0, options, [&](int port) {
    failures = run_client_checks(io::SocketAddress::loopback_ipv4(static_cast<std::uint16_t>(port)));
  });
  std::size_t serving = 0;
  for (const auto& server : servers) serving += server && server->stats().accepted.load() != 0;
  std::printf("http self-test: %zu of %zu loops accepted connections\n", serving, threads);
  const std::string where = ", cluster of " + std::to_string(threads);
  print_self_test(failures, total(servers, &http_example::ServerStats::requests),
                  total(servers, &http_example::ServerStats::accepted), where.c_str());
  return failures == 0;
}

void serve_cluster_until_signalled(int port, std::size_t threads, bool verbose) {
  http_example::ServerOptions options;
  options.log_connection_errors = verbose;
  auto servers = run_cluster_servers(threads, port, options, [&](int chosen) {
    std::printf("http: serving on http://127.0.0.1:%d/ with %zu loops (%s, SO_REUSEPORT); Ctrl-C stops\n", chosen,
                threads, std::string(io::to_string(io::current_backend())).c_str());
    std::fflush(stdout);
    io::SignalSet stop_signals{SIGINT, SIGTERM};
    stop_signals.wait();
  });
  std::printf("http: %llu connections, %llu responses over %zu loops\n",
              static_cast<unsigned long long>(total(servers, &http_example::ServerStats::accepted)),
              static_cast<unsigned long long>(total(servers, &http_example::ServerStats::requests)), threads);
}

int usage() {
  std::fprintf(stderr,
               "usage: http serve [--verbose] [--pool WORKERS | --threads LOOPS] [--port N | N]\n"
               "       http demo [--seconds S] [--connections C] [--idle N]\n"
               "       http soak [--seconds S]\n"
               "       http --self-test [--pool WORKERS | --threads LOOPS]\n");
  return 2;
}

// A whole number in [low, high], or -1.
long number(const char* text, long low, long high) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (!end || end == text || *end != '\0' || value < low || value > high) return -1;
  return value;
}

}  // namespace

int run(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string mode = argv[1];

  if (mode == "demo") {
    http_example::DemoOptions options;
    for (int i = 2; i < argc; ++i) {
      const std::string flag = argv[i];
      if (i + 1 >= argc) return usage();
      const char* value = argv[++i];
      if (flag == "--seconds") {
        const long seconds = number(value, 1, 3600);
        if (seconds < 0) return usage();
        options.seconds = static_cast<double>(seconds);
      } else if (flag == "--connections") {
        const long connections = number(value, 1, 100'000);
        if (connections < 0) return usage();
        options.connections = static_cast<int>(connections);
      } else if (flag == "--idle") {
        const long idle = number(value, 0, 10'000'000);
        if (idle < 0) return usage();
        options.idle = static_cast<std::size_t>(idle);
      } else {
        return usage();
      }
    }
    return http_example::run_demo(options);
  }

  if (mode == "soak") {
    http_example::SoakOptions options;
    for (int i = 2; i < argc; ++i) {
      if (std::strcmp(argv[i], "--seconds") != 0 || i + 1 >= argc) return usage();
      const long seconds = number(argv[++i], 1, 7 * 24 * 3600);
      if (seconds < 0) return usage();
      options.seconds = static_cast<double>(seconds);
    }
    return http_example::run_soak(options);
  }

  int port = 8080;
  bool test = false;
  bool verbose = false;
  long pool_workers = 0;     // --pool W: a work-stealing Pool of W workers
  long cluster_threads = 0;  // --threads N: a Cluster of N loops (thread-per-core)
  // Parses "--pool W" / "--threads N" at argv[i]; false if it is neither.
  auto threading_option = [&](int& i) {
    long* target = std::strcmp(argv[i], "--pool") == 0      ? &pool_workers
                   : std::strcmp(argv[i], "--threads") == 0 ? &cluster_threads
                                                            : nullptr;
    if (!target || i + 1 >= argc) return false;
    *target = number(argv[++i], 1, 1024);
    return *target > 0;
  };
  if (mode == "--self-test") {
    test = true;
    for (int i = 2; i < argc; ++i) {
      if (!threading_option(i)) return usage();
    }
  } else if (mode == "serve") {
    for (int i = 2; i < argc; ++i) {
      const char* text = argv[i];
      if (std::strcmp(text, "--verbose") == 0) {
        verbose = true;
        continue;
      }
      if (std::strcmp(text, "--pool") == 0 || std::strcmp(text, "--threads") == 0) {
        if (!threading_option(i)) return usage();
        continue;
      }
      if (std::strcmp(text, "--port") == 0 && i + 1 < argc) text = argv[++i];
      port = static_cast<int>(number(text, 0, 65535));
      if (port < 0) return usage();
    }
  } else {
    return usage();
  }
  if (pool_workers > 0 && cluster_threads > 0) return usage();

  if (pool_workers > 0 || cluster_threads > 0) {
    // SIGINT and SIGTERM are blocked before any other thread starts, so
    // that every thread inherits the mask and the signals reach the
    // SignalSet that waits for them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  }
  if (cluster_threads > 0) {
    const auto threads = static_cast<std::size_t>(cluster_threads);
    if (test) return self_test_cluster(threads) ? 0 : 1;
    serve_cluster_until_signalled(port, threads, verbose);
    return 0;
  }
  if (pool_workers > 0) {
    // The server on a work-stealing Pool: connection tasks run on any worker.
    heddle::Pool pool(static_cast<std::size_t>(pool_workers));
    return pool.run([&] {
      if (test) return self_test() ? 0 : 1;
      serve_until_signalled(port, verbose);
      return 0;
    });
  }
  heddle::Loop loop;
  int status = 0;
  auto main_task = loop.spawn([&] {
    if (test) {
      status = self_test() ? 0 : 1;
    } else {
      serve_until_signalled(port, verbose);
    }
  });
  loop.run();
  main_task.join();
  return status;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {  // e.g. the port is taken: say so instead of aborting
    std::fprintf(stderr, "http: %s\n", error.what());
    return 1;
  }
}
