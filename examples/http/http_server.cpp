// heddle example: the HTTP/1.1 server (see http_server.hpp).
#include "http_server.hpp"

#include <http_parser.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <unistd.h>

#include <cstdarg>
#include <cstring>
#include <string_view>
#include <system_error>
#include <utility>

#include "heddle/core/combinators.hpp"
#include "heddle/sched/time.hpp"

namespace http_example {

namespace io = heddle::io;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kReadBufferBytes = 4096;
// Pipelined responses wait here until the whole read buffer is parsed. A
// batch that outgrows it is written in parts (the parser pauses).
constexpr std::size_t kOutputBufferBytes = 2048;
// Room always kept free in the output buffer: the longest response below.
constexpr std::size_t kMaxResponseBytes = 192;
// After an error response: how long to drain what the client still sends.
constexpr Clock::duration kMaxLinger = 2s;
constexpr std::size_t kMaxLingerBytes = 64 * 1024;

// stderr is unbuffered, and glibc's fprintf to an unbuffered stream puts an
// 8 KiB buffer on the stack: more than a connection task can spare. So a
// line is formatted into a small buffer and written with write(2).
__attribute__((format(printf, 1, 2))) void log_line(const char* format, ...) noexcept {
  char line[256];
  va_list arguments;
  va_start(arguments, format);
  const int length = std::vsnprintf(line, sizeof line - 1, format, arguments);
  va_end(arguments);
  if (length <= 0) return;
  std::size_t size = std::min(static_cast<std::size_t>(length), sizeof line - 2);
  line[size++] = '\n';
  const ssize_t written = ::write(STDERR_FILENO, line, size);
  (void)written;
}

// Connection tasks may run on several threads (a Pool's workers).
void bump(std::atomic<std::uint64_t>& counter) noexcept { counter.fetch_add(1, std::memory_order_relaxed); }

enum class ConnectionHeader { none, keep_alive, close };

// Where in the request target the URL bytes seen so far are. Routing needs
// only the path: an origin-form target ("/path?query") is one, an
// absolute-form one ("http://host/path?query", RFC 9112 section 3.2.2)
// has it after its authority. Other targets ("*", CONNECT's "host:port")
// have no path, and match no route.
enum class TargetPart { start, scheme, scheme_slashes, authority, path, after_path };

// A request the server refuses: the status to answer, and why (for the
// log). Callbacks refuse requests that http-parser takes but HTTP/1.1 does
// not allow; http-parser's own errors become 400 or 431.
struct Rejection {
  int status = 0;  // 0: none
  const char* reason = "";
};

// Everything a connection task keeps between reads (on its stack).
struct Connection {
  http_parser parser;
  ServerStats* stats = nullptr;
  // The request being parsed: its target's path, up to '?' or '#'.
  TargetPart target_part = TargetPart::start;
  int scheme_slashes = 0;
  bool absolute_form = false;
  std::size_t path_length = 0;
  char path_first = 0;
  Rejection rejection;
  // Set by the response that ends the connection.
  bool closing = false;
  std::uint64_t completed = 0;
  std::size_t out_size = 0;
  char out[kOutputBufferBytes];

  void append(std::string_view text) noexcept {
    std::memcpy(out + out_size, text.data(), text.size());
    out_size += text.size();
  }
  bool room_for_response() const noexcept { return out_size + kMaxResponseBytes <= sizeof out; }

  // Follows the target one byte at a time: it may arrive in pieces.
  void target_byte(char byte) noexcept {
    switch (target_part) {
      case TargetPart::start:
        target_part = byte == '/' ? TargetPart::path : TargetPart::scheme;
        if (byte == '/') path_byte(byte);
        break;
      case TargetPart::scheme:
        if (byte == ':') target_part = TargetPart::scheme_slashes;
        break;
      case TargetPart::scheme_slashes:  // the "//" after the scheme's colon
        if (byte != '/') {
          target_part = TargetPart::after_path;  // no authority, so no path
        } else if (++scheme_slashes == 2) {
          target_part = TargetPart::authority;
          absolute_form = true;
        }
        break;
      case TargetPart::authority:
        if (byte == '/') {
          target_part = TargetPart::path;
          path_byte(byte);
        } else if (byte == '?' || byte == '#') {
          target_part = TargetPart::after_path;  // an empty path
        }
        break;
      case TargetPart::path:
        if (byte == '?' || byte == '#') {
          target_part = TargetPart::after_path;
        } else {
          path_byte(byte);
        }
        break;
      case TargetPart::after_path:
        break;
    }
  }
  void path_byte(char byte) noexcept {
    if (path_length == 0) path_first = byte;
    ++path_length;
  }
  // An absolute-form target with an empty path ("http://host") asks for
  // "/" (RFC 9110 section 4.2.3).
  bool path_is_root() const noexcept {
    return path_length == 0 ? absolute_form : path_length == 1 && path_first == '/';
  }

  // Stops the parser (a callback's nonzero return is an error to it) with
  // `status` for the serving loop to answer.
  int reject(int status, const char* reason) noexcept {
    rejection = {status, reason};
    return -1;
  }

  // Status line, headers, body: at most kMaxResponseBytes.
  void append_response(int status, ConnectionHeader connection, bool head) noexcept {
    std::string_view status_line, length, body;
    switch (status) {
      case 200:
        status_line = "HTTP/1.1 200 OK\r\n";
        body = "Hello, World!";
        length = "Content-Length: 13\r\n";
        break;
      case 404:
        status_line = "HTTP/1.1 404 Not Found\r\n";
        body = "Not Found\n";
        length = "Content-Length: 10\r\n";
        break;
      case 431:
        status_line = "HTTP/1.1 431 Request Header Fields Too Large\r\n";
        body = "Request Header Fields Too Large\n";
        length = "Content-Length: 32\r\n";
        break;
      case 505:
        status_line = "HTTP/1.1 505 HTTP Version Not Supported\r\n";
        body = "HTTP Version Not Supported\n";
        length = "Content-Length: 27\r\n";
        break;
      default:
        status_line = "HTTP/1.1 400 Bad Request\r\n";
        body = "Bad Request\n";
        length = "Content-Length: 12\r\n";
        break;
    }
    append(status_line);
    append("Content-Type: text/plain\r\n");
    append(length);
    if (connection == ConnectionHeader::close) append("Connection: close\r\n");
    if (connection == ConnectionHeader::keep_alive) append("Connection: keep-alive\r\n");
    append("\r\n");
    // A response to HEAD has GET's headers, Content-Length included, and
    // no body (RFC 9110 section 9.3.2).
    if (head) {
      bump(stats->head_responses);
    } else {
      append(body);
    }
    bump(stats->requests);
  }
};

Connection& connection_of(http_parser* parser) noexcept { return *static_cast<Connection*>(parser->data); }

int on_message_begin(http_parser* parser) {
  Connection& c = connection_of(parser);
  c.target_part = TargetPart::start;
  c.scheme_slashes = 0;
  c.absolute_form = false;
  c.path_length = 0;
  c.path_first = 0;
  return 0;
}

// The URL may arrive in pieces (split across reads); only its path matters.
int on_url(http_parser* parser, const char* at, std::size_t length) {
  Connection& c = connection_of(parser);
  // A request line without a version ("GET /\r\n", HTTP/0.9's form) is
  // malformed in HTTP/1.x, but http-parser takes it for HTTP/0.9 and waits
  // for headers that will not come. It sets the version to 0.9 before it
  // reports the target's last piece (possibly an empty one). No earlier
  // request on the connection leaves 0.9 behind: an explicit "HTTP/0.9" is
  // parsed after the target, and answered 505 and closed.
  if (parser->http_major == 0 && parser->http_minor == 9) return c.reject(400, "request line without a version");
  for (std::size_t i = 0; i < length; ++i) c.target_byte(at[i]);
  return 0;
}

// A field name is a token, and no whitespace may come between it and its
// colon (RFC 9112 section 5.1); http-parser, built lenient as Debian builds
// it, takes spaces into field names (tabs it already refuses).
int on_header_field(http_parser* parser, const char* at, std::size_t length) {
  if (std::memchr(at, ' ', length) != nullptr) return connection_of(parser).reject(400, "whitespace in a field name");
  return 0;
}

// http-parser takes any one-digit version; this server speaks 1.0 and 1.1.
int on_headers_complete(http_parser* parser) {
  if (parser->http_major == 1 && parser->http_minor <= 1) return 0;
  return connection_of(parser).reject(505, "HTTP version not supported");
}

int on_message_complete(http_parser* parser) {
  Connection& c = connection_of(parser);
  const bool head = parser->method == HTTP_HEAD;
  const int status = (parser->method == HTTP_GET || head) && c.path_is_root() ? 200 : 404;
  // This server never upgrades: what follows an upgrade request is not HTTP.
  const bool keep_alive = http_should_keep_alive(parser) != 0 && parser->upgrade == 0;
  ConnectionHeader header = ConnectionHeader::none;
  if (!keep_alive) {
    header = ConnectionHeader::close;
  } else if (parser->http_major == 1 && parser->http_minor == 0) {
    header = ConnectionHeader::keep_alive;  // HTTP/1.0 asked for keep-alive
  }
  c.append_response(status, header, head);
  ++c.completed;
  if (!keep_alive) {
    c.closing = true;
    http_parser_pause(parser, 1);  // ignore whatever was pipelined behind it
  } else if (!c.room_for_response()) {
    http_parser_pause(parser, 1);  // write this part of the batch first
  }
  return 0;
}

const http_parser_settings kSettings = [] {
  http_parser_settings settings;
  http_parser_settings_init(&settings);
  settings.on_message_begin = on_message_begin;
  settings.on_url = on_url;
  settings.on_header_field = on_header_field;
  settings.on_headers_complete = on_headers_complete;
  settings.on_message_complete = on_message_complete;
  return settings;
}();

bool is_transient_accept_error(int error) noexcept {
  // Out of descriptors or memory: closing connections will free some.
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

bool listener_unusable(int error) noexcept {
  return error == EBADF || error == EINVAL || error == ENOTSOCK || error == EOPNOTSUPP;
}

}  // namespace

Server::Server(ServerOptions options)
    : options_(options), pool_([&] {
        heddle::StackPool::Options pool_options;
        pool_options.stack_bytes = options.stack_bytes;
        return pool_options;
      }()) {
  http_parser_set_max_header_size(kMaxHeaderBytes);
}

void Server::serve(io::TcpListener& listener) {
  heddle::TaskGroup connections(&pool_);
  for (;;) {
    io::TcpStream stream;
    try {
      stream = listener.accept();
    } catch (const std::system_error& e) {
      const int error = e.code().value();
      if (listener_unusable(error)) throw;
      if (is_transient_accept_error(error)) {
        bump(stats_.accept_backoffs);
        heddle::sleep_for(10ms);  // connections that end give descriptors back
      } else {
        bump(stats_.accept_errors);  // ECONNABORTED, EPERM (a firewall rule)...
        log_line("http: %s", e.what());
      }
      continue;
    }
    bump(stats_.accepted);
    // The task gets its stack explicitly (a pool stack, which the task
    // gives back to pool_ when it is released) so that it can read its own
    // high-water mark at the end.
    heddle::Stack stack;
    try {
      stack = pool_.acquire();
    } catch (const std::system_error& e) {
      bump(stats_.accept_backoffs);
      log_line("http: dropping a connection: %s", e.what());
      heddle::sleep_for(10ms);
      continue;
    }
    heddle::SpawnOptions spawn_options;
    spawn_options.name = "http connection";
    spawn_options.stack = stack;
    connections.spawn([this, stream = std::move(stream), stack]() mutable { serve_connection(stream, &stack, true); },
                      spawn_options);
  }
}

void Server::serve_stream(io::StreamSocket& stream) { serve_connection(stream, nullptr, false); }

void Server::serve_connection(io::StreamSocket& stream, const heddle::Stack* stack, bool tcp) {
  // Runs on every way out, cancellation included.
  struct Bookkeeping {
    ServerStats& stats;
    io::StreamSocket& stream;
    const heddle::Stack* stack;
    explicit Bookkeeping(ServerStats& s, io::StreamSocket& t, const heddle::Stack* k) : stats(s), stream(t), stack(k) {
      stats.open.fetch_add(1, std::memory_order_relaxed);
    }
    ~Bookkeeping() {
      stream.close();
      if (stack == nullptr) {
        stats.open.fetch_sub(1, std::memory_order_relaxed);
        return;
      }
      const heddle::StackUsage used = heddle::high_water(*stack);
      auto seen = stats.stack_high_water.load(std::memory_order_relaxed);
      while (used.bytes > seen && !stats.stack_high_water.compare_exchange_weak(seen, used.bytes)) {
      }
      if (used.bytes >= seen) stats.stack_high_water_granularity.store(used.granularity, std::memory_order_relaxed);
      stats.open.fetch_sub(1, std::memory_order_relaxed);
    }
  } bookkeeping{stats_, stream, stack};

  const Clock::duration timeout = options_.request_timeout;
  Connection c;
  http_parser_init(&c.parser, HTTP_REQUEST);
  c.parser.data = &c;
  c.stats = &stats_;
  char input[kReadBufferBytes];

  auto flush = [&] {
    if (c.out_size == 0) return;
    stream.set_timeout(timeout);
    stream.write(c.out, c.out_size);
    c.out_size = 0;
  };
  // Our side is done: shut it, then drain what the client still sends for
  // a while, so that it reads our last response rather than a reset.
  auto lingering_close = [&] {
    try {
      stream.shutdown_write();
      const Clock::time_point until = Clock::now() + std::min(timeout, kMaxLinger);
      std::size_t drained = 0;
      while (drained < kMaxLingerBytes) {
        const Clock::duration left = until - Clock::now();
        if (left <= Clock::duration::zero()) break;
        stream.set_timeout(left);
        const std::size_t n = stream.read(input, sizeof input);
        if (n == 0) break;
        drained += n;
      }
    } catch (const std::system_error&) {
      // Timed out or reset while draining: the response is out, close anyway.
    }
  };

  try {
    // A batch that outgrew the output buffer goes out in two writes; Nagle
    // would hold the second until the client acknowledged the first.
    if (tcp) static_cast<io::TcpStream&>(stream).set_no_delay(true);
    Clock::time_point deadline = Clock::now() + timeout;
    for (;;) {
      const Clock::duration left = deadline - Clock::now();
      if (left <= Clock::duration::zero()) throw std::system_error(ETIMEDOUT, std::system_category(), "request");
      stream.set_timeout(left);
      const std::size_t n = stream.read(input, sizeof input);
      if (n == 0) return;  // the client closed (a half-sent request is dropped)

      const std::uint64_t completed_before = c.completed;
      std::size_t offset = 0;
      while (offset < n && !c.closing) {
        const std::size_t parsed = http_parser_execute(&c.parser, &kSettings, input + offset, n - offset);
        offset += parsed;
        const auto error = HTTP_PARSER_ERRNO(&c.parser);
        if (error == HPE_PAUSED) {
          http_parser_pause(&c.parser, 0);
          if (!c.room_for_response()) flush();
        } else if (error != HPE_OK || (offset < n && !c.parser.upgrade)) {
          // A response always has room (see on_message_complete). A
          // callback refuses a request that parsed as far as its method, so
          // its answer to a HEAD has no body; http-parser's own errors may
          // come before the method is known, and keep theirs.
          const bool refused = c.rejection.status != 0;
          const Rejection rejection = refused                        ? c.rejection
                                      : error == HPE_HEADER_OVERFLOW ? Rejection{431, http_errno_description(error)}
                                                                     : Rejection{400, http_errno_description(error)};
          bump(rejection.status == 431   ? stats_.headers_too_large
               : rejection.status == 505 ? stats_.unsupported_versions
                                         : stats_.bad_requests);
          if (options_.log_connection_errors) log_line("http: %d: %s", rejection.status, rejection.reason);
          c.append_response(rejection.status, ConnectionHeader::close, refused && c.parser.method == HTTP_HEAD);
          c.closing = true;
        } else if (c.parser.upgrade) {
          c.closing = true;  // its response (Connection: close) is in the batch
        }
      }
      flush();
      if (c.closing) {
        lingering_close();
        return;
      }
      if (c.completed != completed_before) deadline = Clock::now() + timeout;
    }
  } catch (const std::system_error& e) {
    const bool timed_out = e.code().value() == ETIMEDOUT;
    bump(timed_out ? stats_.timed_out : stats_.connection_errors);
    if (options_.log_connection_errors) log_line("http: connection: %s", e.what());
  } catch (const std::exception& e) {
    bump(stats_.connection_errors);
    log_line("http: connection: %s", e.what());
  }
}

}  // namespace http_example
