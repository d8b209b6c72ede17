// A thread-per-core server: a Cluster whose loops each bind their own
// listener on one port with SO_REUSEPORT. Every connection is answered by
// one of them. Runs once per backend, and under TSan.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <system_error>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/io/net.hpp"
#include "heddle/sched/cluster.hpp"
#include "io_test_support.hpp"

namespace {

using heddle::io::ListenOptions;
using heddle::io::SocketAddress;
using heddle::io::TcpListener;
using heddle::io::TcpStream;

TEST(ClusterNet, ReusePortListenersShareAPort) {
  const int before = heddle::test::open_descriptor_count();
  constexpr int kClients = 64;
  std::atomic<int> answered[2] = {0, 0};
  {
    heddle::Cluster cluster({.threads = 2, .pin = false});
    std::atomic<std::uint16_t> port{0};
    std::atomic<int> listening{0};
    heddle::Event all_answered;
    std::atomic<int> total{0};
    cluster.run([&](heddle::Loop&, std::size_t index) {
      heddle::test::expect_requested_backend();
      if (index == 1) port.wait(0);  // loop 0 picks the port
      auto listener = TcpListener::bind(SocketAddress::loopback_ipv4(port.load()), ListenOptions{.reuse_port = true});
      if (index == 0) {
        port.store(listener.local_address().port());
        port.notify_all();
      }
      ++listening;
      auto acceptor = heddle::spawn([&] {
        heddle::TaskGroup connections;  // cancelled and awaited when the acceptor is
        for (;;) {
          connections.spawn([&, stream = listener.accept()]() mutable {
            char buffer[64];
            if (const std::size_t n = stream.read(buffer, sizeof buffer)) {
              stream.write(buffer, n);
              ++answered[index];
              if (++total == kClients) all_answered.set();
            }
          });
        }
      });
      if (index == 0) {
        // The clients, from loop 0 once both loops listen.
        while (listening.load() != 2) heddle::sleep_for(std::chrono::milliseconds(1));
        heddle::TaskGroup clients;
        std::atomic<int> intact{0};
        for (int c = 0; c < kClients; ++c) {
          clients.spawn([&, c] {
            auto stream = TcpStream::connect(SocketAddress::loopback_ipv4(port.load()));
            const std::string message = "client " + std::to_string(c);
            stream.write(message);
            std::string back(message.size(), '\0');
            if (stream.read_full(back.data(), back.size()) == message.size() && back == message) ++intact;
          });
        }
        clients.wait();
        EXPECT_EQ(intact.load(), kClients);
      }
      all_answered.wait();
      acceptor.cancel();
      try {
        acceptor.join();
      } catch (const heddle::Cancelled&) {
      }
    });
  }
  EXPECT_EQ(answered[0].load() + answered[1].load(), kClients);
  EXPECT_EQ(heddle::test::open_descriptor_count(), before);
}

TEST(ClusterNet, ReusePortOnAUnixListenerIsRejected) {
  heddle::test::run_in_loop([] {
    EXPECT_THROW(heddle::io::UnixListener::bind(SocketAddress::unix_path("@heddle-reuse-port-test"),
                                                ListenOptions{.reuse_port = true}),
                 std::system_error);
  });
}

}  // namespace
