// Mutex between tasks (no scheduler: a wake-up runs the woken task inline on
// the waker): FIFO hand-off, cancellation, ownership errors.
#include <gtest/gtest.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/event.hpp"
#include "heddle/sync/mutex.hpp"

namespace {

TEST(Mutex, LockTryLockUnlockAndStandardGuards) {
  heddle::Mutex mutex;
  mutex.lock();
  EXPECT_TRUE(mutex.held_by_caller());
  EXPECT_FALSE(mutex.try_lock());
  mutex.unlock();
  EXPECT_FALSE(mutex.held_by_caller());
  ASSERT_TRUE(mutex.try_lock());
  mutex.unlock();
  {
    std::lock_guard guard(mutex);
    EXPECT_TRUE(mutex.held_by_caller());
  }
  {
    std::unique_lock lock(mutex);
    lock.unlock();
    EXPECT_TRUE(mutex.try_lock());
    mutex.unlock();
  }
  heddle::Mutex other;
  {
    std::scoped_lock both(mutex, other);
    EXPECT_TRUE(mutex.held_by_caller());
    EXPECT_TRUE(other.held_by_caller());
  }
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
}

TEST(Mutex, WaitingTasksGetTheMutexInArrivalOrder) {
  heddle::Mutex mutex;
  std::vector<int> order;
  std::vector<heddle::Task<void>> tasks;
  mutex.lock();  // held by this thread
  for (int i = 0; i < 5; ++i) {
    tasks.push_back(heddle::spawn([&, i] {
      std::lock_guard guard(mutex);
      order.push_back(i);
    }));
  }
  EXPECT_EQ(mutex.waiters(), 5u);
  EXPECT_TRUE(order.empty());
  mutex.unlock();  // hands over to task 0, which hands to 1, ... all inline
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(mutex.waiters(), 0u);
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
  for (auto& t : tasks) t.join();
}

// The mutex is handed over, never freed, while someone waits: a caller that
// tries right after the unlock finds it taken by the waiter.
TEST(Mutex, UnlockHandsOverSoTheMutexIsNeverFreeInBetween) {
  heddle::Mutex mutex;
  heddle::Event release_it;
  bool waiter_has_it = false;
  mutex.lock();
  auto waiter = heddle::spawn([&] {
    std::lock_guard guard(mutex);
    waiter_has_it = true;
    release_it.wait();  // parks while holding the mutex
  });
  mutex.unlock();
  EXPECT_TRUE(waiter_has_it);
  EXPECT_FALSE(mutex.try_lock());  // a barger cannot take it
  release_it.set();
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
  waiter.join();
}

// Fairness bound: with one waiter queued, new lockers arriving all the time
// cannot take the mutex before it: it gets the mutex at the very next unlock.
TEST(Mutex, AQueuedWaiterGetsTheMutexAtTheNextUnlockDespiteNewLockers) {
  heddle::Mutex mutex;
  std::vector<std::string> log;
  mutex.lock();
  auto waiter = heddle::spawn([&] {
    std::lock_guard guard(mutex);
    log.push_back("waiter");
  });
  // Newcomers arrive after it (each tries first, then queues).
  std::vector<heddle::Task<void>> newcomers;
  for (int i = 0; i < 3; ++i) {
    newcomers.push_back(heddle::spawn([&] {
      if (!mutex.try_lock()) mutex.lock();
      log.push_back("newcomer");
      mutex.unlock();
    }));
  }
  mutex.unlock();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log.front(), "waiter");
  waiter.join();
  for (auto& t : newcomers) t.join();
}

TEST(Mutex, CancelledWaiterLeavesTheQueueAndNeverGetsTheMutex) {
  heddle::Mutex mutex;
  bool cancelled_got_it = false;
  bool other_got_it = false;
  mutex.lock();
  auto cancelled = heddle::spawn([&] {
    std::lock_guard guard(mutex);
    cancelled_got_it = true;
  });
  auto other = heddle::spawn([&] {
    std::lock_guard guard(mutex);
    other_got_it = true;
  });
  EXPECT_EQ(mutex.waiters(), 2u);
  cancelled.cancel();
  EXPECT_EQ(mutex.waiters(), 1u);
  EXPECT_THROW(cancelled.join(), heddle::Cancelled);
  mutex.unlock();  // goes to `other`, not lost on the cancelled waiter
  EXPECT_TRUE(other_got_it);
  EXPECT_FALSE(cancelled_got_it);
  other.join();
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
}

TEST(Mutex, CancellingTheOnlyWaiterLeavesTheMutexWithItsHolder) {
  heddle::Mutex mutex;
  mutex.lock();
  auto waiter = heddle::spawn([&] { mutex.lock(); });
  waiter.cancel();
  EXPECT_THROW(waiter.join(), heddle::Cancelled);
  EXPECT_TRUE(mutex.held_by_caller());
  EXPECT_FALSE(mutex.try_lock());
  mutex.unlock();  // nobody to hand over to: free
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
}

TEST(Mutex, LockIsACancellationPointWhenItMustWait) {
  heddle::Mutex mutex;
  mutex.lock();
  auto task = heddle::spawn([&] {
    heddle::this_task::cancel();
    mutex.lock();
  });
  EXPECT_THROW(task.join(), heddle::Cancelled);
  EXPECT_EQ(mutex.waiters(), 0u);
  mutex.unlock();
}

TEST(Mutex, UnlockByANonOwnerThrows) {
  heddle::Mutex mutex;
  try {
    mutex.unlock();
    FAIL() << "unlock of a free mutex did not throw";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("heddle::Mutex::unlock"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not held by the caller"), std::string::npos) << e.what();
  }
  mutex.lock();  // held by this thread; a task is someone else
  auto task = heddle::spawn([&] { EXPECT_THROW(mutex.unlock(), std::logic_error); });
  task.join();
  EXPECT_TRUE(mutex.held_by_caller());  // the failed unlock changed nothing
  mutex.unlock();
}

TEST(Mutex, OwnershipFollowsTheTaskNotTheThread) {
  heddle::Mutex mutex;
  auto owner = heddle::spawn([&] { mutex.lock(); });  // finishes holding it
  owner.join();
  EXPECT_THROW(mutex.unlock(), std::logic_error);  // this thread is not the owner
  EXPECT_FALSE(mutex.try_lock());
}

TEST(Mutex, LockingTwiceThrowsInsteadOfDeadlocking) {
  heddle::Mutex mutex;
  mutex.lock();
  try {
    mutex.lock();
    FAIL() << "relocking did not throw";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("already holds"), std::string::npos) << e.what();
  }
  auto task = heddle::spawn([&] {
    heddle::Mutex own;
    own.lock();
    EXPECT_THROW(own.lock(), std::logic_error);
    own.unlock();
  });
  task.join();
  mutex.unlock();
}

TEST(MutexDeathTest, DestroyingAMutexWithWaitersAborts) {
  EXPECT_DEATH(
      {
        auto* mutex = new heddle::Mutex;
        mutex->lock();
        heddle::spawn([mutex] { mutex->lock(); }, {.name = "locker"}).detach();
        delete mutex;
      },
      "heddle::Mutex at 0x[0-9a-f]+ destroyed while 1 waiter is parked on it; the first: task [0-9]+ \"locker\" spawned at .*mutex_test.cpp:[0-9]+");
}

}  // namespace
