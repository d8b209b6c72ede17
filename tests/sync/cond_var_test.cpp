// CondVar between tasks: notify_one / notify_all, the mutex released while
// waiting and held again on return, no lost notification while the waiter
// is releasing the mutex, cancellation, misuse.
#include <gtest/gtest.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/cond_var.hpp"
#include "heddle/sync/mutex.hpp"

namespace {

TEST(CondVar, WaitWithAPredicateReturnsOnceItHolds) {
  heddle::Mutex mutex;
  heddle::CondVar ready_changed;
  bool ready = false;
  bool consumer_done = false;
  auto consumer = heddle::spawn([&] {
    std::unique_lock lock(mutex);
    ready_changed.wait(lock, [&] { return ready; });
    EXPECT_TRUE(mutex.held_by_caller());
    consumer_done = true;
  });
  EXPECT_EQ(ready_changed.waiters(), 1u);
  EXPECT_TRUE(mutex.try_lock());  // the waiter released the mutex
  mutex.unlock();
  ready_changed.notify_one();  // predicate still false: waits again
  EXPECT_FALSE(consumer_done);
  {
    std::lock_guard guard(mutex);
    ready = true;
  }
  ready_changed.notify_one();
  EXPECT_TRUE(consumer_done);
  consumer.join();
}

TEST(CondVar, NotifyOneWakesOneInFifoOrderAndNotifyAllWakesTheRest) {
  heddle::Mutex mutex;
  heddle::CondVar condition;
  std::vector<int> woken;
  std::vector<heddle::Task<void>> tasks;
  for (int i = 0; i < 4; ++i) {
    tasks.push_back(heddle::spawn([&, i] {
      std::unique_lock lock(mutex);
      condition.wait(lock);
      woken.push_back(i);
    }));
  }
  EXPECT_EQ(condition.waiters(), 4u);
  condition.notify_one();
  EXPECT_EQ(woken, (std::vector<int>{0}));
  condition.notify_one();
  EXPECT_EQ(woken, (std::vector<int>{0, 1}));
  condition.notify_all();
  EXPECT_EQ(woken, (std::vector<int>{0, 1, 2, 3}));
  condition.notify_all();  // nobody left: nothing happens
  for (auto& t : tasks) t.join();
}

// The waiter's unlock hands the mutex to a task that notifies at once, before
// the waiter has parked: the notification must reach it.
TEST(CondVar, ANotificationWhileTheWaiterReleasesTheMutexIsNotLost) {
  heddle::Mutex mutex;
  heddle::CondVar condition;
  bool flag = false;
  bool waiter_done = false;
  auto waiter = heddle::spawn([&] {
    std::unique_lock lock(mutex);
    heddle::spawn([&] {  // queues on the mutex the waiter holds
      std::lock_guard guard(mutex);
      flag = true;
      condition.notify_one();
    }).detach();
    condition.wait(lock, [&] { return flag; });  // unlock runs the notifier inline
    waiter_done = true;
  });
  EXPECT_TRUE(waiter_done) << "the notification was lost: the waiter is still parked";
  if (!waiter_done) waiter.cancel();  // fail rather than hang
  try {
    waiter.join();
  } catch (const heddle::Cancelled&) {
  }
}

TEST(CondVar, CancelledWaiterUnwindsHoldingTheMutexAndTakesNoNotification) {
  heddle::Mutex mutex;
  heddle::CondVar condition;
  bool held_while_unwinding = false;
  bool other_woken = false;
  auto cancelled = heddle::spawn([&] {
    std::unique_lock lock(mutex);
    try {
      condition.wait(lock);
    } catch (const heddle::Cancelled&) {
      held_while_unwinding = mutex.held_by_caller();
      throw;
    }
  });
  auto other = heddle::spawn([&] {
    std::unique_lock lock(mutex);
    condition.wait(lock);
    other_woken = true;
  });
  EXPECT_EQ(condition.waiters(), 2u);
  cancelled.cancel();
  EXPECT_THROW(cancelled.join(), heddle::Cancelled);
  EXPECT_TRUE(held_while_unwinding);
  EXPECT_EQ(condition.waiters(), 1u);
  condition.notify_one();  // reaches `other`
  EXPECT_TRUE(other_woken);
  other.join();
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
}

// Cancelled while someone else holds the mutex: the waiter first waits
// (uninterruptibly) for the mutex, then unwinds.
TEST(CondVar, CancelledWaiterWaitsForTheMutexBeforeUnwinding) {
  heddle::Mutex mutex;
  heddle::CondVar condition;
  bool held_while_unwinding = false;
  auto waiter = heddle::spawn([&] {
    std::unique_lock lock(mutex);
    try {
      condition.wait(lock);
    } catch (const heddle::Cancelled&) {
      held_while_unwinding = mutex.held_by_caller();
      throw;
    }
  });
  mutex.lock();
  waiter.cancel();
  EXPECT_FALSE(waiter.finished());  // parked on the mutex, uninterruptibly
  EXPECT_EQ(mutex.waiters(), 1u);
  mutex.unlock();
  EXPECT_TRUE(waiter.finished());
  EXPECT_THROW(waiter.join(), heddle::Cancelled);
  EXPECT_TRUE(held_while_unwinding);
}

// A notified waiter always returns normally (holding the mutex) even when
// it is cancelled while it waits to take the mutex back.
TEST(CondVar, ANotifiedWaiterIsNotRobbedOfItsNotificationByACancel) {
  heddle::Mutex mutex;
  heddle::CondVar condition;
  bool returned = false;
  auto waiter = heddle::spawn([&] {
    std::unique_lock lock(mutex);
    condition.wait(lock);
    returned = true;
  });
  mutex.lock();
  condition.notify_one();  // the waiter now waits for the mutex
  waiter.cancel();
  mutex.unlock();
  EXPECT_TRUE(returned);
  EXPECT_NO_THROW(waiter.join());
}

TEST(CondVar, WaitWithoutHoldingTheMutexThrows) {
  heddle::Mutex mutex;
  heddle::CondVar condition;
  std::unique_lock<heddle::Mutex> not_owning(mutex, std::defer_lock);
  try {
    condition.wait(not_owning);
    FAIL() << "wait with an unlocked unique_lock did not throw";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("heddle::CondVar::wait"), std::string::npos) << e.what();
  }
  std::unique_lock<heddle::Mutex> empty;
  EXPECT_THROW(condition.wait(empty), std::logic_error);
  // Owns it on paper, but another task holds it.
  auto holder = heddle::spawn([&] { mutex.lock(); });
  holder.join();
  std::unique_lock<heddle::Mutex> adopted(mutex, std::adopt_lock);
  EXPECT_THROW(condition.wait(adopted), std::logic_error);
  (void)adopted.release();
  EXPECT_EQ(condition.waiters(), 0u);
}

TEST(CondVar, WaitUntilFromATaskThrows) {
  heddle::Mutex mutex;
  heddle::CondVar condition;
  auto task = heddle::spawn([&] {
    std::unique_lock lock(mutex);
    EXPECT_THROW(condition.wait_until(lock, std::chrono::steady_clock::now()), std::logic_error);
    EXPECT_TRUE(mutex.held_by_caller());
  });
  task.join();
}

TEST(CondVarDeathTest, DestroyingACondVarWithWaitersAborts) {
  EXPECT_DEATH(
      {
        auto* mutex = new heddle::Mutex;
        auto* condition = new heddle::CondVar;
        heddle::spawn([=] {
          std::unique_lock lock(*mutex);
          condition->wait(lock);
        }, {.name = "waiter"}).detach();
        delete condition;
      },
      "heddle::CondVar at 0x[0-9a-f]+ destroyed while 1 waiter is parked on it; the first: task [0-9]+ \"waiter\" spawned at .*cond_var_test.cpp:[0-9]+");
}

}  // namespace
