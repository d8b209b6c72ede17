// install_dump_on_signal, in a child process (dump_signal_helper.cpp): a
// SIGQUIT writes the task dump to stderr and the process keeps running.
// And dump_tasks racing other threads that spawn, park, run and finish tasks.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "heddle/core/dump.hpp"
#include "heddle/heddle.hpp"

extern char** environ;

namespace {

using heddle::Resumer;
using Clock = std::chrono::steady_clock;

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t count = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++count;
  return count;
}

class Helper {
 public:
  Helper() {
    int out[2];
    int err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    // The emulator's words (cross builds), then the helper.
    std::vector<std::string> words;
    std::istringstream emulator(HEDDLE_DUMP_SIGNAL_EMULATOR);
    for (std::string word; emulator >> word;) words.push_back(word);
    words.push_back(HEDDLE_DUMP_SIGNAL_HELPER);
    std::vector<char*> argv;
    for (std::string& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    const int error = posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
    if (error != 0) {
      pid_ = -1;
      throw std::runtime_error("posix_spawn " HEDDLE_DUMP_SIGNAL_HELPER ": " + std::to_string(error));
    }
  }
  ~Helper() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
    ::close(err_);
  }
  Helper(const Helper&) = delete;
  Helper& operator=(const Helper&) = delete;

  // Reads `fd` into `text` until it holds `count` copies of `needle`, the
  // stream ends, or `seconds` pass. True when found.
  static bool read_until(int fd, std::string& text, const std::string& needle, std::size_t count, int seconds) {
    const auto deadline = Clock::now() + std::chrono::seconds(seconds);
    while (count_of(text, needle) < count) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return false;
      char buffer[4096];
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      text.append(buffer, static_cast<std::size_t>(n));
    }
    return true;
  }

  pid_t pid() const noexcept { return pid_; }
  int out() const noexcept { return out_; }
  int err() const noexcept { return err_; }
  bool alive() const noexcept {
    int status = 0;
    return ::waitpid(pid_, &status, WNOHANG) == 0;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
};

TEST(DumpSignal, SigquitWritesTheDumpToStderrAndTheProcessKeepsRunning) {
  Helper helper;
  std::string out;
  ASSERT_TRUE(Helper::read_until(helper.out(), out, "ready\n", 1, 120)) << "helper printed: " << out;
  std::string err;
  const std::string end = "heddle: end of task dump\n";
  ASSERT_EQ(::kill(helper.pid(), SIGQUIT), 0);
  ASSERT_TRUE(Helper::read_until(helper.err(), err, end, 1, 120)) << "helper's stderr: " << err;
  EXPECT_NE(err.find("\"helper-sleeper\": parked at heddle::sleep_until\n"), std::string::npos) << err;
  EXPECT_NE(err.find("\"helper-waiter\": parked at heddle::sync wait\n"), std::string::npos) << err;
  EXPECT_NE(err.find("dump_helper_sleeps_for_an_hour"), std::string::npos) << err;
  EXPECT_NE(err.find("dump_helper_waits_for_an_event"), std::string::npos) << err;
  EXPECT_NE(err.find("heddle::Event::wait"), std::string::npos) << err;
  EXPECT_TRUE(helper.alive()) << "SIGQUIT must not end the process once the dump is installed";

  // Again: the handler stays installed and the dump thread keeps serving.
  ASSERT_EQ(::kill(helper.pid(), SIGQUIT), 0);
  ASSERT_TRUE(Helper::read_until(helper.err(), err, end, 2, 120)) << "helper's stderr: " << err;
  EXPECT_EQ(count_of(err, "\"helper-sleeper\": parked at heddle::sleep_until\n"), 2u) << err;
  EXPECT_TRUE(helper.alive());

  ASSERT_EQ(::kill(helper.pid(), SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(helper.pid(), &status, 0), helper.pid());
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
}

__attribute__((noinline)) void dump_churn_parks(Resumer& slot) {
  heddle::suspend([&](const Resumer& r) { slot = r; });
  asm volatile("");
}

TEST(DumpSignal, DumpWhileOtherThreadsSpawnParkRunAndFinishTasks) {
  std::atomic<bool> stop{false};
  std::atomic<std::uint32_t> busy_thread{0};
  std::atomic<bool> busy_running{false};
  // A task that stays running on another thread.
  std::thread busy([&] {
    busy_thread.store(static_cast<std::uint32_t>(::gettid()));
    auto task = heddle::spawn(
        [&] {
          busy_running.store(true);
          while (!stop.load()) std::this_thread::yield();
        },
        {.name = "dump-busy"});
    task.join();
  });
  // Tasks born, parked, resumed and finished as fast as one thread can.
  std::atomic<long> cycles{0};
  std::thread churn([&] {
    while (!stop.load()) {
      Resumer parked;
      auto task = heddle::spawn([&] { dump_churn_parks(parked); }, {.name = "dump-churn"});
      parked.resume();
      task.join();
      cycles.fetch_add(1);
    }
  });
  while (!busy_running.load()) std::this_thread::yield();
  const std::string running = "\"dump-busy\": running on thread " + std::to_string(busy_thread.load()) + "\n";
  int dumps = 0;
  int churn_seen = 0;
  const auto until = Clock::now() + std::chrono::milliseconds(500);
  while (Clock::now() < until || dumps < 5) {
    std::ostringstream out;
    heddle::dump_tasks(out);
    const std::string text = out.str();
    ++dumps;
    ASSERT_NE(text.find("heddle: end of task dump\n"), std::string::npos) << text;
    ASSERT_NE(text.find(running), std::string::npos) << text;
    if (text.find("\"dump-churn\": ") != std::string::npos) ++churn_seen;
  }
  stop.store(true);
  busy.join();
  churn.join();
  std::printf("%d dumps (%d caught a churning task) during %ld spawn/park/resume/join cycles on another thread\n",
              dumps, churn_seen, cycles.load());
}

}  // namespace
