// Sockets across threads: plain-thread clients of a Loop's server, and a
// task parked in I/O cancelled from another thread. Runs under TSan too.
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/io/net.hpp"
#include "io_test_support.hpp"

namespace {

using heddle::io::SocketAddress;
using heddle::io::TcpListener;
using heddle::io::TcpStream;

TEST(NetThreads, PlainThreadClientsOfALoopServer) {
  const int before = heddle::test::open_descriptor_count();
  {
    heddle::Loop loop;
    std::atomic<std::uint16_t> port{0};
    constexpr int kClients = 8;
    auto server = loop.spawn([&] {
      heddle::test::expect_requested_backend();
      auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
      port.store(listener.local_address().port());
      port.notify_all();
      heddle::TaskGroup connections;
      for (int i = 0; i < kClients; ++i) {
        connections.spawn([stream = listener.accept()]() mutable {
          char buffer[512];
          while (const std::size_t n = stream.read(buffer, sizeof buffer)) stream.write(buffer, n);
        });
      }
      connections.wait();
    });
    std::thread loop_thread([&] { loop.run(); });
    port.wait(0);
    std::vector<std::thread> clients;
    std::atomic<int> intact{0};
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        auto stream = TcpStream::connect(SocketAddress::loopback_ipv4(port.load()));  // blocks this thread
        const std::string message = "thread " + std::to_string(c);
        stream.write(message);
        std::string back(message.size(), '\0');
        if (stream.read_full(back.data(), back.size()) == message.size() && back == message) ++intact;
      });
    }
    for (auto& client : clients) client.join();
    loop_thread.join();
    server.join();
    EXPECT_EQ(intact.load(), kClients);
  }
  EXPECT_EQ(heddle::test::open_descriptor_count(), before);
}

TEST(NetThreads, CancellingFromAnotherThreadUnwindsATaskParkedInRead) {
  const int before = heddle::test::open_descriptor_count();
  {
    heddle::Loop loop;
    std::atomic<bool> parked{false};
    std::atomic<bool> unwound{false};
    auto victim = loop.spawn([&] {
      auto ends = heddle::io::UnixStream::pair();
      struct Flag {
        std::atomic<bool>& set;
        ~Flag() { set.store(true); }
      } flag{unwound};
      parked.store(true);
      char byte;
      ends.first.read(&byte, 1);
    });
    std::thread canceller([&] {
      while (!parked.load()) std::this_thread::yield();
      victim.cancel();  // from this thread: the task unwinds on the loop's thread
    });
    loop.run();
    canceller.join();
    EXPECT_TRUE(unwound.load());
    EXPECT_THROW(victim.join(), heddle::Cancelled);
  }
  EXPECT_EQ(heddle::test::open_descriptor_count(), before);
}

}  // namespace
