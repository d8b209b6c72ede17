// Fault injection (heddle/sys/fault.hpp): for every site, the failure a
// real server meets reaches the caller as a clear std::system_error, or
// heddle retries and recovers; nothing is consumed by a failed call, no
// descriptor or stack leaks, no byte is lost. Runs once per io backend.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/io/net.hpp"
#include "io_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using heddle::fault::Fault;
using heddle::fault::Injection;
using heddle::fault::Site;
using heddle::io::SocketAddress;
using heddle::io::TcpListener;
using heddle::io::TcpStream;
using heddle::test::error_of;
using heddle::test::run_in_loop;

// Every test starts and ends with nothing injected, and leaks no descriptor.
class Faults : public heddle::test::NoDescriptorLeak {
 protected:
  void SetUp() override {
    heddle::fault::clear_all();
    NoDescriptorLeak::SetUp();
  }
  void TearDown() override {
    heddle::fault::clear_all();
    NoDescriptorLeak::TearDown();
  }
};

// A connected pair of TCP streams on loopback (call from a loop task).
struct Connection {
  TcpStream client;
  TcpStream server;
};
Connection connect_pair() {
  auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
  TcpStream client = TcpStream::connect(listener.local_address());
  TcpStream server = listener.accept();
  return {std::move(client), std::move(server)};
}

std::string pattern(std::size_t bytes, unsigned seed) {
  std::mt19937 random(seed);
  std::string text(bytes, '\0');
  for (char& c : text) c = static_cast<char>(random());
  return text;
}

TEST_F(Faults, InjectRejectsWhatNoSiteCanMeetNamingIt) {
  auto message_of = [](Site site, Fault fault) -> std::string {
    try {
      heddle::fault::inject(site, fault);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message_of(Site::accept, {.error = EPIPE}).find("accept"), std::string::npos);
  EXPECT_NE(message_of(Site::stack_map, {.short_length = 3}).find("short counts"), std::string::npos);
  EXPECT_NE(message_of(Site::socket_read, {.error = ECONNRESET, .short_length = 3}).find("not both"),
            std::string::npos);
  EXPECT_NE(message_of(Site::socket_write, {}).find("no error"), std::string::npos);
  EXPECT_NE(message_of(Site::accept, {.error = EMFILE, .times = 0}).find("at least 1"), std::string::npos);
  EXPECT_NE(message_of(Site::uring_submit, {.error = EBUSY, .times = heddle::fault::kAlways}).find("finite"),
            std::string::npos);
  EXPECT_STREQ(heddle::fault::to_string(Site::wake_write), "wake_write");
}

TEST_F(Faults, SkipThenTimesThenSpent) {
  // One mmap per stack: guarded stacks are carved from 2 MiB chunks where
  // the kernel has guard regions, and a chunk holds one stack this big.
  heddle::StackPool pool({.stack_bytes = 2 * 1024 * 1024, .guard = heddle::StackPool::Guard::always});
  const std::uint64_t before = heddle::fault::injected(Site::stack_map);
  heddle::fault::inject(Site::stack_map, {.error = ENOMEM, .skip = 1, .times = 2});
  std::vector<heddle::Stack> stacks;
  stacks.push_back(pool.acquire());  // skipped
  EXPECT_EQ(error_of([&] { stacks.push_back(pool.acquire()); }), ENOMEM);
  EXPECT_EQ(error_of([&] { stacks.push_back(pool.acquire()); }), ENOMEM);
  stacks.push_back(pool.acquire());  // spent: through again
  EXPECT_EQ(heddle::fault::injected(Site::stack_map) - before, 2u);
  for (const auto& stack : stacks) pool.release(stack);
  EXPECT_EQ(pool.stats().live, 0u);
}

TEST_F(Faults, StackMapFailureFailsTheSpawnClearlyAndLeaksNothing) {
  for (auto guard : {heddle::StackPool::Guard::always, heddle::StackPool::Guard::never}) {
    heddle::StackPool pool({.guard = guard});
    {
      Injection no_memory(Site::stack_map, {.error = ENOMEM});
      bool ran = false;
      try {
        auto task = heddle::spawn([&] { ran = true; }, {.pool = &pool});
        task.join();
        ADD_FAILURE() << "spawn succeeded without memory for a stack";
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOMEM);
        EXPECT_NE(std::string(e.what()).find("mmap"), std::string::npos) << e.what();
      }
      EXPECT_FALSE(ran);
      EXPECT_EQ(pool.stats().live, 0u);
    }
    // Memory is back: the same pool spawns as before.
    auto task = heddle::spawn([] { return 7; }, {.pool = &pool});
    EXPECT_EQ(task.join(), 7);
    EXPECT_EQ(pool.stats().live, 0u);
  }
}

TEST_F(Faults, StackReleaseFailureKeepsTheStackResidentAndReusable) {
  // Nothing kept resident: every idle stack is handed back with madvise.
  heddle::StackPool pool({.max_resident_idle = 0});
  Injection refused(Site::stack_release, {.error = ENOMEM, .times = heddle::fault::kAlways});
  for (int round = 0; round < 3; ++round) {
    heddle::Event go;
    std::vector<heddle::Task<int>> tasks;
    for (int i = 0; i < 100; ++i) {
      tasks.push_back(heddle::spawn([&go, i] {
        go.wait();
        return i;
      }, {.pool = &pool}));
    }
    go.set();
    for (int i = 0; i < 100; ++i) EXPECT_EQ(tasks[i].join(), i);
  }
  const auto stats = pool.stats();
  EXPECT_EQ(stats.live, 0u);
  EXPECT_GT(stats.release_failures, 0u);
  EXPECT_LE(stats.guarded_created + stats.canary_created, 100u) << "stacks were not reused";
}

TEST_F(Faults, AcceptOutOfDescriptorsReachesTheCallerAndKeepsTheConnection) {
  for (int error : {EMFILE, ENFILE}) {
    run_in_loop([error] {
      auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
      TcpStream client = TcpStream::connect(listener.local_address());
      {
        Injection out_of_descriptors(Site::accept, {.error = error});
        try {
          (void)listener.accept();
          ADD_FAILURE() << "accept succeeded";
        } catch (const std::system_error& e) {
          EXPECT_EQ(e.code().value(), error);
          EXPECT_NE(std::string(e.what()).find("accept"), std::string::npos) << e.what();
        }
      }
      // The connection waited in the backlog: the next accept gets it.
      TcpStream server = listener.accept();
      client.write("ping");
      char buffer[4];
      EXPECT_EQ(server.read_full(buffer, 4), 4u);
      EXPECT_EQ(std::string(buffer, 4), "ping");
    });
  }
}

TEST_F(Faults, ReadResetReachesTheCallerAndConsumesNothing) {
  run_in_loop([] {
    Connection c = connect_pair();
    c.client.write("hello");
    {
      Injection reset(Site::socket_read, {.error = ECONNRESET});
      char buffer[16];
      EXPECT_EQ(error_of([&] { (void)c.server.read(buffer, sizeof buffer); }), ECONNRESET);
    }
    char buffer[5];
    EXPECT_EQ(c.server.read_full(buffer, 5), 5u);
    EXPECT_EQ(std::string(buffer, 5), "hello");
  });
}

TEST_F(Faults, WriteErrorsReachTheCaller) {
  for (int error : {EPIPE, ECONNRESET}) {
    run_in_loop([error] {
      Connection c = connect_pair();
      Injection broken(Site::socket_write, {.error = error});
      try {
        c.client.write("lost");
        ADD_FAILURE() << "write succeeded";
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), error);
        EXPECT_NE(std::string(e.what()).find("write"), std::string::npos) << e.what();
      }
    });
  }
}

// EAGAIN ("not ready yet"): the caller waits for readiness through its
// backend and then transfers; every byte arrives, in order.
TEST_F(Faults, SpuriousEagainWaitsAndLosesNothing) {
  run_in_loop([] {
    Connection c = connect_pair();
    const std::string sent = pattern(200'000, 1);
    auto writer = heddle::spawn([&] {
      Injection again(Site::socket_write, {.error = EAGAIN, .skip = 1, .times = 3});
      c.client.write(sent.data(), sent.size());
      c.client.shutdown_write();
    });
    std::string received;
    heddle::with_timeout(10s, [&] {
      Injection again(Site::socket_read, {.error = EAGAIN, .times = 5});
      char buffer[4096];
      while (const std::size_t n = c.server.read(buffer, sizeof buffer)) received.append(buffer, n);
    });
    writer.join();
    EXPECT_EQ(received.size(), sent.size());
    EXPECT_TRUE(received == sent) << "bytes lost or reordered";
    EXPECT_GE(heddle::fault::injected(Site::socket_read), 5u);
  });
}

TEST_F(Faults, ShortReadsAndWritesDeliverEveryByteInOrder) {
  const std::uint64_t reads_before = heddle::fault::injected(Site::socket_read);
  const std::uint64_t writes_before = heddle::fault::injected(Site::socket_write);
  run_in_loop([] {
    Connection c = connect_pair();
    const std::string sent = pattern(100'000, 2);
    Injection short_reads(Site::socket_read, {.short_length = 7, .times = heddle::fault::kAlways});
    Injection short_writes(Site::socket_write, {.short_length = 5, .times = heddle::fault::kAlways});
    auto writer = heddle::spawn([&] {
      c.client.write(sent.data(), sent.size());
      c.client.shutdown_write();
    });
    std::string received;
    char buffer[4096];
    while (const std::size_t n = c.server.read(buffer, sizeof buffer)) {
      EXPECT_LE(n, 7u);
      received.append(buffer, n);
    }
    writer.join();
    EXPECT_TRUE(received == sent) << "bytes lost or reordered";
  });
  EXPECT_GE(heddle::fault::injected(Site::socket_read) - reads_before, 100'000u / 7);
  EXPECT_GE(heddle::fault::injected(Site::socket_write) - writes_before, 100'000u / 5);
}

// io_uring: submission refused under completion-queue pressure, and a full
// submission queue; heddle retries both. The epoll reactor has neither call.
TEST_F(Faults, UringSubmitBusyAndQueueFullAreRetried) {
  const std::uint64_t submits_before = heddle::fault::injected(Site::uring_submit);
  const std::uint64_t full_before = heddle::fault::injected(Site::uring_queue_full);
  bool uring = false;
  run_in_loop([&uring] {
    uring = heddle::io::current_backend() == heddle::io::Backend::io_uring;
    Connection c = connect_pair();
    Injection busy(Site::uring_submit, {.error = EBUSY, .times = 3});
    Injection full(Site::uring_queue_full, {.times = 4});
    const std::string sent = pattern(50'000, 3);
    auto writer = heddle::spawn([&] {
      c.client.write(sent.data(), sent.size());
      c.client.shutdown_write();
    });
    std::string received;
    char buffer[1024];
    while (const std::size_t n = c.server.read(buffer, sizeof buffer)) received.append(buffer, n);
    writer.join();
    EXPECT_TRUE(received == sent);
  });
  if (uring) {
    EXPECT_EQ(heddle::fault::injected(Site::uring_submit) - submits_before, 3u);
    EXPECT_EQ(heddle::fault::injected(Site::uring_queue_full) - full_before, 4u);
  } else {
    EXPECT_EQ(heddle::fault::injected(Site::uring_submit), submits_before);
    EXPECT_EQ(heddle::fault::injected(Site::uring_queue_full), full_before);
  }
}

// A wake-up write interrupted by a signal is retried: the loop sleeping in
// its reactor still wakes for work handed from another thread.
TEST_F(Faults, InterruptedWakeWritesStillWakeTheLoop) {
  const std::uint64_t before = heddle::fault::injected(Site::wake_write);
  heddle::Loop loop;
  heddle::Event event;
  std::atomic<bool> parked{false};
  auto waiter = loop.spawn([&] {
    // A socket operation gives the loop its reactor, so it sleeps in it.
    Connection c = connect_pair();
    parked.store(true);
    event.wait();
    return 5;
  });
  Injection interrupted(Site::wake_write, {.error = EINTR, .times = 2});
  std::thread setter([&] {
    while (!parked.load()) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(20ms);  // let the loop go to sleep
    event.set();
  });
  loop.run();
  setter.join();
  EXPECT_EQ(waiter.join(), 5);
  EXPECT_EQ(heddle::fault::injected(Site::wake_write) - before, 2u);
}

}  // namespace
