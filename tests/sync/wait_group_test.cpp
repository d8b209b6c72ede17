// WaitGroup between tasks: waiting for a count, reuse, cancellation, bad input.
#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/wait_group.hpp"

namespace {

TEST(WaitGroup, WaitWithNothingToWaitForReturnsAtOnce) {
  heddle::WaitGroup group;
  group.wait();  // on a thread: would block forever if it waited
  auto task = heddle::spawn([&] { group.wait(); });
  EXPECT_TRUE(task.finished());
  task.join();
}

TEST(WaitGroup, WaitersAreReleasedWhenTheCountReachesZero) {
  heddle::WaitGroup group;
  group.add(3);
  int released = 0;
  std::vector<heddle::Task<void>> waiters;
  for (int i = 0; i < 4; ++i) waiters.push_back(heddle::spawn([&] { group.wait(); ++released; }));
  EXPECT_EQ(group.waiters(), 4u);
  group.done();
  group.done();
  EXPECT_EQ(released, 0);
  EXPECT_EQ(group.count(), 1);
  group.done();
  EXPECT_EQ(released, 4);
  EXPECT_EQ(group.waiters(), 0u);
  for (auto& t : waiters) t.join();
}

TEST(WaitGroup, IsReusableAfterReachingZero) {
  heddle::WaitGroup group;
  for (int round = 0; round < 3; ++round) {
    group.add(2);
    bool released = false;
    auto waiter = heddle::spawn([&] { group.wait(); released = true; });
    group.done();
    EXPECT_FALSE(released) << "round " << round;
    group.done();
    EXPECT_TRUE(released) << "round " << round;
    waiter.join();
  }
}

TEST(WaitGroup, WorkersSignalDoneAndTheWaiterSeesAllTheirWork) {
  heddle::WaitGroup group;
  heddle::WaitGroup start;
  start.add(1);
  int finished = 0;
  std::vector<heddle::Task<void>> workers;
  group.add(5);
  for (int i = 0; i < 5; ++i) {
    workers.push_back(heddle::spawn([&] {
      start.wait();
      ++finished;
      group.done();
    }));
  }
  int seen = -1;
  auto waiter = heddle::spawn([&] {
    group.wait();
    seen = finished;
  });
  start.done();
  EXPECT_EQ(seen, 5);
  waiter.join();
  for (auto& t : workers) t.join();
}

TEST(WaitGroup, CancelledWaiterLeavesAndTheOthersAreStillReleased) {
  heddle::WaitGroup group;
  group.add(1);
  int released = 0;
  auto cancelled = heddle::spawn([&] { group.wait(); ++released; });
  auto other = heddle::spawn([&] { group.wait(); ++released; });
  cancelled.cancel();
  EXPECT_EQ(group.waiters(), 1u);
  EXPECT_THROW(cancelled.join(), heddle::Cancelled);
  EXPECT_EQ(group.count(), 1);  // the waiter's leaving changed nothing
  group.done();
  EXPECT_EQ(released, 1);
  other.join();
}

TEST(WaitGroup, BadInputThrowsAndChangesNothing) {
  heddle::WaitGroup group;
  try {
    group.done();
    FAIL() << "done() below zero did not throw";
  } catch (const std::logic_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("heddle::WaitGroup::done"), std::string::npos) << what;
    EXPECT_NE(what.find("below zero"), std::string::npos) << what;
  }
  EXPECT_EQ(group.count(), 0);
  group.add(2);
  EXPECT_THROW(group.add(-3), std::logic_error);
  EXPECT_EQ(group.count(), 2);
  EXPECT_THROW(group.add(std::numeric_limits<std::int64_t>::max()), std::logic_error);
  EXPECT_EQ(group.count(), 2);
  group.add(-2);
  EXPECT_EQ(group.count(), 0);
  EXPECT_THROW(heddle::WaitGroup(-1), std::invalid_argument);
}

TEST(WaitGroupDeathTest, DestroyingAWaitGroupWithWaitersAborts) {
  EXPECT_DEATH(
      {
        auto* group = new heddle::WaitGroup(1);
        heddle::spawn([group] { group->wait(); }, {.name = "waiter"}).detach();
        delete group;
      },
      "heddle::WaitGroup at 0x[0-9a-f]+ destroyed while 1 waiter is parked on it; the first: task [0-9]+ \"waiter\" spawned at .*wait_group_test.cpp:[0-9]+");
}

}  // namespace
