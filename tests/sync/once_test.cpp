// Once between tasks: runs once, callers wait for the runner, a failed run
// passes to the next caller, cancellation, recursion.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/event.hpp"
#include "heddle/sync/once.hpp"

namespace {

TEST(Once, RunsOnceAndForwardsArguments) {
  heddle::Once once;
  int runs = 0;
  EXPECT_FALSE(once.is_done());
  once.call_once([&](int by) { runs += by; }, 2);
  EXPECT_TRUE(once.is_done());
  once.call_once([&](int by) { runs += by; }, 5);
  EXPECT_EQ(runs, 2);
}

TEST(Once, CallersArrivingDuringTheRunWaitForIt) {
  heddle::Once once;
  heddle::Event finish;
  int runs = 0;
  int value = 0;
  auto init = [&] {
    ++runs;
    finish.wait();  // the runner parks in the middle of f
    value = 42;
  };
  std::vector<heddle::Task<int>> callers;
  for (int i = 0; i < 4; ++i) {
    callers.push_back(heddle::spawn([&] {
      once.call_once(init);
      return value;
    }));
  }
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(once.waiters(), 3u);
  EXPECT_FALSE(once.is_done());
  finish.set();
  EXPECT_TRUE(once.is_done());
  for (auto& c : callers) EXPECT_EQ(c.join(), 42);
  EXPECT_EQ(runs, 1);
}

TEST(Once, AFailedRunPropagatesAndTheNextWaiterRunsIt) {
  heddle::Once once;
  heddle::Event finish;
  std::vector<std::string> ran;
  auto failing = heddle::spawn([&] {
    once.call_once([&] {
      ran.push_back("first");
      finish.wait();
      throw std::runtime_error("init failed");
    });
  });
  auto second = heddle::spawn([&] { once.call_once([&] { ran.push_back("second"); }); });
  auto third = heddle::spawn([&] { once.call_once([&] { ran.push_back("third"); }); });
  EXPECT_EQ(once.waiters(), 2u);
  finish.set();
  EXPECT_THROW(failing.join(), std::runtime_error);
  EXPECT_EQ(ran, (std::vector<std::string>{"first", "second"}));
  EXPECT_TRUE(once.is_done());
  second.join();
  third.join();
}

TEST(Once, AFailedRunWithNoWaitersLeavesItToTheNextCaller) {
  heddle::Once once;
  EXPECT_THROW(once.call_once([] { throw std::runtime_error("no"); }), std::runtime_error);
  EXPECT_FALSE(once.is_done());
  int runs = 0;
  once.call_once([&] { ++runs; });
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(once.is_done());
}

TEST(Once, CancelledWaiterLeavesWithoutBeingOwedATurn) {
  heddle::Once once;
  heddle::Event finish;
  std::vector<std::string> ran;
  auto failing = heddle::spawn([&] {
    once.call_once([&] {
      finish.wait();
      throw std::runtime_error("init failed");
    });
  });
  auto cancelled = heddle::spawn([&] { once.call_once([&] { ran.push_back("cancelled"); }); });
  auto next = heddle::spawn([&] { once.call_once([&] { ran.push_back("next"); }); });
  cancelled.cancel();
  EXPECT_THROW(cancelled.join(), heddle::Cancelled);
  EXPECT_EQ(once.waiters(), 1u);
  finish.set();
  EXPECT_THROW(failing.join(), std::runtime_error);
  EXPECT_EQ(ran, (std::vector<std::string>{"next"}));
  next.join();
}

TEST(Once, ACancelledRunnerPassesTheRunOn) {
  heddle::Once once;
  heddle::Event never;
  bool second_ran = false;
  auto runner = heddle::spawn([&] { once.call_once([&] { never.wait(); }); });
  auto second = heddle::spawn([&] { once.call_once([&] { second_ran = true; }); });
  runner.cancel();  // f throws Cancelled: a failed run
  EXPECT_THROW(runner.join(), heddle::Cancelled);
  EXPECT_TRUE(second_ran);
  EXPECT_TRUE(once.is_done());
  second.join();
}

TEST(Once, CallingItselfFromItsOwnFunctionThrows) {
  heddle::Once once;
  try {
    once.call_once([&] { once.call_once([] {}); });
    FAIL() << "a recursive call_once did not throw";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("heddle::Once::call_once"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(once.is_done());  // the outer run failed with that error
  once.call_once([] {});
  EXPECT_TRUE(once.is_done());
}

TEST(OnceDeathTest, DestroyingAOnceWithWaitersAborts) {
  EXPECT_DEATH(
      {
        auto* once = new heddle::Once;
        auto* never = new heddle::Event;
        heddle::spawn([=] { once->call_once([=] { never->wait(); }); }).detach();
        heddle::spawn([=] { once->call_once([] {}); }, {.name = "second caller"}).detach();
        delete once;
      },
      "heddle::Once at 0x[0-9a-f]+ destroyed while 1 waiter is parked on it; the first: task [0-9]+ \"second caller\" spawned at .*once_test.cpp:[0-9]+");
}

}  // namespace
