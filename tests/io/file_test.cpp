// Files and signals on a Loop, on each backend.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/io/file.hpp"
#include "io_test_support.hpp"

namespace {

using heddle::io::File;
using heddle::test::run_in_loop;

class Files : public heddle::test::NoDescriptorLeak {
 protected:
  void SetUp() override {
    NoDescriptorLeak::SetUp();
    path_ = "/tmp/heddle-file-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  void TearDown() override {
    ::unlink(path_.c_str());
    NoDescriptorLeak::TearDown();
  }
  std::string path_;
};

TEST_F(Files, WriteThenReadBackAFileLargerThanAnyBuffer) {
  run_in_loop([&] {
    constexpr std::size_t kSize = 24 << 20;  // larger than one transfer of the buffers below
    std::vector<unsigned char> data(kSize);
    std::mt19937 random(3);
    for (auto& byte : data) byte = static_cast<unsigned char>(random());
    {
      auto file = File::create(path_);
      // In uneven pieces, sequentially.
      std::size_t at = 0;
      while (at < kSize) {
        const std::size_t piece = std::min<std::size_t>(kSize - at, 1 + random() % (3 << 20));
        file.write(data.data() + at, piece);
        at += piece;
      }
      file.sync();
    }
    EXPECT_EQ(heddle::io::status(path_).size, kSize);
    auto file = File::open(path_);
    std::vector<unsigned char> back(kSize);
    std::size_t total = 0;
    while (const std::size_t n = file.read(back.data() + total, std::min<std::size_t>(kSize - total, 1 << 20))) {
      total += n;
      if (total == kSize) break;
    }
    EXPECT_EQ(total, kSize);
    EXPECT_TRUE(back == data);
    unsigned char extra;
    EXPECT_EQ(file.read(&extra, 1), 0u) << "the end of the file is a value";
  });
}

TEST_F(Files, PositionalReadsAndWritesLeaveTheFilePositionAlone) {
  run_in_loop([&] {
    auto file = File::open(path_, O_RDWR | O_CREAT | O_TRUNC);
    file.write("0123456789");
    file.write_at("abc", 3, 2);
    file.sync_data();
    char buffer[16] = {};
    EXPECT_EQ(file.read_at(buffer, 10, 0), 10u);
    EXPECT_EQ(std::string(buffer, 10), "01abc56789");
    EXPECT_EQ(file.read_at(buffer, 4, 8), 2u);
    const auto status = file.status();
    EXPECT_EQ(status.size, 10u);
    EXPECT_TRUE(status.is_regular());
  });
}

TEST_F(Files, ErrorsNameTheOperationAndThePath) {
  run_in_loop([&] {
    try {
      File::open("/nonexistent/heddle/file");
      ADD_FAILURE() << "opened a file that does not exist";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ENOENT);
      EXPECT_NE(std::string(e.what()).find("File::open /nonexistent/heddle/file"), std::string::npos) << e.what();
    }
    EXPECT_THROW(heddle::io::status("/nonexistent/heddle/file"), std::system_error);
    auto file = File::open("/tmp", O_RDONLY | O_DIRECTORY);
    EXPECT_TRUE(file.status().is_directory());
    char byte;
    try {
      file.read(&byte, 1);
      ADD_FAILURE() << "read a directory";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EISDIR);
    }
  });
}

TEST_F(Files, ManyTasksReadOneFileAtOnce) {
  run_in_loop([&] {
    {
      auto file = File::create(path_);
      std::string text;
      for (int i = 0; i < 4096; ++i) text += static_cast<char>('a' + i % 26);
      file.write(text);
    }
    auto file = File::open(path_);
    std::vector<heddle::Task<void>> readers;
    for (int t = 0; t < 64; ++t) {
      readers.push_back(heddle::spawn([&file, t] {
        char buffer[16];
        const std::uint64_t offset = static_cast<std::uint64_t>(t) * 61;
        ASSERT_EQ(file.read_at(buffer, 16, offset), 16u);
        for (int i = 0; i < 16; ++i) EXPECT_EQ(buffer[i], static_cast<char>('a' + (offset + i) % 26));
      }));
    }
    for (auto& reader : readers) reader.join();
  });
}

TEST(Signals, ASignalWakesTheTaskWaitingForIt) {
  run_in_loop([] {
    heddle::io::SignalSet signals{SIGUSR1, SIGUSR2};
    int got = 0;
    auto waiter = heddle::spawn([&] { got = signals.wait(); });
    EXPECT_EQ(got, 0) << "nothing sent yet";
    ASSERT_EQ(::raise(SIGUSR2), 0);  // to this thread, where it is blocked
    waiter.join();
    EXPECT_EQ(got, SIGUSR2);
  });
}

TEST(Signals, WaitingForASignalIsCancellable) {
  run_in_loop([] {
    heddle::io::SignalSet signals{SIGUSR1};
    auto waiter = heddle::spawn([&] { signals.wait(); });
    waiter.cancel();
    EXPECT_THROW(waiter.join(), heddle::Cancelled);
  });
}

TEST(Signals, InvalidSignalNumbersAreRejected) {
  EXPECT_THROW(heddle::io::SignalSet({0}), std::invalid_argument);
  EXPECT_THROW(heddle::io::SignalSet({SIGKILL}), std::invalid_argument);
  EXPECT_THROW(heddle::io::SignalSet({999}), std::invalid_argument);
}

}  // namespace
