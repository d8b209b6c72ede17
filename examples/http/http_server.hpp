// heddle example: a small HTTP/1.1 server, one task per connection.
//
// Owns: the accept loop (Server::serve) and the connection tasks it spawns
// into a TaskGroup. Each connection task reads into a 4 KiB buffer on its
// own stack, feeds every byte to http-parser (nodejs http-parser 2.9), and
// answers each complete request by appending a response to an output buffer
// (also on its stack); the batch goes out in one write before the next
// read, so pipelined requests cost one write per read. Routes: `GET /`
// answers 200 "Hello, World!", everything else 404; HEAD answers as GET
// would, without the body. A target is routed by its path, in origin form
// ("/") or absolute form ("http://host/", "http://host").
//
// What a connection can do wrong, and what the server does:
//   malformed request            400 Bad Request, then close (this includes
//                                whitespace in a field name and a request
//                                line without a version)
//   header section over 8 KiB    431 Request Header Fields Too Large, then close
//   version not 1.0 or 1.1       505 HTTP Version Not Supported, then close
//   stalls, trickles or idles    closed once a request has not arrived whole
//                                within ServerOptions::request_timeout
//   resets mid-response          the write fails; the task ends, nothing leaks
// An error response is followed by a lingering close (shut down our side,
// drain what the client still sends, for a short while) so the client reads
// the response instead of a reset.
//
// Out of descriptors (EMFILE/ENFILE) or memory, the accept loop backs off
// 10 ms and carries on; other accept errors are logged and skipped. No
// exception but heddle::Cancelled leaves a connection task.
//
// serve() and its connection tasks run on the calling task's scheduler: a
// Loop (one thread), or a Pool's workers (connection tasks spread over
// them). stats() may be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "heddle/io/net.hpp"
#include "heddle/stack/stack.hpp"

namespace http_example {

// Connection task stacks: 16 KiB, four pages. Measured with painted stacks
// (byte-granular heddle::high_water) over the tests and the demo, g++ 12
// -O2: 7.5 KiB per request on the hot path (the 4 KiB read buffer, the
// 2 KiB output buffer and the parser are most of it), 10 KiB on a
// process's first connection (lazy symbol binding), 12 KiB when a read or
// write fails and the exception unwinds. An idle task keeps two pages
// resident. Sanitizer builds have redzones and bigger frames: twice as much.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr std::size_t kDefaultStackBytes = 32 * 1024;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr std::size_t kDefaultStackBytes = 32 * 1024;
#else
inline constexpr std::size_t kDefaultStackBytes = 16 * 1024;
#endif
#else
inline constexpr std::size_t kDefaultStackBytes = 16 * 1024;
#endif

// The largest request line plus headers accepted (http-parser's limit,
// which is process-wide: Server's constructor sets it).
inline constexpr std::uint32_t kMaxHeaderBytes = 8 * 1024;

struct ServerOptions {
  // A request must arrive whole within this long of the connection going
  // idle (accepted, or its previous responses written); a client that
  // stalls, trickles or sits idle past it is disconnected.
  std::chrono::milliseconds request_timeout{10'000};
  std::size_t stack_bytes = kDefaultStackBytes;
  // Print connection errors (resets, timeouts, bad requests) to stderr.
  bool log_connection_errors = false;
};

// Counters, readable from any thread.
struct ServerStats {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> open{0};              // connection tasks running now
  std::atomic<std::uint64_t> requests{0};          // responses produced (any status)
  std::atomic<std::uint64_t> bad_requests{0};      // 400
  std::atomic<std::uint64_t> headers_too_large{0}; // 431
  std::atomic<std::uint64_t> unsupported_versions{0}; // 505
  std::atomic<std::uint64_t> head_responses{0};    // of requests: answers to HEAD, sent without a body
  std::atomic<std::uint64_t> timed_out{0};         // closed by request_timeout
  std::atomic<std::uint64_t> connection_errors{0}; // reset, broken pipe...
  std::atomic<std::uint64_t> accept_backoffs{0};   // EMFILE/ENFILE/ENOBUFS/ENOMEM pauses
  std::atomic<std::uint64_t> accept_errors{0};     // other accept failures, skipped
  // Deepest stack use of any finished connection task (heddle::high_water
  // of its pool stack, read just before the task ends), and its granularity.
  std::atomic<std::size_t> stack_high_water{0};
  std::atomic<std::size_t> stack_high_water_granularity{0};
};

class Server {
 public:
  explicit Server(ServerOptions options = {});
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Accepts connections on `listener` and serves each in its own task,
  // until the calling task is cancelled (then every connection task is
  // cancelled and awaited before serve() throws heddle::Cancelled).
  void serve(heddle::io::TcpListener& listener);
  // Serves one connection that is already open (a TcpStream, or an end of
  // UnixStream::pair() in a test or a fuzzer) on the calling task until the
  // client closes it, breaks it or times out, then closes it. Counted in
  // stats() as serve() counts its connections, but for the stack high-water
  // mark (the calling task's stack is not the server's to measure).
  void serve_stream(heddle::io::StreamSocket& stream);

  const ServerStats& stats() const noexcept { return stats_; }
  const ServerOptions& options() const noexcept { return options_; }
  const heddle::StackPool& stack_pool() const noexcept { return pool_; }

 private:
  // `stack`: the task's own pool stack, measured at the end (null: not
  // measured); `tcp`: the stream is a TcpStream (Nagle is turned off).
  void serve_connection(heddle::io::StreamSocket& stream, const heddle::Stack* stack, bool tcp);

  ServerOptions options_;
  heddle::StackPool pool_;
  ServerStats stats_;
};

}  // namespace http_example
