// heddle example: reading HTTP responses (see http_client.hpp).
#include "http_client.hpp"

#include <stdexcept>
#include <string>

namespace http_example {

struct ResponseReaderAccess {
  static ResponseReader& of(http_parser* parser) { return *static_cast<ResponseReader*>(parser->data); }

  static int on_message_begin(http_parser* parser) {
    ResponseReader& r = of(parser);
    r.started_ = true;
    r.current_->body.clear();
    return 0;
  }
  static int on_body(http_parser* parser, const char* at, std::size_t length) {
    of(parser).current_->body.append(at, length);
    return 0;
  }
  static int on_message_complete(http_parser* parser) {
    ResponseReader& r = of(parser);
    r.current_->status = static_cast<int>(parser->status_code);
    r.current_->keep_alive = http_should_keep_alive(parser) != 0;
    r.complete_ = true;
    http_parser_pause(parser, 1);  // one response per next(); the rest stays buffered
    return 0;
  }
  static const http_parser_settings& settings() {
    static const http_parser_settings settings = [] {
      http_parser_settings s;
      http_parser_settings_init(&s);
      s.on_message_begin = on_message_begin;
      s.on_body = on_body;
      s.on_message_complete = on_message_complete;
      return s;
    }();
    return settings;
  }
};

ResponseReader::ResponseReader(heddle::io::StreamSocket& stream) : stream_(stream) {
  http_parser_init(&parser_, HTTP_RESPONSE);
  parser_.data = this;
}

bool ResponseReader::next(Response& out) {
  const http_parser_settings& settings = ResponseReaderAccess::settings();
  current_ = &out;
  complete_ = false;
  started_ = false;
  for (;;) {
    if (begin_ < end_) {
      begin_ += http_parser_execute(&parser_, &settings, buffer_ + begin_, end_ - begin_);
      const auto error = HTTP_PARSER_ERRNO(&parser_);
      if (error == HPE_PAUSED) http_parser_pause(&parser_, 0);
      else if (error != HPE_OK) throw std::runtime_error(std::string("http response: ") + http_errno_description(error));
      if (complete_) return true;
    }
    begin_ = end_ = 0;
    const std::size_t n = stream_.read(buffer_, sizeof buffer_);
    if (n == 0) {
      // The end of the stream ends a response that has no length.
      http_parser_execute(&parser_, &settings, nullptr, 0);
      if (complete_) return true;
      if (!started_) return false;
      throw std::runtime_error("http response: the stream ended in the middle of a response");
    }
    end_ = n;
  }
}

}  // namespace http_example
