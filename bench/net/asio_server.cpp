// asio_net_peer: the Boost.Asio peer of heddle's network benchmarks.
//
//   asio_net_peer http PORT   minimal HTTP/1.1 "Hello, World!" responder
//   asio_net_peer echo PORT   echo server
//
// One io_context run by one thread (concurrency hint 1), one C++20
// coroutine (co_spawn / awaitable) per connection; listens on 127.0.0.1.
// The HTTP responder reads whatever arrives, counts the "\r\n\r\n" request
// terminators (so pipelined requests work) and writes one fixed response per
// request; it does not parse anything else. scripts/lib/net_bench.sh runs it
// pinned to one cpu and loads it with wrk or echo_load_client.
// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio.hpp>

#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;

namespace {

constexpr std::string_view kResponse =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "Hello, World!";

// Counts request terminators across reads: `matched` is how much of
// "\r\n\r\n" the bytes seen so far end with.
struct TerminatorCounter {
  int matched = 0;

  std::size_t feed(const char* data, std::size_t size) {
    std::size_t found = 0;
    for (std::size_t i = 0; i < size; ++i) {
      char c = data[i];
      if (c == '\r') {
        matched = (matched == 2) ? 3 : 1;
      } else if (c == '\n' && (matched == 1 || matched == 3)) {
        if (++matched == 4) {
          ++found;
          matched = 0;
        }
      } else {
        matched = 0;
      }
    }
    return found;
  }
};

awaitable<void> http_session(tcp::socket socket) {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  char in[4096];
  std::string out;
  TerminatorCounter counter;
  for (;;) {
    std::size_t n = co_await socket.async_read_some(asio::buffer(in),
                                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;  // EOF or reset: the client is gone
    std::size_t requests = counter.feed(in, n);
    if (requests == 0) continue;
    out.clear();
    for (std::size_t i = 0; i < requests; ++i) out.append(kResponse);
    co_await asio::async_write(socket, asio::buffer(out),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }
}

awaitable<void> echo_session(tcp::socket socket) {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  char data[4096];
  for (;;) {
    std::size_t n = co_await socket.async_read_some(asio::buffer(data),
                                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    co_await asio::async_write(socket, asio::buffer(data, n),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }
}

awaitable<void> accept_loop(tcp::acceptor& acceptor, bool http) {
  auto executor = co_await asio::this_coro::executor;
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // EMFILE and the like: report and keep accepting.
      std::fprintf(stderr, "asio_net_peer: accept: %s\n", ec.message().c_str());
      continue;
    }
    if (http) {
      asio::co_spawn(executor, http_session(std::move(socket)), asio::detached);
    } else {
      asio::co_spawn(executor, echo_session(std::move(socket)), asio::detached);
    }
  }
}

int usage() {
  std::fprintf(stderr, "usage: asio_net_peer http|echo PORT\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return usage();
  std::string_view mode = argv[1];
  if (mode != "http" && mode != "echo") return usage();
  char* end = nullptr;
  long port = std::strtol(argv[2], &end, 10);
  if (end == argv[2] || *end != '\0' || port <= 0 || port > 65535) return usage();

  try {
    asio::io_context io(1);
    tcp::acceptor acceptor(io);
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });

    asio::co_spawn(io, accept_loop(acceptor, mode == "http"), asio::detached);
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_net_peer: %s\n", e.what());
    return 1;
  }
  return 0;
}
