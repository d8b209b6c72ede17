// An HTTP/1.1 server on heddle: one task per connection, keep-alive and
// pipelining, written as blocking code (http_server.hpp says how).
//
//   http serve [--verbose] [--pool W] [--port N]
//                           (--pool W: on a work-stealing Pool of W workers)
//                           serves on 127.0.0.1:N (default 8080) until SIGINT/SIGTERM;
//                           --verbose logs each connection error
//   http serve N            the same (benchmark harnesses pass the port last)
//   http demo [--seconds S] [--connections C] [--idle N]
//                           the server under a built-in load generator, then
//                           N idle connections: req/s, latency, memory (demo.cpp)
//   http soak [--seconds S] the server under a mixed client population (keep-alive,
//                           pipelined, slow, resetting, malformed...) for S seconds
//                           (default 600), then checked for leaks (soak.hpp)
//   http --self-test [--pool W]  a quick functional run on an ephemeral port
#include <pthread.h>

#include <csignal>
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

// Keep-alive, pipelining, a 404 and a malformed request, on one Loop.
bool self_test() {
  http_example::ServerOptions options;
  options.request_timeout = 2s;
  Server server(options);
  auto listener = io::TcpListener::bind(io::SocketAddress::loopback_ipv4());
  const io::SocketAddress address = listener.local_address();
  auto serving = heddle::spawn([&] { server.serve(listener); });
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
  serving.cancel();
  try {
    serving.join();
  } catch (const heddle::Cancelled&) {
  }
  std::printf("http self-test (%s): %llu requests over %llu connections: %s\n",
              std::string(io::to_string(io::current_backend())).c_str(),
              static_cast<unsigned long long>(server.stats().requests.load()),
              static_cast<unsigned long long>(server.stats().accepted.load()), failures == 0 ? "ok" : "FAILED");
  return failures == 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: http serve [--verbose] [--pool WORKERS] [--port N | N]\n"
               "       http demo [--seconds S] [--connections C] [--idle N]\n"
               "       http soak [--seconds S]\n"
               "       http --self-test [--pool WORKERS]\n");
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
  long pool_workers = 0;  // 0: one Loop on this thread
  if (mode == "--self-test") {
    test = true;
    if (argc == 4 && std::strcmp(argv[2], "--pool") == 0) {
      pool_workers = number(argv[3], 1, 1024);
      if (pool_workers < 0) return usage();
    } else if (argc != 2) {
      return usage();
    }
  } else if (mode == "serve") {
    for (int i = 2; i < argc; ++i) {
      const char* text = argv[i];
      if (std::strcmp(text, "--verbose") == 0) {
        verbose = true;
        continue;
      }
      if (std::strcmp(text, "--pool") == 0 && i + 1 < argc) {
        pool_workers = number(argv[++i], 1, 1024);
        if (pool_workers < 0) return usage();
        continue;
      }
      if (std::strcmp(text, "--port") == 0 && i + 1 < argc) text = argv[++i];
      port = static_cast<int>(number(text, 0, 65535));
      if (port < 0) return usage();
    }
  } else {
    return usage();
  }

  if (pool_workers > 0) {
    // The server on a work-stealing Pool: connection tasks run on any worker.
    // SIGINT and SIGTERM are blocked before the workers start, so that they
    // inherit the mask and the signals reach serve's SignalSet.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
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
