// Loop and other threads: remote wake-ups, spawns and timers.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sched/time.hpp"
#include "heddle/sync/event.hpp"

namespace {

using namespace std::chrono_literals;

TEST(LoopThreads, AnotherThreadsWakeRunsTheTaskOnTheLoopThread) {
  heddle::Loop loop;
  heddle::Event event;
  std::thread::id ran_on;
  auto task = loop.spawn([&] {
    event.wait();
    ran_on = std::this_thread::get_id();
  });
  std::thread setter([&] {
    while (event.waiters() == 0) std::this_thread::yield();
    event.set();
  });
  loop.run();
  setter.join();
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  task.join();
}

TEST(LoopThreads, SpawnFromAnotherThreadStartsOnTheLoop) {
  heddle::Loop loop;
  std::atomic<int> ran{0};
  std::thread::id ran_on;
  heddle::Event keep_alive;
  auto anchor = loop.spawn([&] { keep_alive.wait(); });  // keeps run() going
  std::thread other([&] {
    auto task = loop.spawn([&] {
      ran_on = std::this_thread::get_id();
      ++ran;
    });
    task.join();  // this thread blocks until the loop has run it
    keep_alive.set();
  });
  loop.run();
  other.join();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  anchor.join();
}

TEST(LoopThreads, ManyCrossThreadWakeupsAreNeverLost) {
  constexpr int kRounds = 20000;
  heddle::Loop loop;
  heddle::Event ping(heddle::Event::Reset::automatic), pong(heddle::Event::Reset::automatic);
  int received = 0;
  auto task = loop.spawn([&] {
    for (int i = 0; i < kRounds; ++i) {
      ping.wait();
      ++received;
      pong.set();
    }
  });
  std::thread peer([&] {
    for (int i = 0; i < kRounds; ++i) {
      ping.set();
      pong.wait();
    }
  });
  loop.run();
  peer.join();
  EXPECT_EQ(received, kRounds);
  task.join();
}

TEST(LoopThreads, RunOnAnotherThreadAndStopFromOutside) {
  heddle::Loop loop;
  heddle::Event never;
  auto task = loop.spawn([&] { never.wait(); });
  std::thread runner([&] { loop.run(); });
  std::this_thread::sleep_for(10ms);
  loop.stop();
  runner.join();
  task.cancel();  // from a thread that is not the loop's: queued there
  std::thread drain([&] { loop.run(); });
  drain.join();
  EXPECT_THROW(task.join(), heddle::Cancelled);
}

// A task spawned on the loop from another thread before run() has never
// run: dropping its handle on the loop's thread runs the loop until it has
// started and unwound (it hung before: nobody ran the loop).
TEST(LoopThreads, DroppingTheHandleOfATaskThatNeverRanBeforeRunUnwindsIt) {
  heddle::Loop loop;
  heddle::Event never;
  std::atomic<bool> started{false};
  std::atomic<bool> finished_normally{false};
  heddle::Task<void> task;
  std::thread spawner([&] {
    task = loop.spawn([&] {
      started = true;
      never.wait();
      finished_normally = true;
    });
  });
  spawner.join();
  EXPECT_FALSE(started);
  EXPECT_EQ(loop.live_tasks(), 1u);
  task = heddle::Task<void>();
  EXPECT_TRUE(started);
  EXPECT_FALSE(finished_normally);
  EXPECT_EQ(loop.live_tasks(), 0u);
}

// While a dropped handle's destructor runs the loop to finish its task, a
// run() on another thread waits for it instead of failing as "already
// running" (then runs the loop itself).
TEST(LoopThreads, RunOnAnotherThreadWaitsForADroppedHandleFinishingItsTask) {
  heddle::Loop loop;
  heddle::Event never;
  std::atomic<bool> unwinding{false};
  std::atomic<bool> run_returned{false};
  std::atomic<bool> run_threw{false};
  auto task = loop.spawn([&] {
    struct SlowUnwind {
      std::atomic<bool>& unwinding;
      std::atomic<bool>& run_returned;
      ~SlowUnwind() {
        unwinding = true;
        for (int i = 0; i < 100 && !run_returned; ++i) std::this_thread::sleep_for(1ms);
      }
    } slow{unwinding, run_returned};
    never.wait();
  });
  std::thread runner([&] {
    while (!unwinding) std::this_thread::yield();
    try {
      loop.run();
    } catch (const std::logic_error&) {
      run_threw = true;
    }
    run_returned = true;
  });
  task = heddle::Task<void>();  // runs the loop here until the task has unwound
  runner.join();
  EXPECT_FALSE(run_threw);
  EXPECT_TRUE(run_returned);
  EXPECT_EQ(loop.live_tasks(), 0u);
}

}  // namespace
