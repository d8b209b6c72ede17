// The C++ exception state (the caught-exception chain that `throw;` and
// std::current_exception read, and std::uncaught_exceptions) belongs to each
// task, not to the thread it runs on: tasks parked inside a catch block or
// in the middle of unwinding never see each other's exceptions.
#include <gtest/gtest.h>

#include <exception>
#include <stdexcept>
#include <string>

#include "exception_messages.hpp"
#include "heddle/heddle.hpp"

namespace {

using heddle::support::current_message;
using heddle::support::rethrown_message;

using heddle::Resumer;

void park(Resumer& slot) {
  heddle::suspend([&](const Resumer& r) { slot = r; });
}

// Throws `message`, parks inside the handler, and reports what the handler
// sees once resumed: `throw;` and std::current_exception must both name the
// task's own exception.
std::string catch_park_and_look(const char* message, Resumer& slot) {
  try {
    throw std::runtime_error(message);
  } catch (...) {
    park(slot);
    return current_message() + "/" + rethrown_message() + "/" + std::to_string(std::uncaught_exceptions());
  }
}

TEST(ExceptionState, TasksParkedInsideCatchBlocksEachSeeTheirOwnException) {
  Resumer ra, rb;
  auto a = heddle::spawn([&] { return catch_park_and_look("A", ra); });
  auto b = heddle::spawn([&] { return catch_park_and_look("B", rb); });
  // Both parked inside their handlers; this thread caught nothing.
  EXPECT_EQ(current_message(), "none");
  EXPECT_EQ(std::uncaught_exceptions(), 0);
  ASSERT_TRUE(ra.resume());  // A resumes while B's handler is still open
  ASSERT_TRUE(rb.resume());
  EXPECT_EQ(a.join(), "A/A/0");
  EXPECT_EQ(b.join(), "B/B/0");
}

TEST(ExceptionState, ResumingInTheOtherOrderAlsoKeepsEachTasksException) {
  Resumer ra, rb;
  auto a = heddle::spawn([&] { return catch_park_and_look("A", ra); });
  auto b = heddle::spawn([&] { return catch_park_and_look("B", rb); });
  ASSERT_TRUE(rb.resume());
  ASSERT_TRUE(ra.resume());
  EXPECT_EQ(a.join(), "A/A/0");
  EXPECT_EQ(b.join(), "B/B/0");
}

TEST(ExceptionState, AThreadInsideACatchBlockKeepsItsExceptionAcrossTasks) {
  Resumer ra;
  std::string seen_by_thread;
  try {
    throw std::runtime_error("thread");
  } catch (...) {
    auto a = heddle::spawn([&] { return catch_park_and_look("task", ra); });
    // The task parked inside its own handler: the thread's is unchanged.
    seen_by_thread = current_message() + "/" + rethrown_message();
    ASSERT_TRUE(ra.resume());
    EXPECT_EQ(a.join(), "task/task/0");
    seen_by_thread += "/" + rethrown_message();
  }
  EXPECT_EQ(seen_by_thread, "thread/thread/thread");
  EXPECT_EQ(current_message(), "none");
}

TEST(ExceptionState, ATaskStartedInsideACatchBlockSeesNoCaughtException) {
  std::string seen;
  try {
    throw std::runtime_error("thread");
  } catch (...) {
    auto a = heddle::spawn([&] { seen = current_message(); });
    a.join();
  }
  EXPECT_EQ(seen, "none");
}

// Inside a with_stack segment the task is the same task: a handler opened
// on the segment and one opened on the task's own stack are one chain, and
// parking on the segment carries it like any other suspension.
TEST(ExceptionState, TasksParkedInsideCatchBlocksOnWithStackSegmentsKeepTheirOwn) {
  Resumer ra, rb;
  auto on_segment = [](const char* message, Resumer& slot) {
    return heddle::with_stack(32 * 1024, [&] { return catch_park_and_look(message, slot); });
  };
  auto a = heddle::spawn([&] { return on_segment("A", ra); });
  auto b = heddle::spawn([&] {
    try {
      throw std::runtime_error("B outer");
    } catch (...) {
      std::string inner = on_segment("B", rb);
      return inner + "|" + rethrown_message();  // the outer handler's exception again
    }
  });
  EXPECT_EQ(current_message(), "none");
  ASSERT_TRUE(ra.resume());
  ASSERT_TRUE(rb.resume());
  EXPECT_EQ(a.join(), "A/A/0");
  EXPECT_EQ(b.join(), "B/B/0|B outer");
}

// A task on a bounded stack enters other tasks from a host stack of its
// thread (src/core/host_stacks.cpp, "Host stacks"): those switches carry the
// state too, both ways.
TEST(ExceptionState, TasksEnteredFromABoundedTasksHostStackKeepTheirOwn) {
  // Room for the throw and the strings below in every build (clang's ASan
  // debug build needs more than 16 KiB).
  heddle::StackPool bounded({.stack_bytes = 64 * 1024, .bounded = true});
  Resumer ra, rb;
  heddle::Task<std::string> a, b;
  auto bounded_task = heddle::spawn(
      [&] {
        try {
          throw std::runtime_error("bounded");
        } catch (...) {
          // Both spawns enter their tasks from the host stack.
          a = heddle::spawn([&] { return catch_park_and_look("A", ra); });
          b = heddle::spawn([&] { return catch_park_and_look("B", rb); });
          ra.resume();  // an inline wake, from the host stack too
          return rethrown_message() + "/" + std::to_string(std::uncaught_exceptions());
        }
      },
      {.pool = &bounded});
  EXPECT_EQ(bounded_task.join(), "bounded/0");
  EXPECT_EQ(current_message(), "none");
  ASSERT_TRUE(rb.resume());
  EXPECT_EQ(a.join(), "A/A/0");
  EXPECT_EQ(b.join(), "B/B/0");
}

// Parks in its destructor: when that destructor runs during unwinding, the
// task is parked with an exception in flight.
struct ParksWhenDestroyed {
  Resumer& slot;
  int& uncaught_after_resume;
  ~ParksWhenDestroyed() {
    heddle::suspend_uninterruptible([&](const Resumer& r) { slot = r; });
    uncaught_after_resume = std::uncaught_exceptions();
  }
};

TEST(ExceptionState, ATaskParkedMidUnwindLeavesOtherTasksUncaughtCountAlone) {
  Resumer unwinding;
  int uncaught_in_unwinding_task = -1;
  auto a = heddle::spawn([&] {
    ParksWhenDestroyed guard{unwinding, uncaught_in_unwinding_task};
    throw std::runtime_error("unwinding");
  });
  ASSERT_FALSE(a.finished());  // parked in the destructor, mid-unwind
  EXPECT_EQ(std::uncaught_exceptions(), 0) << "the thread has no exception in flight";
  int seen_by_other_task = -1;
  auto b = heddle::spawn([&] { seen_by_other_task = std::uncaught_exceptions(); });
  b.join();
  EXPECT_EQ(seen_by_other_task, 0);
  ASSERT_TRUE(unwinding.resume());
  EXPECT_EQ(uncaught_in_unwinding_task, 1) << "the unwinding task still has its exception in flight";
  EXPECT_THROW(a.join(), std::runtime_error);
}

// The cancellation path: a cancelled task unwinds, and its Task handle's
// destructor parks while joining a child. A TaskGroup made before that, in
// another task, whose scope then ends normally must wait for its children,
// not cancel them (its destructor compares std::uncaught_exceptions()).
TEST(ExceptionState, ATaskGroupEndingNormallyBesideACancelledUnwindingTaskWaitsForItsChildren) {
  heddle::Event child_may_finish;
  Resumer owner_parked;
  bool grandchild_cancelled = false;
  bool grandchild_finished = false;
  auto group_owner = heddle::spawn([&] {
    heddle::TaskGroup group;
    group.spawn([&] {
      try {
        child_may_finish.wait();
        grandchild_finished = true;
      } catch (const heddle::Cancelled&) {
        grandchild_cancelled = true;
        throw;
      }
    });
    heddle::suspend([&](const Resumer& r) { owner_parked = r; });
    // The scope ends normally: ~TaskGroup waits for the child.
  });

  Resumer parent_parked;
  auto unwinding_parent = heddle::spawn([&] {
    auto child = heddle::spawn([&] {
      // Ignores cancellation until told to finish: the parent's handle
      // destructor has to wait for it, parked mid-unwind.
      heddle::suspend_uninterruptible([&](const Resumer& r) { parent_parked = r; });
    });
    heddle::suspend([](const Resumer&) {});  // parks until cancelled
  });
  unwinding_parent.cancel();  // unwinds; ~Task of `child` parks in join
  ASSERT_FALSE(unwinding_parent.finished());

  ASSERT_TRUE(owner_parked.resume());  // the group's scope ends now
  EXPECT_FALSE(group_owner.finished()) << "the group cancelled its child instead of waiting";
  child_may_finish.set();
  group_owner.join();
  EXPECT_TRUE(grandchild_finished);
  EXPECT_FALSE(grandchild_cancelled) << "a TaskGroup whose scope ended normally cancelled its children";

  ASSERT_TRUE(parent_parked.resume());  // lets the child finish; the parent ends its unwinding
  EXPECT_THROW(unwinding_parent.join(), heddle::Cancelled);
}

}  // namespace
