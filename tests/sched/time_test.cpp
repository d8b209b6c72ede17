// Time on a Loop and without one: sleeps in order and never early, prompt
// cancellation, deadlines that nest, callback timers.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sched/time.hpp"
#include "heddle/sync/event.hpp"

namespace {

using namespace std::chrono_literals;
using heddle::Clock;

TEST(Time, SleepsFireInDeadlineOrderAndNeverEarly) {
  heddle::Loop loop;
  std::mt19937 random(42);
  const auto start = Clock::now();
  struct Wake {
    int index;
    Clock::time_point deadline;
    Clock::time_point woke;
  };
  std::vector<Wake> wakes;
  std::vector<heddle::Task<void>> tasks;
  for (int i = 0; i < 200; ++i) {
    const auto deadline = start + std::chrono::microseconds(random() % 30000);
    tasks.push_back(loop.spawn([&wakes, i, deadline] {
      heddle::sleep_until(deadline);
      wakes.push_back({i, deadline, Clock::now()});
    }));
  }
  loop.run();
  ASSERT_EQ(wakes.size(), 200u);
  for (std::size_t i = 0; i < wakes.size(); ++i) {
    EXPECT_GE(wakes[i].woke, wakes[i].deadline) << "task " << wakes[i].index << " woke early";
    if (i > 0) {
      EXPECT_LE(wakes[i - 1].deadline, wakes[i].deadline) << "out of order at " << i;
    }
  }
  for (auto& t : tasks) t.join();
}

TEST(Time, EqualDeadlinesFireInArmingOrder) {
  heddle::Loop loop;
  const auto deadline = Clock::now() + 5ms;
  std::vector<int> order;
  std::vector<heddle::Task<void>> tasks;
  for (int i = 0; i < 10; ++i) tasks.push_back(loop.spawn([&, i] { heddle::sleep_until(deadline); order.push_back(i); }));
  loop.run();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  for (auto& t : tasks) t.join();
}

TEST(Time, CancellingASleepReturnsPromptlyAndDisarmsTheTimer) {
  heddle::Loop loop;
  auto sleeper = loop.spawn([] { heddle::sleep_for(1h); });
  EXPECT_EQ(loop.armed_timers(), 1u);
  auto canceller = loop.spawn([&] {
    heddle::sleep_for(1ms);
    sleeper.cancel();
  });
  const auto start = Clock::now();
  loop.run();  // returns because the hour-long timer is gone
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_EQ(loop.armed_timers(), 0u);
  EXPECT_THROW(sleeper.join(), heddle::Cancelled);
  canceller.join();
}

TEST(Time, WithTimeoutCancelsSlowWorkAndThrowsTimedOut) {
  heddle::Loop loop;
  bool unwound = false;
  auto task = loop.spawn([&] {
    EXPECT_THROW(heddle::with_timeout(10ms,
                                      [&] {
                                        struct Guard {
                                          bool& flag;
                                          ~Guard() { flag = true; }
                                        } guard{unwound};
                                        heddle::sleep_for(1h);
                                      }),
                 heddle::TimedOut);
    return heddle::with_timeout(1h, [] { return 7; });  // fast work is unaffected
  });
  loop.run();
  EXPECT_TRUE(unwound);
  EXPECT_EQ(task.join(), 7);
}

TEST(Time, NestedDeadlinesTheTighterWins) {
  heddle::Loop loop;
  std::vector<std::string> log;
  auto task = loop.spawn([&] {
    try {
      heddle::with_timeout(20ms, [&] {
        try {
          heddle::with_timeout(1h, [] { heddle::sleep_for(1h); });  // the outer deadline is tighter
        } catch (const heddle::Cancelled&) {
          log.push_back("inner scope cancelled");
          throw;
        }
      });
    } catch (const heddle::TimedOut&) {
      log.push_back("outer timed out");
    }
    try {
      heddle::with_timeout(1h, [] { heddle::with_timeout(5ms, [] { heddle::sleep_for(1h); }); });
    } catch (const heddle::TimedOut&) {
      log.push_back("inner timed out");
    }
  });
  loop.run();
  EXPECT_EQ(log, (std::vector<std::string>{"inner scope cancelled", "outer timed out", "inner timed out"}));
  task.join();
}

TEST(Time, SleepInATaskWithNoSchedulerUsesTheTimerThread) {
  const auto start = Clock::now();
  auto task = heddle::spawn([] { heddle::sleep_for(20ms); return 1; });
  EXPECT_EQ(task.join(), 1);  // this thread blocks in join; the timer thread resumes the task
  EXPECT_GE(Clock::now() - start, 20ms);
}

TEST(Time, WithTimeoutFromAPlainThread) {
  heddle::Event never;
  EXPECT_THROW(heddle::with_timeout(10ms, [&] { never.wait(); }), heddle::TimedOut);
  EXPECT_EQ(never.waiters(), 0u);
  EXPECT_EQ(heddle::with_timeout(1h, [] { return 3; }), 3);
}

TEST(Time, CallbackTimersFireCancelAndRearm) {
  heddle::Loop loop;
  int fired = 0;
  heddle::Timer once, cancelled, periodic;
  auto count = [&] { ++fired; };
  int ticks = 0;
  auto tick = [&] {
    if (++ticks < 3) periodic.arm(Clock::now() + 1ms, [](void* t) { (*static_cast<decltype(ticks)*>(t))++; }, &ticks);
  };
  auto task = loop.spawn([&] {
    once.arm(Clock::now() + 2ms, count);
    cancelled.arm(Clock::now() + 2ms, count);
    EXPECT_TRUE(cancelled.cancel());
    periodic.arm(Clock::now() + 1ms, tick);
    heddle::sleep_for(20ms);
  });
  loop.run();
  EXPECT_EQ(fired, 1);
  EXPECT_GE(ticks, 2);
  EXPECT_FALSE(once.armed());
  task.join();
}

}  // namespace
