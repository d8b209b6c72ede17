// Closing a descriptor from another thread than the one its waiter's
// reactor runs on: a Pool worker closing what a task pinned to the other
// worker waits on, and a plain thread closing what a Pool task waits on.
// The waiter gets ECANCELED, never the bytes of the connection that reuses
// the number. Runs once per backend, and under TSan.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <system_error>
#include <thread>

#include "heddle/heddle.hpp"
#include "heddle/io/net.hpp"
#include "io_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using heddle::Pool;
using heddle::io::SocketAddress;
using heddle::io::TcpListener;
using heddle::io::TcpStream;
using heddle::io::detail::operations_in_flight;

constexpr int kRounds = 200;
constexpr auto kSafetyNet = 5s;  // only turns a hang into a failure

struct Outcome {
  int error = 0;
  std::string message;
  std::string bytes;
};

Outcome read_outcome(TcpStream& stream) {
  Outcome outcome;
  try {
    char buffer[64];
    outcome.bytes.assign(buffer, stream.read(buffer, sizeof buffer));
  } catch (const std::system_error& e) {
    outcome.error = e.code().value();
    outcome.message = e.what();
  }
  return outcome;
}

// Until `fd` has an operation in flight (the waiter is in its read).
void wait_for_waiter(int fd) {
  while (operations_in_flight(fd) == 0) std::this_thread::yield();
}

// A 2-worker Pool: the waiter is pinned to one worker, the closer to the
// other (both start by spinning until the other has arrived, which two
// tasks can only do on two workers). Each round the closer closes the
// waiter's connection, accepts the next one (which gets the number) and
// reads it.
TEST(CloseThreads, ACloserOnAnotherWorkerEndsTheReadFirstAndTheNextConnectionKeepsItsBytes) {
  const int before = heddle::test::open_descriptor_count();
  {
    Pool pool(2);
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
    const SocketAddress address = listener.local_address();
    for (int round = 0; round < kRounds; ++round) {
      auto old_client = TcpStream::connect(address);  // (this thread: blocking calls)
      TcpStream old_side = listener.accept();
      const int number = old_side.native_handle();
      old_side.set_timeout(kSafetyNet);
      std::atomic<int> arrived{0};
      int waiter_worker = -1;
      int closer_worker = -1;
      const auto meet = [&arrived] {
        Pool::pin();
        arrived.fetch_add(1);
        while (arrived.load() < 2) std::this_thread::yield();
      };
      Outcome old_read;
      auto waiter = pool.spawn([&] {
        meet();
        waiter_worker = Pool::current_worker();
        old_read = read_outcome(old_side);
      });
      Outcome next_read;
      auto closer = pool.spawn([&] {
        meet();
        closer_worker = Pool::current_worker();
        heddle::test::expect_requested_backend();
        // Its own reactor exists before the close (made by its first I/O),
        // so that nothing but the accept can take the number.
        auto next_client = TcpStream::connect(address);
        wait_for_waiter(number);
        old_side.close();
        EXPECT_EQ(operations_in_flight(number), 0u) << "close() returned with the read still in flight";
        TcpStream next_side = listener.accept();
        ASSERT_EQ(next_side.native_handle(), number) << "the test needs the number reused";
        next_client.write("secret");
        next_side.set_timeout(kSafetyNet);
        next_read = read_outcome(next_side);
      });
      waiter.join();
      closer.join();
      ASSERT_NE(waiter_worker, closer_worker);
      ASSERT_EQ(old_read.bytes, "") << "round " << round << ": the old reader got the next connection's bytes";
      ASSERT_EQ(old_read.error, ECANCELED) << "round " << round << ": " << old_read.message;
      EXPECT_NE(old_read.message.find("descriptor closed while waiting"), std::string::npos) << old_read.message;
      ASSERT_EQ(next_read.error, 0) << "round " << round << ": " << next_read.message;
      ASSERT_EQ(next_read.bytes, "secret") << "round " << round;
    }
  }
  EXPECT_EQ(heddle::test::open_descriptor_count(), before) << "descriptor leak";
}

// The closer is a plain thread (this one): close() blocks it until the
// worker's waiter has ended its read.
TEST(CloseThreads, APlainThreadClosingEndsAReadOnAPoolWorkerFirst) {
  const int before = heddle::test::open_descriptor_count();
  {
    Pool pool(2);
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
    const SocketAddress address = listener.local_address();
    for (int round = 0; round < kRounds; ++round) {
      auto old_client = TcpStream::connect(address);
      TcpStream old_side = listener.accept();
      const int number = old_side.native_handle();
      old_side.set_timeout(kSafetyNet);
      Outcome old_read;
      auto waiter = pool.spawn([&] {
        heddle::test::expect_requested_backend();
        old_read = read_outcome(old_side);
      });
      wait_for_waiter(number);
      old_side.close();
      EXPECT_EQ(operations_in_flight(number), 0u) << "close() returned with the read still in flight";
      waiter.join();
      ASSERT_EQ(old_read.error, ECANCELED) << "round " << round << ": " << old_read.message;
    }
  }
  EXPECT_EQ(heddle::test::open_descriptor_count(), before) << "descriptor leak";
}

}  // namespace
