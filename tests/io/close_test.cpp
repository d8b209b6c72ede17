// Closing a descriptor while tasks wait on it, on a Loop, run on each
// backend. Each waiting operation (read, write, accept, a read on a FIFO)
// ends with std::system_error(ECANCELED) "descriptor closed while waiting"
// before the number is released, so a connection that reuses the number
// never has its bytes taken, nor gets bytes written, by a waiter of the old
// one (with epoll the old reader used to read the new connection's data;
// with io_uring it hung until the old peer wrote). Also: close with no
// waiter, the destructor, move-assignment, double close, close from a
// waiter's unwinding, and close from outside any task on the loop's thread.
// Every test checks that it leaves no descriptor open.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/io/file.hpp"
#include "heddle/io/net.hpp"
#include "io_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using heddle::io::SocketAddress;
using heddle::io::TcpListener;
using heddle::io::TcpStream;
using heddle::io::UnixListener;
using heddle::io::UnixStream;
using heddle::test::run_in_loop;

using Close = heddle::test::NoDescriptorLeak;

constexpr int kRounds = 200;
// Only a safety net: without the fix, a waiter of the closed descriptor
// waits forever (io_uring) or steals from the next connection, and this
// bound turns a hang into a failure. A passing run never waits for it.
constexpr auto kSafetyNet = 2s;

// What a waiting call ended with.
struct Outcome {
  int error = 0;        // errno of the std::system_error, 0 if it returned
  std::string message;  // its what()
  std::string bytes;    // what a read returned
};

template <class F>
Outcome outcome_of(F&& f) {
  Outcome outcome;
  try {
    f(outcome);
  } catch (const std::system_error& e) {
    outcome.error = e.code().value();
    outcome.message = e.what();
  }
  return outcome;
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

std::string unique_abstract_name(const char* what) {
  static int counter = 0;
  return "@heddle-close-test-" + std::to_string(::getpid()) + "-" + what + "-" + std::to_string(counter++);
}

TEST_F(Close, ReadParkedOnAClosedSocketGetsEcanceledNeverTheNextConnectionsBytes) {
  run_in_loop([] {
    auto listener = TcpListener::bind(SocketAddress::loopback_ipv4());
    const SocketAddress address = listener.local_address();
    for (int round = 0; round < kRounds; ++round) {
      auto old_client = TcpStream::connect(address);  // never writes
      TcpStream old_side = listener.accept();
      const int number = old_side.native_handle();
      old_side.set_timeout(kSafetyNet);
      Outcome old_read;
      auto reader = heddle::spawn([&] {  // eager: parked in read when spawn returns
        old_read = outcome_of([&](Outcome& out) {
          char buffer[64];
          out.bytes.assign(buffer, old_side.read(buffer, sizeof buffer));
        });
      });
      ASSERT_FALSE(reader.finished());
      // Connected before the close, so that its own socket does not take
      // the number: the accept below does.
      auto next_client = TcpStream::connect(address);
      old_side.close();
      // close() returned only after the reader's operation had ended.
      EXPECT_TRUE(reader.finished()) << "round " << round;
      TcpStream next_side = listener.accept();
      ASSERT_EQ(next_side.native_handle(), number) << "the test needs the number reused";
      next_side.set_timeout(kSafetyNet);
      Outcome next_read;
      auto next_reader = heddle::spawn([&] {
        next_read = outcome_of([&](Outcome& out) {
          char buffer[64];
          out.bytes.assign(buffer, next_side.read(buffer, sizeof buffer));
        });
      });
      next_client.write("secret");
      reader.join();
      next_reader.join();
      ASSERT_EQ(old_read.bytes, "") << "round " << round << ": the old reader got the next connection's bytes";
      ASSERT_EQ(old_read.error, ECANCELED) << "round " << round << ": " << old_read.message;
      EXPECT_NE(old_read.message.find("heddle::io::StreamSocket::read"), std::string::npos) << old_read.message;
      EXPECT_NE(old_read.message.find("descriptor closed while waiting"), std::string::npos) << old_read.message;
      ASSERT_EQ(next_read.error, 0) << "round " << round << ": " << next_read.message;
      ASSERT_EQ(next_read.bytes, "secret") << "round " << round;
    }
  });
}

TEST_F(Close, WriteParkedOnAFullClosedSocketGetsEcanceledAndWritesNothingToTheNextConnection) {
  run_in_loop([] {
    auto listener = UnixListener::bind(SocketAddress::unix_path(unique_abstract_name("write")));
    const SocketAddress address = listener.local_address();
    const std::vector<char> flood(8 << 20, 'w');  // far more than a Unix socket's buffers
    for (int round = 0; round < kRounds; ++round) {
      auto old_client = UnixStream::connect(address);  // never reads
      UnixStream old_side = listener.accept();
      const int number = old_side.native_handle();
      old_side.set_timeout(kSafetyNet);
      Outcome old_write;
      auto writer = heddle::spawn([&] {
        old_write = outcome_of([&](Outcome&) { old_side.write(flood.data(), flood.size()); });
      });
      ASSERT_FALSE(writer.finished()) << "the write should wait for room";
      auto next_client = UnixStream::connect(address);
      old_side.close();
      EXPECT_TRUE(writer.finished()) << "round " << round;
      UnixStream next_side = listener.accept();
      ASSERT_EQ(next_side.native_handle(), number) << "the test needs the number reused";
      next_side.set_timeout(kSafetyNet);
      // A read parked on the new connection (with epoll it registers the
      // number, whose first event used to wake the old writer), then a
      // reply, then the end of the stream.
      auto next_server = heddle::spawn([&] {
        char byte;
        ASSERT_EQ(next_side.read(&byte, 1), 1u);
        next_side.write("mine");
        next_side.shutdown_write();
      });
      next_client.set_timeout(kSafetyNet);
      next_client.write("?");
      std::string received;
      char buffer[4096];
      while (const std::size_t n = next_client.read(buffer, sizeof buffer)) received.append(buffer, n);
      next_server.join();
      writer.join();
      ASSERT_EQ(received.substr(0, 16), "mine") << "round " << round << ": " << received.size()
                                                << " bytes reached the next connection";
      ASSERT_EQ(old_write.error, ECANCELED) << "round " << round << ": " << old_write.message;
      EXPECT_NE(old_write.message.find("heddle::io::StreamSocket::write"), std::string::npos);
      EXPECT_NE(old_write.message.find("descriptor closed while waiting"), std::string::npos);
    }
  });
}

TEST_F(Close, AcceptParkedOnAClosedListenerGetsEcanceledNeverTheNextListenersConnection) {
  run_in_loop([] {
    for (int round = 0; round < kRounds; ++round) {
      auto old_listener = TcpListener::bind(SocketAddress::loopback_ipv4());
      const int number = old_listener.native_handle();
      old_listener.set_timeout(kSafetyNet);
      Outcome old_accept;
      std::optional<TcpStream> stolen;
      auto acceptor = heddle::spawn([&] {
        old_accept = outcome_of([&](Outcome&) { stolen = old_listener.accept(); });
      });
      ASSERT_FALSE(acceptor.finished());
      old_listener.close();
      EXPECT_TRUE(acceptor.finished()) << "round " << round;
      auto next_listener = TcpListener::bind(SocketAddress::loopback_ipv4());
      ASSERT_EQ(next_listener.native_handle(), number) << "the test needs the number reused";
      next_listener.set_timeout(kSafetyNet);
      std::optional<TcpStream> accepted;
      auto next_acceptor = heddle::spawn([&] { accepted = next_listener.accept(); });
      auto client = TcpStream::connect(next_listener.local_address());
      client.write("hello");
      acceptor.join();
      next_acceptor.join();
      ASSERT_FALSE(stolen) << "round " << round << ": the old accept took the next listener's connection";
      ASSERT_EQ(old_accept.error, ECANCELED) << "round " << round << ": " << old_accept.message;
      EXPECT_NE(old_accept.message.find("heddle::io::TcpListener::accept"), std::string::npos);
      EXPECT_NE(old_accept.message.find("descriptor closed while waiting"), std::string::npos);
      ASSERT_TRUE(accepted);
      char buffer[5];
      ASSERT_EQ(accepted->read_full(buffer, 5), 5u);
      EXPECT_EQ(std::string(buffer, 5), "hello");
    }
  });
}

TEST_F(Close, CloseWithNoWaiterReleasesTheNumberAtOnceAndASecondCloseDoesNothing) {
  const auto check = [] {
    auto ends = UnixStream::pair();
    auto& a = ends.first;
    const int number = a.native_handle();
    a.close();
    EXPECT_FALSE(is_open(number));
    EXPECT_FALSE(a);
    a.close();  // double close: nothing (the number may belong to someone else by now)
    auto other = UnixStream::pair();  // takes the number again
    EXPECT_EQ(other.first.native_handle(), number);
    a.close();
    EXPECT_TRUE(is_open(number)) << "a second close closed someone else's descriptor";
  };
  run_in_loop(check);  // in a task
  check();             // on a plain thread
}

TEST_F(Close, DestroyingASocketWithAWaiterEndsTheWaitFirst) {
  run_in_loop([] {
    auto ends = UnixStream::pair();
    std::optional<UnixStream> a(std::move(ends.first));
    const int number = a->native_handle();
    Outcome read;
    auto reader = heddle::spawn([&] {
      read = outcome_of([&](Outcome&) {
        char byte;
        a->read(&byte, 1);
      });
    });
    ASSERT_FALSE(reader.finished());
    a.reset();  // the destructor
    EXPECT_TRUE(reader.finished());
    EXPECT_FALSE(is_open(number));
    reader.join();
    EXPECT_EQ(read.error, ECANCELED) << read.message;
  });
}

TEST_F(Close, MoveAssigningOverASocketWithAWaiterEndsTheWaitFirst) {
  run_in_loop([] {
    auto ends = UnixStream::pair();
    auto& a = ends.first;
    const int number = a.native_handle();
    Outcome read;
    auto reader = heddle::spawn([&] {
      read = outcome_of([&](Outcome&) {
        char byte;
        a.read(&byte, 1);
      });
    });
    ASSERT_FALSE(reader.finished());
    auto others = UnixStream::pair();
    const int replacement = others.first.native_handle();
    a = std::move(others.first);
    EXPECT_TRUE(reader.finished());
    EXPECT_FALSE(is_open(number));
    reader.join();
    EXPECT_EQ(read.error, ECANCELED) << read.message;
    // The assigned socket works.
    EXPECT_EQ(a.native_handle(), replacement);
    others.second.write("x");
    char byte;
    EXPECT_EQ(a.read(&byte, 1), 1u);
    EXPECT_EQ(byte, 'x');
  });
}

TEST_F(Close, ClosingAFileWhileAReadWaitsOnItsFifoEndsTheReadFirst) {
  const std::string path = "/tmp/heddle-close-test-fifo-" + std::to_string(::getpid());
  ::unlink(path.c_str());
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  run_in_loop([&] {
    auto file = heddle::io::File::open(path, O_RDONLY | O_NONBLOCK);
    const int writer = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);  // no end of file while open
    ASSERT_GE(writer, 0);
    Outcome read;
    auto reader = heddle::spawn([&] {
      read = outcome_of([&](Outcome&) {
        char byte;
        file.read(&byte, 1);
      });
    });
    ASSERT_FALSE(reader.finished());
    file.close();
    EXPECT_TRUE(reader.finished());
    reader.join();
    EXPECT_EQ(read.error, ECANCELED) << read.message;
    EXPECT_NE(read.message.find("heddle::io::File::read"), std::string::npos) << read.message;
    EXPECT_NE(read.message.find("descriptor closed while waiting"), std::string::npos) << read.message;
    ::close(writer);
  });
  ::unlink(path.c_str());
}

// The reader is cancelled and closes the socket while it unwinds (a
// cancelled task waits for the writer uninterruptibly: close() is noexcept).
TEST_F(Close, ClosingFromAWaitersUnwindingEndsTheOtherWaitersFirst) {
  run_in_loop([] {
    auto ends = UnixStream::pair();
    auto& a = ends.first;
    [[maybe_unused]] auto& b = ends.second;  // kept open, never read: the write waits
    Outcome write;
    const std::vector<char> flood(8 << 20, 'w');
    auto writer = heddle::spawn([&] {
      write = outcome_of([&](Outcome&) { a.write(flood.data(), flood.size()); });
    });
    ASSERT_FALSE(writer.finished());
    bool writer_done_at_close = false;
    auto reader = heddle::spawn([&] {
      struct CloseOnUnwind {
        UnixStream& socket;
        heddle::Task<void>& writer;
        bool& writer_done;
        ~CloseOnUnwind() {
          socket.close();
          writer_done = writer.finished();
        }
      } guard{a, writer, writer_done_at_close};
      char byte;
      a.read(&byte, 1);
    });
    ASSERT_FALSE(reader.finished());
    reader.cancel();
    EXPECT_THROW(reader.join(), heddle::Cancelled);
    EXPECT_TRUE(writer_done_at_close);
    writer.join();
    EXPECT_EQ(write.error, ECANCELED) << write.message;
  });
}

// The reader is cancelled, then its socket closed before it has run: the
// close waits while the cancelled read is taken out of the kernel (with
// io_uring the task waits uninterruptibly for its own cancellation), and
// the reader ends with Cancelled, which came first.
TEST_F(Close, ClosingWhileTheWaiterIsBeingCancelledWaitsForItAndItSeesCancelled) {
  run_in_loop([] {
    auto ends = UnixStream::pair();
    auto& a = ends.first;
    [[maybe_unused]] auto& b = ends.second;
    const int number = a.native_handle();
    auto reader = heddle::spawn([&] {
      char byte;
      a.read(&byte, 1);
    });
    ASSERT_FALSE(reader.finished());
    reader.cancel();  // queued: it unwinds when this task next parks
    a.close();        // parks here until the reader's operation is out
    EXPECT_TRUE(reader.finished());
    EXPECT_FALSE(is_open(number));
    EXPECT_THROW(reader.join(), heddle::Cancelled);
  });
}

// close() on the loop's thread outside any task (the loop is not running):
// it cannot wait for the waiter to run, so it detaches the waiter from the
// reactor itself, and the waiter gets ECANCELED when the loop runs it.
TEST_F(Close, ClosingOutsideAnyTaskOnTheLoopsThreadEndsTheWaitThere) {
  heddle::Loop loop;
  auto ends = UnixStream::pair();
  auto& a = ends.first;
  [[maybe_unused]] auto& b = ends.second;
  const int number = a.native_handle();
  Outcome read;
  auto reader = loop.spawn([&] {  // this thread is the loop's: runs until it parks
    heddle::test::expect_requested_backend();
    read = outcome_of([&](Outcome&) {
      char byte;
      a.read(&byte, 1);
    });
  });
  ASSERT_FALSE(reader.finished());
  a.close();
  EXPECT_FALSE(is_open(number));
  loop.run();
  reader.join();
  EXPECT_EQ(read.error, ECANCELED) << read.message;
}

}  // namespace
