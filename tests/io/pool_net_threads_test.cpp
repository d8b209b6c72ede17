// Sockets on a work-stealing Pool: a server whose accept loop and
// connection tasks run on a Pool's workers (each worker with its own
// reactor), timeouts and cancellation of operations in flight, and timers
// that fire on the workers. Runs once per backend, and under TSan.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/io/net.hpp"
#include "io_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using heddle::Pool;
using heddle::io::SocketAddress;
using heddle::io::TcpListener;
using heddle::io::TcpStream;

TEST(PoolNet, EchoServerOnAPoolServesClientsOfALoop) {
  const int before = heddle::test::open_descriptor_count();
  constexpr int kClients = 40;
  std::set<int> server_workers;
  {
    Pool pool(2);
    std::atomic<std::uint16_t> port{0};
    std::mutex workers_mutex;
    auto server = pool.spawn([&] {
      heddle::test::expect_requested_backend();
      auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
      port.store(listener.local_address().port());
      port.notify_all();
      heddle::TaskGroup connections;
      for (int i = 0; i < kClients; ++i) {
        connections.spawn([&, stream = listener.accept()]() mutable {
          char buffer[1024];
          while (const std::size_t n = stream.read(buffer, sizeof buffer)) {
            {
              std::lock_guard lock(workers_mutex);
              server_workers.insert(Pool::current_worker());
            }
            stream.write(buffer, n);
          }
        });
      }
      connections.wait();
    });
    port.wait(0);
    // Clients on a Loop on this thread: random sizes up to 64 KiB, every
    // byte checked.
    heddle::Loop clients;
    std::atomic<int> intact{0};
    std::vector<heddle::Task<void>> tasks;
    for (int c = 0; c < kClients; ++c) {
      tasks.push_back(clients.spawn([&, c] {
        auto stream = TcpStream::connect(SocketAddress::loopback_ipv4(port.load()));
        std::mt19937 random(static_cast<unsigned>(c));
        std::string message(1 + random() % 65536, '\0');
        for (char& ch : message) ch = static_cast<char>('a' + random() % 26);
        auto writer = heddle::spawn([&] {
          stream.write(message);
          stream.shutdown_write();
        });
        std::string back(message.size(), '\0');
        if (stream.read_full(back.data(), back.size()) == message.size() && back == message) ++intact;
        writer.join();
      }));
    }
    clients.run();
    for (auto& task : tasks) task.join();
    server.join();
    EXPECT_EQ(intact.load(), kClients);
  }
  EXPECT_FALSE(server_workers.empty());
  EXPECT_EQ(heddle::test::open_descriptor_count(), before) << "descriptor leak (reactors go with the pool)";
}

TEST(PoolNet, ReadTimeoutAndCancellationFromAnotherThread) {
  const int before = heddle::test::open_descriptor_count();
  {
    Pool pool(2);
    // A read that times out leaves the socket usable.
    pool.run([] {
      auto ends = heddle::io::UnixStream::pair();
      ends.first.set_timeout(20ms);
      char byte = 0;
      try {
        (void)ends.first.read(&byte, 1);
        ADD_FAILURE() << "the read should have timed out";
      } catch (const std::system_error& error) {
        EXPECT_EQ(error.code().value(), ETIMEDOUT);
      }
      ends.second.write("x", 1);
      EXPECT_EQ(ends.first.read(&byte, 1), 1u);
      EXPECT_EQ(byte, 'x');
    });
    // A task parked in read, cancelled from this thread, unwinds.
    std::atomic<bool> parked{false}, unwound{false};
    auto victim = pool.spawn([&] {
      auto ends = heddle::io::UnixStream::pair();
      struct Flag {
        std::atomic<bool>& set;
        ~Flag() { set.store(true); }
      } flag{unwound};
      parked.store(true);
      char byte;
      (void)ends.first.read(&byte, 1);
    });
    while (!parked.load()) std::this_thread::yield();
    std::this_thread::sleep_for(5ms);
    victim.cancel();
    EXPECT_THROW(victim.join(), heddle::Cancelled);
    EXPECT_TRUE(unwound.load());
  }
  EXPECT_EQ(heddle::test::open_descriptor_count(), before);
}

TEST(PoolNet, ShutdownCancelsTasksParkedInIo) {
  const int before = heddle::test::open_descriptor_count();
  {
    Pool pool(2);
    std::atomic<int> parked{0};
    std::vector<heddle::Task<void>> tasks;
    for (int i = 0; i < 20; ++i) {
      tasks.push_back(pool.spawn([&] {
        auto ends = heddle::io::UnixStream::pair();
        parked.fetch_add(1);
        char byte;
        (void)ends.first.read(&byte, 1);
      }));
    }
    while (parked.load() != 20) std::this_thread::yield();
    pool.shutdown();
    for (auto& task : tasks) EXPECT_THROW(task.join(), heddle::Cancelled);
  }
  EXPECT_EQ(heddle::test::open_descriptor_count(), before);
}

TEST(PoolTimers, TimersFireOnTheWorkers) {
  Pool pool(2);
  std::atomic<int> fired_on{-2};
  pool.run([&] {
    heddle::Timer timer;
    heddle::Event done;
    auto callback = [&] {
      fired_on = Pool::current_worker();  // the worker's thread, not the timer thread
      done.set();
    };
    timer.arm(heddle::Clock::now() + 5ms, callback);
    done.wait();
  });
  EXPECT_GE(fired_on.load(), 0);
  // Many sleepers on both workers all wake, none early.
  pool.run([] {
    std::vector<heddle::Task<void>> sleepers;
    for (int i = 0; i < 200; ++i) {
      sleepers.push_back(heddle::spawn([i] {
        const auto start = heddle::Clock::now();
        const auto length = std::chrono::milliseconds(1 + i % 20);
        heddle::sleep_for(length);
        EXPECT_GE(heddle::Clock::now() - start, length);
      }));
    }
    for (auto& s : sleepers) s.join();
  });
}

}  // namespace
