// The HTTP example server (examples/http) on each backend, driven by raw
// client tasks: exact responses, keep-alive, pipelining, bad and oversized
// requests, slow and idle clients, clients that reset, running out of
// descriptors, and no descriptor left open afterwards.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/io/net.hpp"
#include "http_client.hpp"
#include "http_server.hpp"
#include "io_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using heddle::io::SocketAddress;
using heddle::io::TcpListener;
using heddle::io::TcpStream;
using heddle::test::run_in_loop;
using http_example::get_request;
using http_example::Response;
using http_example::ResponseReader;
using http_example::Server;
using http_example::ServerOptions;

constexpr auto kRequestTimeout = 200ms;
constexpr std::string_view kHelloResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

// The exact replies the tests expect, beside kHelloResponse.
constexpr std::string_view kHelloHead = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n";
constexpr std::string_view kNotFoundHead =
    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n";
constexpr std::string_view kNotFoundResponse =
    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nNot Found\n";
constexpr std::string_view kBadRequestResponse =
    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
    "Bad Request\n";
constexpr std::string_view kVersionNotSupportedResponse =
    "HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain\r\nContent-Length: 27\r\n"
    "Connection: close\r\n\r\nHTTP Version Not Supported\n";

using Http = heddle::test::NoDescriptorLeak;

ServerOptions test_options() {
  ServerOptions options;
  options.request_timeout = kRequestTimeout;
  return options;
}

// Polls `done` until it holds or `timeout` passes.
template <class F>
bool eventually(F done, Clock::duration timeout = 2s) {
  const Clock::time_point until = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= until) return false;
    heddle::sleep_for(1ms);
  }
  return true;
}

heddle::Task<void> start_serving(Server& server, TcpListener& listener) {
  return heddle::spawn([&] { server.serve(listener); });
}

void stop(heddle::Task<void>& serving) {
  serving.cancel();
  try {
    serving.join();
  } catch (const heddle::Cancelled&) {
  }
}

// Runs body(address, server) in a Loop task beside a server on an ephemeral
// loopback port; then stops the server and checks that every connection
// task gave its stack back.
template <class F>
void with_server(F body, ServerOptions options = test_options()) {
  run_in_loop([&] {
    Server server(options);
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
    const SocketAddress address = listener.local_address();
    auto serving = start_serving(server, listener);
    try {
      body(address, server);
    } catch (...) {
      stop(serving);
      throw;
    }
    stop(serving);
    EXPECT_EQ(server.stack_pool().stats().live, 0u) << "a connection task kept its stack";
    EXPECT_EQ(server.stats().open.load(), 0u);
  });
}

TcpStream connect(const SocketAddress& address) {
  auto stream = TcpStream::connect(address, 2s);
  stream.set_timeout(2s);  // a test that goes wrong fails instead of hanging
  return stream;
}

// Reads until the server closes; returns what it sent.
std::string read_to_end(TcpStream& stream) {
  std::string all;
  char buffer[4096];
  while (const std::size_t n = stream.read(buffer, sizeof buffer)) all.append(buffer, n);
  return all;
}

// Reads `size` bytes, or fewer if the server closes first.
std::string read_exactly(TcpStream& stream, std::size_t size) {
  std::string bytes(size, '\0');
  bytes.resize(stream.read_full(bytes.data(), size));
  return bytes;
}

// True when the server closed the connection: a read returns 0 or is reset.
bool closed_by_server(TcpStream& stream) {
  char buffer[256];
  try {
    while (stream.read(buffer, sizeof buffer) != 0) {
    }
    return true;
  } catch (const std::system_error& e) {
    return e.code().value() == ECONNRESET;
  }
}

TEST_F(Http, GetRootAnswersHelloWorldExactly) {
  with_server([](const SocketAddress& address, Server& server) {
    auto stream = connect(address);
    stream.write(get_request("/"));
    std::string response(kHelloResponse.size(), '\0');
    ASSERT_EQ(stream.read_full(response.data(), response.size()), kHelloResponse.size());
    EXPECT_EQ(response, kHelloResponse);
    // Nothing more: the response is exactly that.
    stream.shutdown_write();
    EXPECT_EQ(read_to_end(stream), "");
    EXPECT_TRUE(eventually([&] { return server.stats().open.load() == 0; }));
    EXPECT_EQ(server.stats().requests.load(), 1u);
  });
}

TEST_F(Http, OtherPathsAndMethodsAnswer404) {
  with_server([](const SocketAddress& address, Server&) {
    auto stream = connect(address);
    ResponseReader reader(stream);
    Response response;
    stream.write(get_request("/index.html"));
    ASSERT_TRUE(reader.next(response));
    EXPECT_EQ(response.status, 404);
    stream.write("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    ASSERT_TRUE(reader.next(response));
    EXPECT_EQ(response.status, 404);
    stream.write(get_request("/?query=1"));  // the path is still "/"
    ASSERT_TRUE(reader.next(response));
    EXPECT_EQ(response.status, 200);
  });
}

// HEAD gets GET's status and headers, Content-Length included, and no
// body: the GET pipelined behind each HEAD is answered right after its head.
TEST_F(Http, HeadAnswersLikeGetWithoutTheBody) {
  with_server([](const SocketAddress& address, Server& server) {
    auto stream = connect(address);
    stream.write("HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + get_request("/") +
                 "HEAD /missing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + get_request("/missing"));
    std::string expected;
    for (const std::string_view response : {kHelloHead, kHelloResponse, kNotFoundHead, kNotFoundResponse}) {
      expected += response;
    }
    EXPECT_EQ(read_exactly(stream, expected.size()), expected);
    stream.shutdown_write();
    EXPECT_EQ(read_to_end(stream), "") << "a HEAD response carried a body";
    EXPECT_TRUE(eventually([&] { return server.stats().open.load() == 0; }));
    EXPECT_EQ(server.stats().requests.load(), 4u);
    EXPECT_EQ(server.stats().head_responses.load(), 2u);
  });
}

// RFC 9112 section 3.2.2: a server accepts the absolute form and serves it by
// its path; an empty path is "/".
TEST_F(Http, AnAbsoluteFormTargetIsServedByItsPath) {
  with_server([](const SocketAddress& address, Server&) {
    auto stream = connect(address);
    for (const char* target : {"http://127.0.0.1/", "http://127.0.0.1", "http://127.0.0.1?x=1",
                               "http://127.0.0.1:8080/?x=1", "HTTP://user@EXAMPLE.COM/"}) {
      stream.write(std::string("GET ") + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      ASSERT_EQ(read_exactly(stream, kHelloResponse.size()), kHelloResponse) << target;
    }
    for (const char* target : {"http://127.0.0.1/missing", "http://127.0.0.1//", "http://127.0.0.1/x/"}) {
      stream.write(std::string("GET ") + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      ASSERT_EQ(read_exactly(stream, kNotFoundResponse.size()), kNotFoundResponse) << target;
    }
  });
}

TEST_F(Http, KeepAliveServesThreeRequestsOnOneConnection) {
  with_server([](const SocketAddress& address, Server& server) {
    auto stream = connect(address);
    ResponseReader reader(stream);
    Response response;
    for (int i = 0; i < 3; ++i) {
      stream.write(get_request("/"));
      ASSERT_TRUE(reader.next(response)) << "request " << i;
      EXPECT_EQ(response.status, 200);
      EXPECT_EQ(response.body, "Hello, World!");
      EXPECT_TRUE(response.keep_alive);
    }
    EXPECT_EQ(server.stats().accepted.load(), 1u);
    EXPECT_EQ(server.stats().requests.load(), 3u);
  });
}

TEST_F(Http, PipelinedRequestsAreAnsweredInOrder) {
  with_server([](const SocketAddress& address, Server&) {
    auto stream = connect(address);
    stream.write(get_request("/") + get_request("/missing") + get_request("/"));
    ResponseReader reader(stream);
    Response response;
    for (const int status : {200, 404, 200}) {
      ASSERT_TRUE(reader.next(response));
      EXPECT_EQ(response.status, status);
    }
  });
}

TEST_F(Http, ALongPipelinedBatchOutgrowsTheOutputBufferAndStaysInOrder) {
  with_server([](const SocketAddress& address, Server&) {
    auto stream = connect(address);
    constexpr int kRequests = 1000;
    std::string batch;
    for (int i = 0; i < kRequests; ++i) batch += get_request(i % 3 == 0 ? "/nope" : "/");
    auto writer = heddle::spawn([&] { stream.write(batch); });  // beside the reads: both buffers fill up
    ResponseReader reader(stream);
    Response response;
    for (int i = 0; i < kRequests; ++i) {
      ASSERT_TRUE(reader.next(response)) << "response " << i;
      ASSERT_EQ(response.status, i % 3 == 0 ? 404 : 200) << "response " << i;
    }
    writer.join();
  });
}

TEST_F(Http, ConnectionCloseIsHonoured) {
  with_server([](const SocketAddress& address, Server&) {
    auto stream = connect(address);
    // A request pipelined behind the closing one is ignored.
    stream.write("GET / HTTP/1.1\r\nConnection: close\r\n\r\n" + get_request("/"));
    ResponseReader reader(stream);
    Response response;
    ASSERT_TRUE(reader.next(response));
    EXPECT_EQ(response.status, 200);
    EXPECT_FALSE(response.keep_alive);
    EXPECT_FALSE(reader.next(response)) << "the server kept the connection open";
  });
}

TEST_F(Http, MalformedRequestGets400AndTheConnectionIsClosed) {
  with_server([](const SocketAddress& address, Server& server) {
    auto stream = connect(address);
    stream.write("GET / HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n");  // no colon after the header name
    ResponseReader reader(stream);
    Response response;
    ASSERT_TRUE(reader.next(response));
    EXPECT_EQ(response.status, 400);
    EXPECT_FALSE(response.keep_alive);
    EXPECT_FALSE(reader.next(response)) << "the server kept the connection open";
    EXPECT_EQ(server.stats().bad_requests.load(), 1u);
  });
}

// RFC 9112 section 5.1: no whitespace is allowed between a field name and
// its colon, and a server must answer such a request 400. A field name is a
// token, so a space inside one is as bad.
TEST_F(Http, WhitespaceInAFieldNameGets400AndTheConnectionIsClosed) {
  with_server([](const SocketAddress& address, Server& server) {
    for (const char* field : {"Host : 127.0.0.1", "Host  :127.0.0.1", "X-Ho st: a"}) {
      auto stream = connect(address);
      stream.write(std::string("GET / HTTP/1.1\r\n") + field + "\r\n\r\n");
      EXPECT_EQ(read_exactly(stream, kBadRequestResponse.size()), kBadRequestResponse) << field;
      EXPECT_TRUE(closed_by_server(stream)) << field;
    }
    // Refused after its method was read: an answer to HEAD has no body.
    auto stream = connect(address);
    stream.write("HEAD / HTTP/1.1\r\nHost : 127.0.0.1\r\n\r\n");
    const std::string_view head = kBadRequestResponse.substr(0, kBadRequestResponse.find("\r\n\r\n") + 4);
    EXPECT_EQ(read_to_end(stream), head);
    EXPECT_EQ(server.stats().bad_requests.load(), 4u);
  });
}

// The server speaks HTTP/1.0 and HTTP/1.1; any other version in a
// well-formed request line is answered 505, and the connection closed.
TEST_F(Http, VersionsOtherThan10And11Get505AndTheConnectionIsClosed) {
  with_server([](const SocketAddress& address, Server& server) {
    for (const char* version : {"HTTP/9.9", "HTTP/2.0", "HTTP/0.9", "HTTP/1.2"}) {
      auto stream = connect(address);
      stream.write(std::string("GET / ") + version + "\r\nHost: 127.0.0.1\r\n\r\n" + get_request("/"));
      EXPECT_EQ(read_exactly(stream, kVersionNotSupportedResponse.size()), kVersionNotSupportedResponse) << version;
      EXPECT_TRUE(closed_by_server(stream)) << version << ": the request pipelined behind it was served";
    }
    EXPECT_EQ(server.stats().unsupported_versions.load(), 4u);
    // HTTP/1.0 is served (and closed: it did not ask for keep-alive).
    auto stream = connect(address);
    stream.write("GET / HTTP/1.0\r\n\r\n");
    constexpr std::string_view kHello10 =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\n"
        "Hello, World!";
    EXPECT_EQ(read_exactly(stream, kHello10.size()), kHello10);
    EXPECT_TRUE(closed_by_server(stream));
  });
}

// "GET /" and a line end, with no version (HTTP/0.9's request line), is
// not an HTTP/1.x request: 400 at once, not silence until the request
// timeout while the server waits for headers. The line end may arrive in a
// later read than the target. connect() gives the client a 2 s read
// timeout, so a server that waits for its request timeout (10 s here)
// fails the read.
TEST_F(Http, ARequestLineWithoutAVersionGets400AtOnce) {
  ServerOptions options = test_options();
  options.request_timeout = 10s;  // the default: far longer than an answer "at once" may take
  with_server(
      [](const SocketAddress& address, Server& server) {
        const std::vector<std::vector<std::string>> requests = {{"GET /\r\n"}, {"GET /\n"}, {"GET /", "\r\n"}};
        for (const auto& pieces : requests) {
          auto stream = connect(address);
          for (const std::string& piece : pieces) {
            stream.write(piece);
            heddle::sleep_for(20ms);  // each piece is a read of its own
          }
          EXPECT_EQ(read_exactly(stream, kBadRequestResponse.size()), kBadRequestResponse);
          EXPECT_TRUE(closed_by_server(stream));
        }
        EXPECT_EQ(server.stats().bad_requests.load(), 3u);
        EXPECT_EQ(server.stats().timed_out.load(), 0u);
      },
      options);
}

TEST_F(Http, HeaderSectionOver8KiBGets431AndTheConnectionIsClosed) {
  with_server([](const SocketAddress& address, Server& server) {
    // Just under the limit is fine.
    {
      auto stream = connect(address);
      stream.write("GET / HTTP/1.1\r\nX-Filler: " + std::string(7 * 1024, 'a') + "\r\n\r\n");
      ResponseReader reader(stream);
      Response response;
      ASSERT_TRUE(reader.next(response));
      EXPECT_EQ(response.status, 200);
    }
    auto stream = connect(address);
    stream.write("GET / HTTP/1.1\r\nX-Filler: " + std::string(16 * 1024, 'a') + "\r\n\r\n");
    ResponseReader reader(stream);
    Response response;
    ASSERT_TRUE(reader.next(response));
    EXPECT_EQ(response.status, 431);
    EXPECT_FALSE(response.keep_alive);
    EXPECT_FALSE(reader.next(response)) << "the server kept the connection open";
    EXPECT_EQ(server.stats().headers_too_large.load(), 1u);
  });
}

TEST_F(Http, SlowlorisHalfARequestIsDisconnectedAfterTheTimeout) {
  with_server([](const SocketAddress& address, Server& server) {
    auto stream = connect(address);
    const Clock::time_point start = Clock::now();
    stream.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow:");  // and then nothing
    EXPECT_TRUE(closed_by_server(stream));
    const auto waited = Clock::now() - start;
    EXPECT_GE(waited, kRequestTimeout / 2);
    EXPECT_LT(waited, kRequestTimeout + 800ms);
    EXPECT_TRUE(eventually([&] { return server.stats().timed_out.load() == 1; }));
  });
}

TEST_F(Http, ATricklingClientIsDisconnectedAlthoughBytesKeepComing) {
  with_server([](const SocketAddress& address, Server&) {
    auto stream = connect(address);
    const Clock::time_point start = Clock::now();
    bool closed = false;
    auto trickle = heddle::spawn([&] {
      const std::string request = "GET / HTTP/1.1\r\nX-Slow: " + std::string(1000, 'a');
      try {
        for (char byte : request) {
          stream.write(&byte, 1);
          heddle::sleep_for(20ms);
        }
      } catch (const std::system_error&) {
        closed = true;  // EPIPE/ECONNRESET: the server hung up
      }
    });
    char buffer[64];
    try {
      EXPECT_EQ(stream.read(buffer, sizeof buffer), 0u);
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNRESET);
    }
    const auto waited = Clock::now() - start;
    EXPECT_LT(waited, kRequestTimeout + 800ms);
    trickle.cancel();
    try {
      trickle.join();
    } catch (const heddle::Cancelled&) {
    }
    (void)closed;
  });
}

TEST_F(Http, AnIdleKeepAliveConnectionIsClosedAfterTheTimeout) {
  with_server([](const SocketAddress& address, Server& server) {
    auto stream = connect(address);
    ResponseReader reader(stream);
    Response response;
    stream.write(get_request("/"));
    ASSERT_TRUE(reader.next(response));
    const Clock::time_point start = Clock::now();
    EXPECT_FALSE(reader.next(response));  // the end of the stream, no response
    const auto waited = Clock::now() - start;
    EXPECT_GE(waited, kRequestTimeout / 2);
    EXPECT_LT(waited, kRequestTimeout + 800ms);
    EXPECT_TRUE(eventually([&] { return server.stats().timed_out.load() == 1; }));
  });
}

// Logging formats on the connection task's small stack; it must fit.
TEST_F(Http, LoggedConnectionErrorsFitOnTheConnectionStack) {
  ServerOptions options = test_options();
  options.log_connection_errors = true;
  with_server(
      [](const SocketAddress& address, Server& server) {
        auto bad = connect(address);
        bad.write("BAD REQUEST\r\n\r\n");
        auto slow = connect(address);
        slow.write("GET / HTTP/1.1\r\n");
        EXPECT_TRUE(closed_by_server(bad));
        EXPECT_TRUE(closed_by_server(slow));
        EXPECT_TRUE(eventually([&] { return server.stats().open.load() == 0; }));
        EXPECT_EQ(server.stats().bad_requests.load(), 1u);
        EXPECT_EQ(server.stats().timed_out.load(), 1u);
      },
      options);
}

void reset_on_close(TcpStream& stream) {
  const linger abort_on_close{1, 0};
  ASSERT_EQ(::setsockopt(stream.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close), 0);
  stream.close();  // sends RST
}

TEST_F(Http, AClientThatResetsMidResponseEndsOnlyItsOwnConnection) {
  with_server([](const SocketAddress& address, Server& server) {
    {
      auto stream = connect(address);
      // Far more responses than the socket buffers hold: the server ends up
      // parked in a write that the client never reads.
      std::string batch;
      for (int i = 0; i < 20000; ++i) batch += "GET / HTTP/1.1\r\n\r\n";
      auto writer = heddle::spawn([&] {
        try {
          stream.write(batch);
        } catch (const std::system_error&) {
        }
      });
      ASSERT_TRUE(eventually([&] { return server.stats().requests.load() > 1000; }));
      std::uint64_t seen = 0;
      ASSERT_TRUE(eventually([&] {  // stalled: no response produced for 20 ms
        const std::uint64_t now = server.stats().requests.load();
        if (now != seen) {
          seen = now;
          heddle::sleep_for(20ms);
          return false;
        }
        return true;
      }));
      writer.cancel();  // parked in its write too; gone before the descriptor is closed
      try {
        writer.join();
      } catch (const heddle::Cancelled&) {
      }
      reset_on_close(stream);
    }
    EXPECT_TRUE(eventually([&] { return server.stats().open.load() == 0; }));
    EXPECT_EQ(server.stats().connection_errors.load(), 1u);
    // The server still serves.
    auto next = connect(address);
    next.write(get_request("/"));
    ResponseReader reader(next);
    Response response;
    ASSERT_TRUE(reader.next(response));
    EXPECT_EQ(response.status, 200);
  });
}

// Lowers the soft RLIMIT_NOFILE to just above the highest open descriptor
// and fills every free number below it, so that the next descriptor anyone
// asks for fails with EMFILE. The destructor restores both, on every path.
class DescriptorsExhausted {
 public:
  DescriptorsExhausted() {
    if (::getrlimit(RLIMIT_NOFILE, &saved_) != 0) throw std::system_error(errno, std::system_category(), "getrlimit");
    int highest = -1;
    for (int fd = 0; fd < 65536 && fd < static_cast<int>(saved_.rlim_cur); ++fd) {
      if (::fcntl(fd, F_GETFD) >= 0) highest = fd;
    }
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(highest + 1);
    if (::setrlimit(RLIMIT_NOFILE, &lowered) != 0) throw std::system_error(errno, std::system_category(), "setrlimit");
    for (;;) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;  // EMFILE: every number below the limit is taken
      fillers_.push_back(fd);
    }
  }
  ~DescriptorsExhausted() {
    ::setrlimit(RLIMIT_NOFILE, &saved_);
    for (const int fd : fillers_) ::close(fd);
  }
  DescriptorsExhausted(const DescriptorsExhausted&) = delete;
  DescriptorsExhausted& operator=(const DescriptorsExhausted&) = delete;

 private:
  rlimit saved_{};
  std::vector<int> fillers_;
};

// UBSan's vptr check of a (type, vtable) pair it has not seen yet reads the
// vtable through a pipe it creates, which fails (and is reported as a bad
// vptr) while no descriptor is free. So the pairs the server meets during
// the exhaustion are met once before it: the serving task's frame, and a
// caught std::system_error.
void meet_the_types_of_the_backoff_path() {
  {
    Server server(test_options());
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
    auto serving = start_serving(server, listener);
    stop(serving);
  }
  SocketAddress closed;
  {
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
    closed = listener.local_address();
  }
  try {
    TcpStream::connect(closed);
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNREFUSED) << e.what();
  }
}

TEST_F(Http, OutOfDescriptorsTheAcceptLoopBacksOffAndRecovers) {
  run_in_loop([] {
    meet_the_types_of_the_backoff_path();
    Server server(test_options());
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
    const SocketAddress address = listener.local_address();
    // Connected before the server accepts: the kernel finishes the
    // handshakes and queues the connections on the listener.
    std::vector<TcpStream> clients;
    for (int i = 0; i < 3; ++i) clients.push_back(connect(address));
    heddle::Task<void> serving;
    {
      DescriptorsExhausted exhausted;
      serving = start_serving(server, listener);  // accept: EMFILE
      heddle::sleep_for(60ms);
      EXPECT_GE(server.stats().accept_backoffs.load(), 2u);
      EXPECT_EQ(server.stats().accepted.load(), 0u);
    }
    // Descriptors are back: the queued clients are served, and a new one.
    try {
      for (auto& client : clients) {
        client.write(get_request("/"));
        ResponseReader reader(client);
        Response response;
        ASSERT_TRUE(reader.next(response));
        EXPECT_EQ(response.status, 200);
      }
      auto late = connect(address);
      late.write(get_request("/"));
      ResponseReader reader(late);
      Response response;
      ASSERT_TRUE(reader.next(response));
      EXPECT_EQ(response.status, 200);
      EXPECT_EQ(server.stats().accepted.load(), 4u);
    } catch (...) {
      stop(serving);
      throw;
    }
    stop(serving);
  });
}

#if HEDDLE_FAULT_INJECTION
// Injected faults (heddle/sys/fault.hpp). ENFILE is the system-wide
// table running out, which no rlimit can cause: the accept loop backs off
// as for EMFILE, and every client is served.
TEST_F(Http, InjectedAcceptFailuresAreBackedOffAndEveryClientServed) {
  with_server([](const SocketAddress& address, Server& server) {
    auto ask = [&](TcpStream& stream) {
      stream.write(get_request("/"));
      ResponseReader reader(stream);
      Response response;
      ASSERT_TRUE(reader.next(response));
      EXPECT_EQ(response.status, 200);
    };
    // The accept in flight gets this one; the three after it fail.
    heddle::fault::Injection table_full(heddle::fault::Site::accept, {.error = ENFILE, .times = 3});
    auto first = connect(address);
    ask(first);
    auto second = connect(address);
    ask(second);
    EXPECT_EQ(server.stats().accept_backoffs.load(), 3u);
    EXPECT_EQ(server.stats().accepted.load(), 2u);
  });
}

// Every read and write moves a few bytes: requests split anywhere, and
// responses too. Pipelined requests are still answered exactly, in order.
TEST_F(Http, ShortReadsAndWritesStillAnswerPipelinedRequestsInOrder) {
  with_server([](const SocketAddress& address, Server& server) {
    using heddle::fault::Site;
    heddle::fault::Injection short_reads(Site::socket_read, {.short_length = 3, .times = heddle::fault::kAlways});
    heddle::fault::Injection short_writes(Site::socket_write, {.short_length = 4, .times = heddle::fault::kAlways});
    auto stream = connect(address);
    std::string batch;
    for (int i = 0; i < 6; ++i) batch += get_request(i % 2 == 0 ? "/" : "/missing");
    stream.write(batch);
    ResponseReader reader(stream);
    for (int i = 0; i < 6; ++i) {
      Response response;
      ASSERT_TRUE(reader.next(response)) << "response " << i;
      EXPECT_EQ(response.status, i % 2 == 0 ? 200 : 404) << "response " << i;
    }
    EXPECT_EQ(server.stats().requests.load(), 6u);
  });
}
#endif

TEST_F(Http, NoDescriptorLeaksWhicheverWayConnectionsEnd) {
  with_server([](const SocketAddress& address, Server& server) {
    const int before = heddle::test::open_descriptor_count();
    heddle::TaskGroup clients;
    for (int i = 0; i < 40; ++i) {
      clients.spawn([&, i] {
        auto stream = connect(address);
        ResponseReader reader(stream);
        Response response;
        switch (i % 5) {
          case 0:  // a request, then a clean close
            stream.write(get_request("/"));
            ASSERT_TRUE(reader.next(response));
            break;
          case 1:  // closes in the middle of a request
            stream.write("GET / HTTP/1.1\r\nHo");
            break;
          case 2:  // malformed: 400, closed by the server
            stream.write("NOT HTTP AT ALL\r\n\r\n");
            ASSERT_TRUE(reader.next(response));
            EXPECT_EQ(response.status, 400);
            break;
          case 3:  // a request, then a reset
            stream.write(get_request("/"));
            ASSERT_TRUE(reader.next(response));
            reset_on_close(stream);
            break;
          case 4:  // pipelined requests, closed without reading the responses
            stream.write(get_request("/") + get_request("/") + get_request("/"));
            break;
        }
      });
    }
    clients.wait();
    ASSERT_TRUE(eventually([&] { return server.stats().open.load() == 0; }));
    EXPECT_EQ(heddle::test::open_descriptor_count(), before);
    EXPECT_EQ(server.stats().accepted.load(), 40u);
    // Each connection task stayed within its stack with a page to spare.
    EXPECT_GT(server.stats().stack_high_water.load(), 0u);
    EXPECT_LE(server.stats().stack_high_water.load(), server.options().stack_bytes - 4096);
  });
}

}  // namespace
