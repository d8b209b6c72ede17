// Cluster: one Loop per thread, pinning, cross-loop channels and spawns,
// failure and stop() stopping every loop, bad options.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "heddle/sched/cluster.hpp"
#include "heddle/sync/channel.hpp"
#include "heddle/sync/event.hpp"

namespace heddle {
namespace {

std::size_t allowed_cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  return static_cast<std::size_t>(CPU_COUNT(&set));
}

TEST(Cluster, EveryLoopRunsOnItsOwnThread) {
  Cluster cluster({.threads = 3, .pin = false});
  EXPECT_EQ(cluster.size(), 3u);
  std::mutex mutex;
  std::set<pid_t> threads;
  std::set<std::size_t> indexes;
  cluster.run([&](Loop& loop, std::size_t index) {
    EXPECT_EQ(Loop::current(), &loop);
    EXPECT_EQ(&cluster.loop(index), &loop);
    std::lock_guard lock(mutex);
    threads.insert(gettid());
    indexes.insert(index);
  });
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_EQ(indexes, (std::set<std::size_t>{0, 1, 2}));
  EXPECT_EQ(threads.count(gettid()), 0u) << "run() must not use the caller's thread for a loop";
}

TEST(Cluster, PinnedLoopsRunOnTheirCpus) {
  const std::size_t threads = std::min<std::size_t>(2, allowed_cpu_count());
  Cluster cluster({.threads = threads, .pin = true});
  std::atomic<int> on_their_cpu{0};
  cluster.run([&](Loop&, std::size_t index) {
    if (sched_getcpu() == cluster.cpu(index)) ++on_their_cpu;
  });
  EXPECT_EQ(on_their_cpu.load(), static_cast<int>(threads));
  EXPECT_NE(cluster.cpu(0), -1);
}

TEST(Cluster, ChannelsCarryMessagesBetweenLoops) {
  Cluster cluster({.threads = 2, .pin = false});
  Channel<long> to_one(16), to_zero(16);
  long sum = 0;
  constexpr long kMessages = 10'000;
  cluster.run([&](Loop&, std::size_t index) {
    if (index == 0) {
      auto sender = spawn([&] {
        for (long i = 1; i <= kMessages; ++i) ASSERT_TRUE(to_one.send(i));
        to_one.close();
      });
      while (auto v = to_zero.receive()) sum += *v;
      sender.join();
    } else {
      while (auto v = to_one.receive()) ASSERT_TRUE(to_zero.send(*v * 2));
      to_zero.close();
    }
  });
  EXPECT_EQ(sum, kMessages * (kMessages + 1));  // 2 * (1 + ... + n)
}

TEST(Cluster, SpawnOnAnotherLoopRunsOnItsThread) {
  Cluster cluster({.threads = 2, .pin = false});
  std::atomic<pid_t> loop_one_thread{0}, spawned_thread{0};
  Event ready, done;
  cluster.run([&](Loop&, std::size_t index) {
    if (index == 1) {
      loop_one_thread = gettid();
      ready.set();
      done.wait();  // a loop with no task left returns: keep this one alive meanwhile
      return;
    }
    ready.wait();
    auto remote = cluster.loop(1).spawn([&] { spawned_thread = gettid(); });
    remote.join();  // parks this task until loop 1 has run it
    done.set();
  });
  EXPECT_EQ(spawned_thread.load(), loop_one_thread.load());
}

TEST(Cluster, AnExceptionStopsEveryLoopAndIsRethrown) {
  Cluster cluster({.threads = 2, .pin = false});
  Event never;
  std::atomic<bool> unwound{false};
  EXPECT_THROW(cluster.run([&](Loop&, std::size_t index) {
    if (index == 0) throw std::runtime_error("loop 0 failed");
    struct Flag {
      std::atomic<bool>& set;
      ~Flag() { set = true; }
    } flag{unwound};
    never.wait();  // cancelled when loop 0 fails
  }), std::runtime_error);
  EXPECT_TRUE(unwound.load());
}

TEST(Cluster, StopFromAnotherThreadEndsRun) {
  Cluster cluster({.threads = 2, .pin = false});
  Event never;
  std::atomic<int> parked{0}, unwound{0};
  std::thread stopper([&] {
    while (parked.load() != 2) std::this_thread::yield();
    cluster.stop();
  });
  cluster.run([&](Loop&, std::size_t) {
    struct Count {
      std::atomic<int>& n;
      ~Count() { ++n; }
    } count{unwound};
    ++parked;
    never.wait();
  });
  stopper.join();
  EXPECT_EQ(unwound.load(), 2);
  // The cluster can run again afterwards.
  std::atomic<int> ran{0};
  cluster.run([&](Loop&, std::size_t) { ++ran; });
  EXPECT_EQ(ran.load(), 2);
}

TEST(Cluster, BadOptionsAreRejected) {
  EXPECT_THROW(Cluster({.threads = allowed_cpu_count() + 1, .pin = true}), std::invalid_argument);
  EXPECT_THROW(Cluster({.threads = 5000, .pin = false}), std::invalid_argument);
}

}  // namespace
}  // namespace heddle
