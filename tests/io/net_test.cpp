// Sockets on a Loop, run on each backend: echo with every byte checked,
// partial reads and writes, refused/reset/timed-out connections,
// cancellation of every waiting operation, UDP and Unix sockets, bad input.
// Every test also checks that it leaves no descriptor open.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/io/net.hpp"
#include "io_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using heddle::io::SocketAddress;
using heddle::io::TcpListener;
using heddle::io::TcpStream;
using heddle::io::UdpSocket;
using heddle::io::UnixDatagram;
using heddle::io::UnixListener;
using heddle::io::UnixStream;
using heddle::test::error_of;
using heddle::test::run_in_loop;

using Net = heddle::test::NoDescriptorLeak;

// Echoes every connection the listener accepts (kConnections of them).
heddle::Task<void> spawn_echo_server(TcpListener& listener, int connections) {
  return heddle::spawn([&listener, connections] {
    std::vector<heddle::Task<void>> handlers;
    for (int i = 0; i < connections; ++i) {
      handlers.push_back(heddle::spawn([stream = listener.accept()]() mutable {
        char buffer[8192];
        while (const std::size_t n = stream.read(buffer, sizeof buffer)) stream.write(buffer, n);
      }));
    }
    for (auto& handler : handlers) handler.join();
  });
}

void echo_random_messages(TcpStream& stream, unsigned seed, int rounds) {
  std::mt19937 random(seed);
  for (int round = 0; round < rounds; ++round) {
    const std::size_t size = 1 + random() % 70000;
    std::vector<unsigned char> out(size), in(size);
    for (auto& byte : out) byte = static_cast<unsigned char>(random());
    // Write beside the read: a message larger than both socket buffers
    // would otherwise block the writer forever.
    auto writer = heddle::spawn([&] { stream.write(out.data(), size); });
    ASSERT_EQ(stream.read_full(in.data(), size), size);
    writer.join();
    ASSERT_TRUE(in == out) << "echoed bytes differ in round " << round;
  }
}

TEST_F(Net, EchoOfRandomSizesOverManyConnectionsChecksEveryByte) {
  run_in_loop([] {
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
    const SocketAddress address = listener.local_address();
    constexpr int kConnections = 50;
    auto server = spawn_echo_server(listener, kConnections);
    std::vector<heddle::Task<void>> clients;
    for (int c = 0; c < kConnections; ++c) {
      clients.push_back(heddle::spawn([address, c] {
        auto stream = TcpStream::connect(address);
        echo_random_messages(stream, static_cast<unsigned>(c), 6);
        stream.shutdown_write();
        char byte;
        EXPECT_EQ(stream.read(&byte, 1), 0u) << "end of stream is a value";
      }));
    }
    for (auto& client : clients) client.join();
    server.join();
  });
}

TEST_F(Net, EchoOverIpv6) {
  run_in_loop([] {
    TcpListener listener;
    try {
      listener = TcpListener::bind(SocketAddress::loopback_ipv6());
    } catch (const std::system_error& e) {
      GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
    }
    auto server = spawn_echo_server(listener, 1);
    auto stream = TcpStream::connect(listener.local_address());
    EXPECT_EQ(stream.local_address().family(), AF_INET6);
    echo_random_messages(stream, 7, 3);
    stream.close();
    server.join();
  });
}

TEST_F(Net, LargeWriteIsSplitIntoPartialWritesAndSmallReadsSeeEveryByteInOrder) {
  run_in_loop([] {
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
    constexpr std::size_t kSize = 8 << 20;
    auto writer = heddle::spawn([&] {
      auto stream = listener.accept();
      std::vector<unsigned char> data(kSize);
      for (std::size_t i = 0; i < kSize; ++i) data[i] = static_cast<unsigned char>(i * 7 + i / 251);
      stream.write(data.data(), data.size());  // far more than the socket buffers: many partial writes
    });
    auto stream = TcpStream::connect(listener.local_address());
    std::size_t total = 0;
    std::size_t reads = 0;
    unsigned char buffer[1000];
    while (const std::size_t n = stream.read(buffer, sizeof buffer)) {
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t at = total + i;
        ASSERT_EQ(buffer[i], static_cast<unsigned char>(at * 7 + at / 251)) << "at byte " << at;
      }
      total += n;
      ++reads;
    }
    EXPECT_EQ(total, kSize);
    EXPECT_GT(reads, kSize / sizeof buffer - 1);
    writer.join();
  });
}

TEST_F(Net, ConnectingToAClosedPortIsRefusedWithTheAddressInTheError) {
  run_in_loop([] {
    SocketAddress address;
    {
      auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
      address = listener.local_address();
    }
    try {
      TcpStream::connect(address);
      ADD_FAILURE() << "connect succeeded";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNREFUSED);
      EXPECT_NE(std::string(e.what()).find(address.to_string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("TcpStream::connect"), std::string::npos) << e.what();
    }
  });
}

TEST_F(Net, APeerResetIsAnErrorNotAnEndOfStream) {
  run_in_loop([] {
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
    auto client = TcpStream::connect(listener.local_address());
    {
      auto server_side = listener.accept();
      linger hard{1, 0};  // close with RST
      ASSERT_EQ(::setsockopt(server_side.native_handle(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard), 0);
    }
    char byte;
    EXPECT_EQ(error_of([&] { client.read(&byte, 1); }), ECONNRESET);
  });
}

TEST_F(Net, WritingToAClosedConnectionIsEpipeAndNeverSigpipe) {
  run_in_loop([] {
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
    auto client = TcpStream::connect(listener.local_address());
    listener.accept().close();
    const int error = error_of([&] {
      std::vector<char> data(1 << 16);
      for (int i = 0; i < 100; ++i) client.write(data.data(), data.size());
    });
    EXPECT_TRUE(error == EPIPE || error == ECONNRESET) << error;  // the process is still alive: no SIGPIPE
  });
}

TEST_F(Net, ReadTimeoutFailsWithEtimedoutAfterTheTimeout) {
  run_in_loop([] {
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
    auto client = TcpStream::connect(listener.local_address());
    auto server_side = listener.accept();
    client.set_timeout(30ms);
    const auto start = heddle::Clock::now();
    char byte;
    EXPECT_EQ(error_of([&] { client.read(&byte, 1); }), ETIMEDOUT);
    EXPECT_GE(heddle::Clock::now() - start, 30ms);
    // The socket still works after a timeout: nothing was lost.
    client.set_timeout(std::nullopt);
    server_side.write("x");
    EXPECT_EQ(client.read(&byte, 1), 1u);
    EXPECT_EQ(byte, 'x');
  });
}

TEST_F(Net, ConnectTimeoutFailsWithEtimedout) {
  run_in_loop([] {
    // A listener with a backlog of 0 that never accepts: the first connect
    // completes, the next ones wait for a SYN-ACK that does not come.
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4(), 0);
    auto first = TcpStream::connect(listener.local_address());
    const auto start = heddle::Clock::now();
    EXPECT_EQ(error_of([&] { TcpStream::connect(listener.local_address(), 50ms); }), ETIMEDOUT);
    EXPECT_GE(heddle::Clock::now() - start, 50ms);
  });
}

TEST_F(Net, WithTimeoutAroundAReadCancelsIt) {
  run_in_loop([] {
    auto ends = UnixStream::pair();  // (clang 14 cannot capture structured bindings)
    auto& a = ends.first;
    auto& b = ends.second;
    char byte;
    EXPECT_THROW(heddle::with_timeout(20ms, [&] { return a.read(&byte, 1); }), heddle::TimedOut);
    b.write("y");
    EXPECT_EQ(a.read(&byte, 1), 1u);
    EXPECT_EQ(byte, 'y');
  });
}

// ---- cancellation of each waiting operation ----

TEST_F(Net, CancelledAcceptTakesNoConnectionFromTheNextAccept) {
  run_in_loop([] {
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
    auto victim = heddle::spawn([&] { listener.accept(); });
    EXPECT_FALSE(victim.finished());
    victim.cancel();
    EXPECT_THROW(victim.join(), heddle::Cancelled);
    // A kernel accept left behind would swallow this connection.
    auto client = TcpStream::connect(listener.local_address());
    auto server_side = heddle::with_timeout(2s, [&] { return listener.accept(); });
    client.write("z");
    char byte;
    EXPECT_EQ(server_side.read(&byte, 1), 1u);
  });
}

TEST_F(Net, CancelledReadLosesNoBytesForTheNextRead) {
  run_in_loop([] {
    auto ends = UnixStream::pair();  // (clang 14 cannot capture structured bindings)
    auto& a = ends.first;
    auto& b = ends.second;
    auto victim = heddle::spawn([&a] {
      char buffer[64];
      a.read(buffer, sizeof buffer);
    });
    victim.cancel();
    EXPECT_THROW(victim.join(), heddle::Cancelled);
    b.write("hello");
    char buffer[64];
    EXPECT_EQ(a.read_full(buffer, 5), 5u);
    EXPECT_EQ(std::string(buffer, 5), "hello");
  });
}

TEST_F(Net, CancelledWriteUnwindsWhileTheSocketIsFull) {
  run_in_loop([] {
    auto ends = UnixStream::pair();  // (clang 14 cannot capture structured bindings)
    auto& a = ends.first;
    [[maybe_unused]] auto& b = ends.second;  // kept open: the read must wait
    bool unwound = false;
    auto victim = heddle::spawn([&a, &unwound] {
      struct Flag {
        bool& set;
        ~Flag() { set = true; }
      } flag{unwound};
      std::vector<char> data(64 << 20);  // nobody reads: the write parks
      a.write(data.data(), data.size());
    });
    EXPECT_FALSE(victim.finished());
    victim.cancel();
    EXPECT_THROW(victim.join(), heddle::Cancelled);
    EXPECT_TRUE(unwound);
  });
}

TEST_F(Net, CancelledConnectUnwinds) {
  run_in_loop([] {
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4(), 0);
    auto first = TcpStream::connect(listener.local_address());
    auto victim = heddle::spawn([&] { TcpStream::connect(listener.local_address()); });
    EXPECT_FALSE(victim.finished());
    victim.cancel();
    EXPECT_THROW(victim.join(), heddle::Cancelled);
  });
}

TEST_F(Net, CancelledSleepBesideIoUnwinds) {
  run_in_loop([] {
    auto victim = heddle::spawn([] { heddle::sleep_for(10s); });
    victim.cancel();
    EXPECT_THROW(victim.join(), heddle::Cancelled);
  });
}

TEST_F(Net, DestroyingTheLoopCancelsTasksParkedInIo) {
  heddle::Loop* loop = new heddle::Loop;
  int parked = 0;
  {
    auto task = loop->spawn([&] {
      auto ends = UnixStream::pair();  // (clang 14 cannot capture structured bindings)
    auto& a = ends.first;
      [[maybe_unused]] auto& b = ends.second;  // kept open: the read must wait
      ++parked;
      char byte;
      a.read(&byte, 1);
    });
    task.detach();
  }
  EXPECT_EQ(parked, 1);
  delete loop;  // cancels the task and waits for its read to be cancelled
}

TEST_F(Net, OperationsQueuedInOneTurnReachTheKernelTogether) {
  run_in_loop([] {
    constexpr int kReaders = 100;
    std::vector<std::pair<UnixStream, UnixStream>> pairs;
    for (int i = 0; i < kReaders; ++i) pairs.push_back(UnixStream::pair());
    heddle::Loop& loop = *heddle::Loop::current();
    const auto before = heddle::io::reactor_stats(loop);
    heddle::TaskGroup readers;
    for (auto& pair : pairs) {
      readers.spawn([&pair] {
        char byte;
        EXPECT_EQ(pair.first.read(&byte, 1), 1u);
      });
    }
    heddle::sleep_for(std::chrono::milliseconds(1));  // one loop turn: submit, then wait
    const auto after = heddle::io::reactor_stats(loop);
    EXPECT_EQ(after.operations - before.operations, static_cast<std::uint64_t>(kReaders));
    // One submission for the whole batch (plus the wait itself), not one per read.
    EXPECT_LE(after.kernel_calls - before.kernel_calls, 3u);
    for (auto& pair : pairs) pair.second.write("!");
    readers.wait();
    EXPECT_GE(heddle::io::reactor_stats(loop).completions - after.completions, static_cast<std::uint64_t>(kReaders) / 2);
  });
}

// ---- datagrams and Unix sockets ----

TEST_F(Net, UdpRoundTripNamesTheSender) {
  run_in_loop([] {
    auto server = UdpSocket::bind(SocketAddress::loopback_ipv4());
    auto client = UdpSocket::bind(SocketAddress::loopback_ipv4());
    auto echo = heddle::spawn([&] {
      char buffer[2048];
      SocketAddress from;
      const std::size_t n = server.receive_from(buffer, sizeof buffer, &from);
      server.send_to(buffer, n, from);
    });
    client.send_to("ping", 4, server.local_address());
    char buffer[16];
    SocketAddress from;
    EXPECT_EQ(client.receive_from(buffer, sizeof buffer, &from), 4u);
    EXPECT_EQ(std::string(buffer, 4), "ping");
    EXPECT_EQ(from, server.local_address());
    echo.join();
    // Connected datagram sockets.
    client.connect(server.local_address());
    client.send("pong", 4);
    EXPECT_EQ(server.receive(buffer, sizeof buffer), 4u);
  });
}

TEST_F(Net, UnixStreamListenerEchoesAndRemovesItsSocketFile) {
  const std::string path = "/tmp/heddle-net-test-" + std::to_string(::getpid()) + ".sock";
  run_in_loop([&] {
    auto listener = UnixListener::bind(SocketAddress::unix_path(path));
    EXPECT_EQ(::access(path.c_str(), F_OK), 0);
    auto server = heddle::spawn([&] {
      auto stream = listener.accept();
      char buffer[256];
      while (const std::size_t n = stream.read(buffer, sizeof buffer)) stream.write(buffer, n);
    });
    auto client = UnixStream::connect(SocketAddress::unix_path(path));
    client.write("over unix");
    client.shutdown_write();
    char buffer[64];
    EXPECT_EQ(client.read_full(buffer, sizeof buffer), 9u);
    EXPECT_EQ(std::string(buffer, 9), "over unix");
    server.join();
  });
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the listener left " << path << " behind";
}

TEST_F(Net, UnixDatagramsBetweenAbstractAddresses) {
  run_in_loop([] {
    const std::string name = "@heddle-test-" + std::to_string(::getpid());
    auto server = UnixDatagram::bind(SocketAddress::unix_path(name));
    auto client = UnixDatagram::bind(SocketAddress::unix_path(name + "-client"));
    client.send_to("dgram", 5, SocketAddress::unix_path(name));
    char buffer[16];
    SocketAddress from;
    EXPECT_EQ(server.receive_from(buffer, sizeof buffer, &from), 5u);
    EXPECT_EQ(from.to_string(), "unix:" + name + "-client");
    auto ends = UnixDatagram::pair();  // (clang 14 cannot capture structured bindings)
    auto& x = ends.first;
    auto& y = ends.second;
    x.send("a", 1);
    EXPECT_EQ(y.receive(buffer, sizeof buffer), 1u);
  });
}

// ---- bad input and misuse ----

TEST_F(Net, BadAddressesAreRejectedWithTheTextInTheError) {
  for (const char* text : {"nonsense", "1.2.3.4", "1.2.3.4:99999", "1.2.3.4:", "[::1:80", "300.1.1.1:80"}) {
    try {
      SocketAddress::parse(text);
      ADD_FAILURE() << text << " parsed";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(SocketAddress::parse("10.0.0.1:80").to_string(), "10.0.0.1:80");
  EXPECT_EQ(SocketAddress::parse("[::1]:443").to_string(), "[::1]:443");
  EXPECT_EQ(SocketAddress::parse("unix:/run/x.sock").to_string(), "unix:/run/x.sock");
  EXPECT_THROW(SocketAddress::unix_path(std::string(200, 'x')), std::invalid_argument);
}

TEST_F(Net, WrongAddressFamiliesAreErrors) {
  run_in_loop([] {
    EXPECT_EQ(error_of([] { TcpStream::connect(SocketAddress::unix_path("/nonexistent")); }), EAFNOSUPPORT);
    EXPECT_EQ(error_of([] { UnixListener::bind(SocketAddress::loopback_ipv4()); }), EAFNOSUPPORT);
    EXPECT_EQ(error_of([] { TcpStream::connect(SocketAddress{}); }), EAFNOSUPPORT);
  });
}

TEST(NetDeathTest, AnUnknownHeddleIoValueIsAnErrorNamingIt) {
  // In a fresh process: the choice is read once, at the first I/O.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::setenv("HEDDLE_IO", "bogus", 1);
        try {
          (void)heddle::io::current_backend();
        } catch (const std::invalid_argument& e) {
          std::_Exit(std::string(e.what()).find("bogus") != std::string::npos ? 0 : 2);
        }
        std::_Exit(1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(Net, IoInATaskWithNoSchedulerIsALogicError) {
  auto task = heddle::spawn([] {
    auto ends = UnixStream::pair();  // (clang 14 cannot capture structured bindings)
    auto& a = ends.first;
    [[maybe_unused]] auto& b = ends.second;
    char byte;
    a.read(&byte, 1);
  });
  EXPECT_THROW(task.join(), std::logic_error);
}

TEST_F(Net, IoInATaskOfASimLoopIsALogicError) {
  heddle::SimLoop sim(1);  // a scheduler that drives no I/O
  auto task = sim.spawn([] {
    auto ends = UnixStream::pair();
    char byte;
    (void)ends.first.read(&byte, 1);
  });
  sim.run();
  EXPECT_THROW(task.join(), std::logic_error);
}

TEST_F(Net, APlainThreadBlocksInsteadOfParking) {
  auto ends = UnixStream::pair();  // (clang 14 cannot capture structured bindings)
    auto& a = ends.first;
    auto& b = ends.second;  // no task here: plain blocking calls
  b.write("t");
  char byte;
  EXPECT_EQ(a.read(&byte, 1), 1u);
  a.set_timeout(10ms);
  EXPECT_EQ(error_of([&] { a.read(&byte, 1); }), ETIMEDOUT);
}

TEST_F(Net, ResolveFindsLocalhost) {
  run_in_loop([] {
    const auto addresses = heddle::io::resolve("localhost", 80);
    ASSERT_FALSE(addresses.empty());
    EXPECT_EQ(addresses.front().port(), 80);
    EXPECT_EQ(error_of([] { heddle::io::resolve("no-such-host.invalid", 80); }) != 0, true);
  });
}

}  // namespace
