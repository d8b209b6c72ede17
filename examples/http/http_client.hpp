// heddle example: the client side of the HTTP example, for the load
// generator, the self-test and the tests.
//
// Owns: ResponseReader, which reads HTTP/1.1 responses one at a time from a
// stream (keeping bytes that belong to the next pipelined response), with
// http-parser in response mode. It reads through StreamSocket::read, so on a
// Loop it parks only its task.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <string>

#include "heddle/io/net.hpp"

namespace http_example {

struct Response {
  int status = 0;
  std::string body;
  bool keep_alive = true;  // false: the server closes after this response
};

class ResponseReader {
 public:
  explicit ResponseReader(heddle::io::StreamSocket& stream);
  ResponseReader(const ResponseReader&) = delete;
  ResponseReader& operator=(const ResponseReader&) = delete;

  // Reads the next response into `out`. Returns false when the stream ends
  // before its first byte. Throws std::runtime_error for a malformed
  // response or one cut short, std::system_error for read errors.
  bool next(Response& out);

 private:
  friend struct ResponseReaderAccess;
  heddle::io::StreamSocket& stream_;
  http_parser parser_;
  Response* current_ = nullptr;
  bool complete_ = false;
  bool started_ = false;
  std::size_t begin_ = 0;  // unparsed bytes: buffer_[begin_, end_)
  std::size_t end_ = 0;
  char buffer_[4096];
};

// A request for `path` (GET, HTTP/1.1, keep-alive).
inline std::string get_request(const std::string& path = "/") {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
}

}  // namespace http_example
