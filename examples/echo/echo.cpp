// A TCP echo server: one task per connection, written as blocking code.
//
//   echo [--port N]     serves on 127.0.0.1:N (default 7007) until SIGINT/SIGTERM
//   echo --self-test    serves on an ephemeral port, runs 100 client tasks
//                       against it, checks every byte, and exits
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/io/backend.hpp"
#include "heddle/io/file.hpp"
#include "heddle/io/net.hpp"

namespace io = heddle::io;

namespace {

// Accepts until cancelled; each connection gets its own task, which echoes
// until the client closes its side.
void serve(io::TcpListener& listener) {
  heddle::TaskGroup connections;
  for (;;) {
    io::TcpStream stream;
    try {
      stream = listener.accept();
    } catch (const std::system_error& e) {
      if (e.code().value() == EMFILE || e.code().value() == ENFILE) {
        heddle::sleep_for(std::chrono::milliseconds(10));  // out of descriptors: back off, keep serving
        continue;
      }
      throw;
    }
    connections.spawn([stream = std::move(stream)]() mutable {
      char buffer[4096];
      try {
        while (const std::size_t n = stream.read(buffer, sizeof buffer)) stream.write(buffer, n);
      } catch (const std::system_error& e) {
        std::fprintf(stderr, "echo: connection: %s\n", e.what());  // reset by the peer, say
      }
    });
  }
}

bool self_test() {
  auto listener = io::TcpListener::bind(io::SocketAddress::loopback_ipv4());
  const io::SocketAddress address = listener.local_address();
  auto server = heddle::spawn([&] { serve(listener); });
  bool ok = true;
  heddle::TaskGroup clients;
  for (int c = 0; c < 100; ++c) {
    clients.spawn([&, c] {
      auto stream = io::TcpStream::connect(address);
      for (int round = 0; round < 10; ++round) {
        const std::string message = "client " + std::to_string(c) + " round " + std::to_string(round);
        stream.write(message);
        std::string back(message.size(), '\0');
        if (stream.read_full(back.data(), back.size()) != message.size() || back != message) ok = false;
      }
    });
  }
  clients.wait();
  server.cancel();
  try {
    server.join();
  } catch (const heddle::Cancelled&) {
  }
  std::printf("echo self-test (%s): 100 clients x 10 messages %s\n",
              std::string(io::to_string(io::current_backend())).c_str(), ok ? "echoed intact" : "FAILED");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 7007;
  bool test = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--self-test") == 0) {
      test = true;
    } else if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: echo [--port N] [--self-test]\n");
      return 2;
    }
  }
  heddle::Loop loop;
  int status = 0;
  auto main_task = loop.spawn([&] {
    if (test) {
      status = self_test() ? 0 : 1;
      return;
    }
    io::SignalSet stop_signals{SIGINT, SIGTERM};
    auto listener = io::TcpListener::bind(io::SocketAddress::loopback_ipv4(static_cast<std::uint16_t>(port)));
    std::printf("echo: serving on %s (%s); Ctrl-C stops\n", listener.local_address().to_string().c_str(),
                std::string(io::to_string(io::current_backend())).c_str());
    std::fflush(stdout);
    auto server = heddle::spawn([&] { serve(listener); });
    stop_signals.wait();
    server.cancel();  // unwinds the accept loop and every connection task
    try {
      server.join();
    } catch (const heddle::Cancelled&) {
    }
  });
  loop.run();
  main_task.join();
  return status;
}
