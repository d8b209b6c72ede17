// libFuzzer target: the HTTP example server's request handling
// (examples/http), fed arbitrary bytes through a connected socket pair.
//
// The input's first byte chooses how the client cuts the rest into writes
// (1 to 256 bytes each), so requests arrive split anywhere. One Loop runs
// the server's connection task (Server::serve_stream) and a client task
// that writes the input, shuts its side down and reads everything the
// server sends until it closes. Checked: no crash, hang or leak (ASan); the
// connection task ends and gives everything back; the bytes that came back
// are exactly the responses the server counted, each a complete
// "HTTP/1.1 <status>" message with a Content-Length body, or without its
// body as many times as the server counted answers to HEAD.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "heddle/heddle.hpp"
#include "heddle/io/net.hpp"
#include "http_server.hpp"

namespace {

using namespace std::chrono_literals;

[[noreturn]] void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "http_request_fuzz: %s\n%s\n", what, detail.c_str());
  std::abort();
}

struct ResponseCount {
  std::size_t all = 0;
  std::size_t without_body = 0;
};

// Counts the responses in `bytes`, each a status line, headers with a
// Content-Length, a blank line and exactly that many body bytes, or no body
// at all (an answer to HEAD). The server's bodies are never empty and never
// begin with "HTTP/1.1 ", so a head followed by the end or by the next
// status line is a response without its body.
ResponseCount count_responses(std::string_view bytes) {
  ResponseCount count;
  while (!bytes.empty()) {
    if (bytes.substr(0, 9) != "HTTP/1.1 ") finding("a response does not start with HTTP/1.1", std::string(bytes));
    const std::size_t end_of_head = bytes.find("\r\n\r\n");
    if (end_of_head == std::string_view::npos) finding("a response's head is cut off", std::string(bytes));
    const std::string_view head = bytes.substr(0, end_of_head);
    const std::size_t length_at = head.find("Content-Length: ");
    if (length_at == std::string_view::npos) finding("a response without Content-Length", std::string(head));
    const std::size_t body = std::strtoul(std::string(head.substr(length_at + 16)).c_str(), nullptr, 10);
    bytes.remove_prefix(end_of_head + 4);
    ++count.all;
    if (bytes.empty() || bytes.substr(0, 9) == "HTTP/1.1 ") {
      ++count.without_body;
      continue;
    }
    if (bytes.size() < body) finding("a response's body is cut off", std::string(bytes));
    bytes.remove_prefix(body);
  }
  return count;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0];
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  http_example::ServerOptions options;
  options.request_timeout = 2s;  // nothing here waits: a hang is a finding (libFuzzer's -timeout)
  http_example::Server server(options);
  std::string received;
  {
    heddle::Loop loop;
    auto ends = heddle::io::UnixStream::pair();  // (clang 14 cannot capture structured bindings)
    heddle::io::UnixStream& client = ends.first;
    auto serving = loop.spawn([&server, &ends] { server.serve_stream(ends.second); });
    auto writer = loop.spawn([&client, input, piece] {
      try {
        for (std::size_t at = 0; at < input.size(); at += piece) {
          client.write(input.substr(at, piece));
        }
        client.shutdown_write();
      } catch (const std::system_error&) {
        // The server closed first (after a 400 or 431): what it sent is still read below.
      }
    });
    auto reader = loop.spawn([&client, &received] {
      char buffer[4096];
      try {
        while (const std::size_t n = client.read(buffer, sizeof buffer)) received.append(buffer, n);
      } catch (const std::system_error&) {
        // Reset after the server's lingering close gave up: keep what came.
      }
    });
    loop.run();
    serving.join();
    writer.join();
    reader.join();
  }
  const auto& stats = server.stats();
  if (stats.open.load() != 0) finding("a connection task did not end", "");
  const ResponseCount responses = count_responses(received);
  if (responses.all != stats.requests.load()) {
    finding("the responses received differ from the responses the server counted",
            std::to_string(responses.all) + " received, " + std::to_string(stats.requests.load()) + " counted");
  }
  if (responses.without_body != stats.head_responses.load()) {
    finding("the responses received without a body differ from the answers to HEAD the server counted",
            std::to_string(responses.without_body) + " received, " + std::to_string(stats.head_responses.load()) +
                " counted");
  }
  return 0;
}
