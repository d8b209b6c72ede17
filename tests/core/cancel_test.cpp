// Cancellation: parked, self, nested (a child provokes its parent's
// cancellation), during join and select, withdrawal hooks, swallowing.
#include <gtest/gtest.h>

#include <exception>
#include <list>
#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"

namespace {

using heddle::Resumer;

struct SetOnDestroy {
  bool& flag;
  ~SetOnDestroy() { flag = true; }
};

// A toy wait list, the way a primitive keeps its waiters.
struct WaitList {
  std::list<Resumer> waiters;
  void wait() {
    std::list<Resumer>::iterator entry;
    heddle::suspend([&](const Resumer& r) { entry = waiters.insert(waiters.end(), r); },
                    [&]() noexcept { waiters.erase(entry); });
  }
  bool wake_one() {
    while (!waiters.empty()) {
      Resumer r = waiters.front();
      waiters.pop_front();
      if (r.resume()) return true;
    }
    return false;
  }
};

TEST(Cancel, ParkedTaskUnwindsFromItsSuspensionPoint) {
  bool destroyed = false;
  bool continued = false;
  Resumer parked;
  auto task = heddle::spawn([&] {
    SetOnDestroy guard{destroyed};
    heddle::suspend([&](const Resumer& r) { parked = r; });
    continued = true;
  });
  task.cancel();  // runs the unwinding now, on this thread
  EXPECT_TRUE(destroyed);
  EXPECT_FALSE(continued);
  EXPECT_TRUE(task.finished());
  EXPECT_THROW(task.join(), heddle::Cancelled);
}

TEST(Cancel, CancelHookWithdrawsTheWaiter) {
  WaitList list;
  auto a = heddle::spawn([&] { list.wait(); });
  auto b = heddle::spawn([&] { list.wait(); });
  ASSERT_EQ(list.waiters.size(), 2u);
  a.cancel();
  EXPECT_EQ(list.waiters.size(), 1u) << "the cancelled waiter must leave the wait list";
  EXPECT_TRUE(list.wake_one());
  EXPECT_TRUE(b.finished());
  EXPECT_THROW(a.join(), heddle::Cancelled);
  b.join();
}

TEST(Cancel, CancelAfterFinishIsANoOp) {
  auto task = heddle::spawn([] { return 3; });
  task.cancel();
  EXPECT_EQ(task.join(), 3);
}

TEST(Cancel, SelfCancelTakesEffectAtTheNextSuspensionPoint) {
  std::vector<int> steps;
  auto task = heddle::spawn([&] {
    steps.push_back(1);
    heddle::this_task::cancel();
    EXPECT_TRUE(heddle::this_task::cancel_requested());
    steps.push_back(2);  // still running: cancellation waits for a suspension point
    heddle::this_task::yield();
    steps.push_back(3);
  });
  EXPECT_EQ(steps, (std::vector<int>{1, 2}));
  EXPECT_THROW(task.join(), heddle::Cancelled);
}

TEST(Cancel, RunningTaskIsCancelledAtItsNextSuspension) {
  heddle::Task<void>* self_handle = nullptr;
  Resumer parked;
  int after = 0;
  heddle::Task<void> task = heddle::spawn([&] {
    heddle::suspend([&](const Resumer& r) { parked = r; });
    self_handle->cancel();  // the task is running: only marked
    ++after;
    heddle::suspend([&](const Resumer& r) { parked = r; });
    ++after;
  });
  self_handle = &task;
  parked.resume();
  EXPECT_EQ(after, 1);
  EXPECT_THROW(task.join(), heddle::Cancelled);
}

TEST(Cancel, UninterruptibleSuspensionDefersCancellation) {
  Resumer parked;
  std::vector<int> steps;
  auto task = heddle::spawn([&] {
    heddle::suspend_uninterruptible([&](const Resumer& r) { parked = r; });
    steps.push_back(1);
    heddle::this_task::yield();  // interruptible: the pending cancel lands here
    steps.push_back(2);
  });
  task.cancel();
  EXPECT_FALSE(task.finished());
  EXPECT_TRUE(parked.resume());
  EXPECT_EQ(steps, (std::vector<int>{1}));
  EXPECT_THROW(task.join(), heddle::Cancelled);
}

TEST(Cancel, CancellingAParentCancelsAndAwaitsItsChildren) {
  bool child_unwound = false;
  Resumer child_parked;
  auto parent = heddle::spawn([&] {
    auto child = heddle::spawn([&] {
      SetOnDestroy guard{child_unwound};
      heddle::suspend([&](const Resumer& r) { child_parked = r; });
    });
    child.join();  // the parent parks here
  });
  parent.cancel();  // cancel during join
  EXPECT_TRUE(child_unwound);
  EXPECT_TRUE(parent.finished());
  EXPECT_FALSE(child_parked.resume());
  EXPECT_THROW(parent.join(), heddle::Cancelled);
}

TEST(Cancel, ChildProvokesItsParentsCancellation) {
  // The seed's wrinkle: the child that causes the cancellation is running
  // (it is the one calling cancel) when its parent unwinds.
  heddle::Task<void>* parent_handle = nullptr;
  Resumer child_parked;
  std::vector<std::string> log;
  heddle::Task<void> parent = heddle::spawn([&] {
    auto child = heddle::spawn([&] {
      heddle::suspend([&](const Resumer& r) { child_parked = r; });
      log.push_back("child cancels parent");
      parent_handle->cancel();
      log.push_back("child continues");
      heddle::this_task::yield();  // the child is now cancelled too
      log.push_back("child after yield (must not happen)");
    });
    try {
      child.join();
    } catch (const heddle::Cancelled&) {
      log.push_back("parent unwinds");
      throw;
    }
  });
  parent_handle = &parent;
  EXPECT_TRUE(child_parked.resume());
  EXPECT_EQ(log, (std::vector<std::string>{"child cancels parent", "parent unwinds", "child continues"}));
  EXPECT_TRUE(parent.finished());
  EXPECT_THROW(parent.join(), heddle::Cancelled);
}

TEST(Cancel, CatchingCancelledWithoutRethrowIsReported) {
#ifdef NDEBUG
  const auto before = heddle::swallowed_cancellations();
  auto task = heddle::spawn([] {
    try {
      heddle::suspend([](const Resumer&) {});
    } catch (const heddle::Cancelled&) {
    }
  });
  task.cancel();
  task.join();
  EXPECT_EQ(heddle::swallowed_cancellations(), before + 1);
#else
  EXPECT_DEATH(
      {
        auto task = heddle::spawn(
            [] {
              try {
                heddle::suspend([](const Resumer&) {});
              } catch (...) {
              }
            },
            heddle::SpawnOptions{.name = "swallower"});
        task.cancel();
      },
      "task [0-9]+ \"swallower\" spawned at .*cancel_test.cpp:[0-9]+ caught heddle::Cancelled and finished normally");
#endif
}

TEST(Cancel, CancelledIsNotAStdException) {
  auto task = heddle::spawn([] {
    try {
      heddle::suspend([](const Resumer&) {});
    } catch (const std::exception&) {
      ADD_FAILURE() << "catch (std::exception&) must not catch heddle::Cancelled";
    }
  });
  task.cancel();
  EXPECT_THROW(task.join(), heddle::Cancelled);
}

// std::terminate in a task names the task, in every build: a destructor that
// throws while its task unwinds from Cancelled, and a plain
// std::terminate() with no exception.
struct ThrowsWhenDestroyed {
  ~ThrowsWhenDestroyed() noexcept(false) { throw std::runtime_error("the destructor failed"); }
};

TEST(CancelDeathTest, ADestructorThatThrowsWhileUnwindingNamesTheTask) {
  EXPECT_DEATH(
      {
        WaitList list;
        auto task = heddle::spawn(
            [&] {
              ThrowsWhenDestroyed guard;
              list.wait();
            },
            {.name = "unwinder"});
        task.cancel();
      },
      "heddle: task [0-9]+ \"unwinder\" spawned at .*cancel_test.cpp:[0-9]+: terminate called after throwing an "
      "exception: the destructor failed");
}

TEST(CancelDeathTest, TerminateWithoutAnExceptionInATaskNamesTheTask) {
  EXPECT_DEATH(heddle::spawn([] { std::terminate(); }, {.name = "terminator"}).join(),
               "heddle: task [0-9]+ \"terminator\" spawned at .*cancel_test.cpp:[0-9]+: terminate called "
               "without an active exception");
}

}  // namespace
