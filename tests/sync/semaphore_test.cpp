// Semaphore between tasks: counting, FIFO hand-off of permits, cancellation,
// bad input.
#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/semaphore.hpp"

namespace {

TEST(Semaphore, CountsPermits) {
  heddle::Semaphore semaphore(2);
  EXPECT_EQ(semaphore.available(), 2);
  EXPECT_EQ(semaphore.max(), std::numeric_limits<std::ptrdiff_t>::max());
  semaphore.acquire();
  EXPECT_TRUE(semaphore.try_acquire());
  EXPECT_FALSE(semaphore.try_acquire());
  EXPECT_EQ(semaphore.available(), 0);
  semaphore.release(2);
  EXPECT_EQ(semaphore.available(), 2);
  semaphore.release(0);
  EXPECT_EQ(semaphore.available(), 2);
}

TEST(Semaphore, PermitsAreHandedToWaitersInFifoOrder) {
  heddle::Semaphore semaphore(0);
  std::vector<int> order;
  std::vector<heddle::Task<void>> tasks;
  for (int i = 0; i < 5; ++i) {
    tasks.push_back(heddle::spawn([&, i] {
      semaphore.acquire();
      order.push_back(i);
    }));
  }
  EXPECT_EQ(semaphore.waiters(), 5u);
  semaphore.release();
  EXPECT_EQ(order, (std::vector<int>{0}));
  semaphore.release(3);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(semaphore.available(), 0);  // handed over, never counted
  semaphore.release(2);                 // one to the last waiter, one left over
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(semaphore.available(), 1);
  for (auto& t : tasks) t.join();
}

// A permit released while someone waits goes to the waiter: a caller that
// tries right after cannot take it.
TEST(Semaphore, AReleasedPermitCannotBeTakenFromAWaiter) {
  heddle::Semaphore semaphore(0);
  heddle::Semaphore hold(0);
  bool waiter_got_it = false;
  auto waiter = heddle::spawn([&] {
    semaphore.acquire();
    waiter_got_it = true;
    hold.acquire();  // parks, still owning its permit
  });
  semaphore.release();
  EXPECT_TRUE(waiter_got_it);
  EXPECT_FALSE(semaphore.try_acquire());
  hold.release();
  waiter.join();
}

TEST(Semaphore, CancelledWaiterLeavesWithoutAPermit) {
  heddle::Semaphore semaphore(0);
  int got = 0;
  auto cancelled = heddle::spawn([&] {
    semaphore.acquire();
    got += 1;
  });
  auto other = heddle::spawn([&] {
    semaphore.acquire();
    got += 10;
  });
  cancelled.cancel();
  EXPECT_EQ(semaphore.waiters(), 1u);
  EXPECT_THROW(cancelled.join(), heddle::Cancelled);
  semaphore.release();
  EXPECT_EQ(got, 10);
  EXPECT_EQ(semaphore.available(), 0);
  other.join();
  semaphore.release();
  EXPECT_EQ(semaphore.available(), 1);  // nothing was kept by the cancelled waiter
}

TEST(Semaphore, AcquireIsACancellationPointWhenItMustWait) {
  heddle::Semaphore semaphore(0);
  auto task = heddle::spawn([&] {
    heddle::this_task::cancel();
    semaphore.acquire();
  });
  EXPECT_THROW(task.join(), heddle::Cancelled);
  EXPECT_EQ(semaphore.waiters(), 0u);
  EXPECT_EQ(semaphore.available(), 0);
}

TEST(Semaphore, BadInputThrows) {
  EXPECT_THROW(heddle::Semaphore(-1), std::invalid_argument);
  EXPECT_THROW(heddle::Semaphore(3, 2), std::invalid_argument);
  EXPECT_THROW(heddle::Semaphore(0, -1), std::invalid_argument);
  heddle::Semaphore semaphore(1, 2);
  EXPECT_THROW(semaphore.release(-1), std::invalid_argument);
  try {
    semaphore.release(2);
    FAIL() << "a release past max did not throw";
  } catch (const std::logic_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("heddle::Semaphore::release"), std::string::npos) << what;
    EXPECT_NE(what.find("count 1"), std::string::npos) << what;
    EXPECT_NE(what.find("n 2"), std::string::npos) << what;
    EXPECT_NE(what.find("max 2"), std::string::npos) << what;
  }
  EXPECT_EQ(semaphore.available(), 1);  // the failed release changed nothing
  semaphore.release();
  EXPECT_EQ(semaphore.available(), 2);
  EXPECT_THROW(semaphore.release(), std::logic_error);
}

TEST(SemaphoreDeathTest, DestroyingASemaphoreWithWaitersAborts) {
  EXPECT_DEATH(
      {
        auto* semaphore = new heddle::Semaphore(0);
        heddle::spawn([semaphore] { semaphore->acquire(); }, {.name = "acquirer"}).detach();
        delete semaphore;
      },
      "heddle::Semaphore at 0x[0-9a-f]+ destroyed while 1 waiter is parked on it; the first: task [0-9]+ \"acquirer\" spawned at .*semaphore_test.cpp:[0-9]+");
}

}  // namespace
