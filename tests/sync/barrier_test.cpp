// Barrier between tasks: phases, reuse, dropping out, the cancellation rule,
// bad input.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/barrier.hpp"

namespace {

TEST(Barrier, TheCountthArrivalReleasesThePhase) {
  heddle::Barrier barrier(3);
  int released = 0;
  auto a = heddle::spawn([&] { barrier.arrive_and_wait(); ++released; });
  auto b = heddle::spawn([&] { barrier.arrive_and_wait(); ++released; });
  EXPECT_EQ(barrier.waiters(), 2u);
  EXPECT_EQ(released, 0);
  EXPECT_EQ(barrier.phase(), 0u);
  barrier.arrive_and_wait();  // the third: releases and does not wait (this thread)
  EXPECT_EQ(released, 2);
  EXPECT_EQ(barrier.phase(), 1u);
  EXPECT_EQ(barrier.waiters(), 0u);
  a.join();
  b.join();
}

TEST(Barrier, ResetsForTheNextPhase) {
  constexpr int kParticipants = 4;
  constexpr int kPhases = 5;
  heddle::Barrier barrier(kParticipants);
  std::vector<int> arrivals(kPhases, 0);
  bool early = false;  // someone passed a phase before everyone arrived
  std::vector<heddle::Task<void>> tasks;
  for (int p = 0; p < kParticipants; ++p) {
    tasks.push_back(heddle::spawn([&] {
      for (int phase = 0; phase < kPhases; ++phase) {
        ++arrivals[phase];
        barrier.arrive_and_wait();
        if (arrivals[phase] != kParticipants) early = true;
      }
    }));
  }
  for (auto& t : tasks) t.join();
  EXPECT_FALSE(early);
  EXPECT_EQ(barrier.phase(), static_cast<std::uint64_t>(kPhases));
  for (int phase = 0; phase < kPhases; ++phase) EXPECT_EQ(arrivals[phase], kParticipants);
}

TEST(Barrier, ArriveAndDropCountsNowAndLowersTheCountForLaterPhases) {
  heddle::Barrier barrier(3);
  int released = 0;
  auto a = heddle::spawn([&] {
    barrier.arrive_and_wait();
    ++released;
    barrier.arrive_and_wait();  // phase 2: only two participants left
    ++released;
  });
  auto b = heddle::spawn([&] {
    barrier.arrive_and_wait();
    ++released;
  });
  barrier.arrive_and_drop();  // the third arrival of phase 1, and leaves
  EXPECT_EQ(released, 2);
  EXPECT_EQ(barrier.participants(), 2);
  EXPECT_EQ(barrier.waiters(), 1u);  // `a` waits in phase 2
  barrier.arrive_and_wait();
  EXPECT_EQ(released, 3);
  EXPECT_EQ(barrier.phase(), 2u);
  a.join();
  b.join();
}

TEST(Barrier, ADropCanCompleteThePhaseItLeaves) {
  heddle::Barrier barrier(2);
  bool released = false;
  auto a = heddle::spawn([&] { barrier.arrive_and_wait(); released = true; });
  barrier.arrive_and_drop();
  EXPECT_TRUE(released);
  EXPECT_EQ(barrier.participants(), 1);
  barrier.arrive_and_wait();  // alone now: passes at once
  EXPECT_EQ(barrier.phase(), 2u);
  a.join();
}

// The rule: a cancelled waiter withdraws its arrival; the phase still needs
// `count` arrivals.
TEST(Barrier, CancelledWaiterWithdrawsItsArrival) {
  heddle::Barrier barrier(3);
  int released = 0;
  auto a = heddle::spawn([&] { barrier.arrive_and_wait(); ++released; });
  auto cancelled = heddle::spawn([&] { barrier.arrive_and_wait(); ++released; });
  cancelled.cancel();
  EXPECT_THROW(cancelled.join(), heddle::Cancelled);
  EXPECT_EQ(barrier.waiters(), 1u);
  auto c = heddle::spawn([&] { barrier.arrive_and_wait(); ++released; });
  EXPECT_EQ(released, 0) << "the phase was released with a withdrawn arrival";
  EXPECT_EQ(barrier.phase(), 0u);
  barrier.arrive_and_wait();  // the third real arrival
  EXPECT_EQ(released, 2);
  EXPECT_EQ(barrier.phase(), 1u);
  a.join();
  c.join();
}

TEST(Barrier, BadInputThrows) {
  EXPECT_THROW(heddle::Barrier(0), std::invalid_argument);
  EXPECT_THROW(heddle::Barrier(-2), std::invalid_argument);
  heddle::Barrier barrier(1);
  barrier.arrive_and_drop();
  try {
    barrier.arrive_and_drop();
    FAIL() << "more drops than participants did not throw";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("heddle::Barrier::arrive_and_drop"), std::string::npos) << e.what();
  }
  EXPECT_THROW(barrier.arrive_and_wait(), std::logic_error);
  EXPECT_EQ(barrier.participants(), 0);
}

TEST(BarrierDeathTest, DestroyingABarrierWithWaitersAborts) {
  EXPECT_DEATH(
      {
        auto* barrier = new heddle::Barrier(2);
        heddle::spawn([barrier] { barrier->arrive_and_wait(); }, {.name = "arriver"}).detach();
        delete barrier;
      },
      "heddle::Barrier at 0x[0-9a-f]+ destroyed while 1 waiter is parked on it; the first: task [0-9]+ \"arriver\" spawned at .*barrier_test.cpp:[0-9]+");
}

}  // namespace
