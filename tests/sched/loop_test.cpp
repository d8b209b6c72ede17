// Loop: eager spawn, run-until-empty, stop, queued wake-ups, destruction.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/time.h>

#include <chrono>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sync/event.hpp"

namespace {

TEST(Loop, RunWithNothingToDoReturnsAtOnce) {
  heddle::Loop loop;
  loop.run();
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(Loop, SpawnOnTheLoopsThreadIsEager) {
  heddle::Loop loop;
  std::vector<std::string> log;
  auto task = loop.spawn([&] {
    log.push_back("child runs");
    heddle::this_task::yield();  // queued on the loop: resumes when the loop runs
    log.push_back("child resumed");
  });
  log.push_back("spawn returned");
  EXPECT_EQ(loop.live_tasks(), 1u);
  loop.run();
  EXPECT_EQ(log, (std::vector<std::string>{"child runs", "spawn returned", "child resumed"}));
  EXPECT_TRUE(task.finished());
  task.join();
}

// A dispatched task that parks may hand over directly to the next task in
// the run queue, which then finishes the switch (the park hook) on its own
// stack; a task on a bounded stack has no room for that, so it is entered by
// the dispatcher after the hook ran there (src/core/host_stacks.cpp, Host stacks).
TEST(Loop, ATaskOnABoundedStackIsNeverHandedOverTo) {
  heddle::Loop loop;
  heddle::StackPool bounded({.stack_bytes = 16 * 1024, .bounded = true});
  const void* hook_frame = nullptr;
  heddle::Stack bounded_stack;
  heddle::Resumer parked;
  auto first = loop.spawn([&] {
    heddle::this_task::yield();  // queued: the loop's dispatcher runs it first
    heddle::suspend([&](const heddle::Resumer& r) {
      hook_frame = __builtin_frame_address(0);
      parked = r;
    });
  });
  auto second = loop.spawn(
      [&] {
        bounded_stack = heddle::detail::current_task()->stack;
        heddle::this_task::yield();  // queued behind the first: next when it parks
        EXPECT_TRUE(parked.wake());
      },
      {.pool = &bounded});
  loop.run();
  first.join();
  second.join();
  ASSERT_NE(hook_frame, nullptr);
  EXPECT_FALSE(bounded_stack.contains(hook_frame))
      << "the park hook ran on the bounded task's stack";
}

TEST(Loop, ChildrenOfLoopTasksBelongToTheLoop) {
  heddle::Loop loop;
  heddle::Loop* seen = nullptr;
  auto task = loop.spawn([&] {
    auto child = heddle::spawn([&] { seen = heddle::Loop::current(); });
    child.join();
  });
  loop.run();
  EXPECT_EQ(seen, &loop);
  task.join();
}

TEST(Loop, WakesGoThroughTheRunQueueInOrder) {
  heddle::Loop loop;
  heddle::Event event;
  std::vector<int> order;
  std::vector<heddle::Task<void>> tasks;
  for (int i = 0; i < 5; ++i) {
    tasks.push_back(loop.spawn([&, i] {
      event.wait();
      order.push_back(i);
    }));
  }
  auto setter = loop.spawn([&] {
    event.set();           // queues all five; none runs inside set()
    order.push_back(-1);   // so the setter goes on first
  });
  loop.run();
  EXPECT_EQ(order, (std::vector<int>{-1, 0, 1, 2, 3, 4}));
  for (auto& t : tasks) t.join();
  setter.join();
}

TEST(Loop, YieldLetsOtherTasksRun) {
  heddle::Loop loop;
  std::string trace;
  auto a = loop.spawn([&] {
    for (int i = 0; i < 3; ++i) {
      trace += 'a';
      heddle::this_task::yield();
    }
  });
  auto b = loop.spawn([&] {
    for (int i = 0; i < 3; ++i) {
      trace += 'b';
      heddle::this_task::yield();
    }
  });
  loop.run();
  EXPECT_EQ(trace, "ababab");
  a.join();
  b.join();
}

TEST(Loop, StopFromATaskEndsRun) {
  heddle::Loop loop;
  heddle::Event never;
  auto blocked = loop.spawn([&] { never.wait(); });
  auto stopper = loop.spawn([&] {
    heddle::this_task::yield();
    loop.stop();
  });
  loop.run();  // returns although `blocked` is still parked
  EXPECT_EQ(loop.live_tasks(), 1u);
  EXPECT_TRUE(stopper.finished());
  stopper.join();
  blocked.cancel();  // queued on the loop ...
  loop.run();        // ... and unwound when it runs
  EXPECT_THROW(blocked.join(), heddle::Cancelled);
}

TEST(Loop, DestroyingALoopCancelsItsLiveTasks) {
  bool unwound = false;
  heddle::Event never;
  heddle::Task<void> task;
  {
    heddle::Loop loop;
    task = loop.spawn([&] {
      struct Guard {
        bool& flag;
        ~Guard() { flag = true; }
      } guard{unwound};
      never.wait();
    });
  }
  EXPECT_TRUE(unwound);
  EXPECT_TRUE(task.finished());
  EXPECT_THROW(task.join(), heddle::Cancelled);
}

TEST(Loop, RunTwiceAtOnceIsRejected) {
  heddle::Loop loop;
  auto task = loop.spawn([&] {
    heddle::this_task::yield();
    EXPECT_THROW(loop.run(), std::logic_error);
  });
  loop.run();
  task.join();
}

// The exception that ends a detached Loop task goes to the handler
// (core/unhandled_exception.hpp), on the loop's thread; the Cancelled that
// ends one at the loop's destruction does not.
std::vector<std::string>& unhandled_seen() {
  static std::vector<std::string> seen;
  return seen;
}

void record_unhandled(const heddle::UnhandledException& unhandled) {
  std::string what = "?";
  try {
    std::rethrow_exception(unhandled.exception);
  } catch (const std::exception& error) {
    what = error.what();
  } catch (...) {
  }
  unhandled_seen().push_back(std::string(unhandled.task_name) + ": " + what);
}

TEST(LoopUnhandledException, ADetachedTaskThatThrowsIsReportedAndCancelledOnesAreNot) {
  unhandled_seen().clear();
  const heddle::UnhandledExceptionHandler previous = heddle::set_unhandled_exception_handler(&record_unhandled);
  heddle::Event never;
  {
    heddle::Loop loop;
    loop.spawn(
            [] {
              heddle::this_task::yield();  // ends on the loop's dispatcher, not in spawn
              throw std::runtime_error("failed on the loop");
            },
            {.name = "loop thrower"})
        .detach();
    loop.spawn([&] { never.wait(); }, {.name = "waits forever"}).detach();
    EXPECT_TRUE(unhandled_seen().empty());
    auto stopper = loop.spawn([&] {
      heddle::this_task::yield();
      heddle::this_task::yield();
      loop.stop();
    });
    loop.run();
    stopper.join();
    EXPECT_EQ(unhandled_seen(), std::vector<std::string>{"loop thrower: failed on the loop"});
  }  // ~Loop cancels "waits forever": not reported
  heddle::set_unhandled_exception_handler(previous);
  EXPECT_EQ(unhandled_seen(), std::vector<std::string>{"loop thrower: failed on the loop"});
}

TEST(LoopUnhandledException, TheDefaultHandlerWritesALineOnStderr) {
  heddle::Loop loop;
  testing::internal::CaptureStderr();
  loop.spawn(
          [] {
            heddle::this_task::yield();
            throw std::runtime_error("boom on a loop");
          },
          {.name = "loop task"})
      .detach();
  loop.run();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("\"loop task\" spawned at "), std::string::npos) << err;
  EXPECT_NE(err.find("loop_test.cpp:"), std::string::npos) << err;
  EXPECT_NE(err.find(" ended with an exception: boom on a loop\n"), std::string::npos) << err;
}

// A Loop task's handle dropped on the loop's thread before run() (or
// between runs) runs the loop until the task has unwound: it never hangs.
struct SetOnUnwind {
  bool& flag;
  ~SetOnUnwind() { flag = true; }
};

TEST(Loop, DroppingAParkedTasksHandleBeforeRunUnwindsIt) {
  heddle::Loop loop;
  heddle::Event never;
  bool unwound = false;
  {
    auto task = loop.spawn([&] {
      SetOnUnwind guard{unwound};
      never.wait();
    });
    EXPECT_EQ(loop.live_tasks(), 1u);
  }  // hung before: the cancelled task was queued on a loop nobody ran
  EXPECT_TRUE(unwound);
  EXPECT_EQ(loop.live_tasks(), 0u);
  loop.run();  // nothing left
}

TEST(Loop, DroppingAQueuedTasksHandleBeforeRunUnwindsIt) {
  heddle::Loop loop;
  bool resumed = false;
  bool unwound = false;
  {
    auto task = loop.spawn([&] {
      SetOnUnwind guard{unwound};
      heddle::this_task::yield();  // queued on the loop: cancelled there
      resumed = true;
    });
  }
  EXPECT_TRUE(unwound);
  EXPECT_FALSE(resumed);
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(Loop, DroppingAHandleRunsWhatTheTasksUnwindingWaitsFor) {
  heddle::Loop loop;
  heddle::Event never;
  bool child_unwound = false;
  bool other_ran = false;
  auto other = loop.spawn([&] {
    heddle::this_task::yield();
    other_ran = true;
  });
  {
    auto parent = loop.spawn([&] {
      // Its unwinding destroys the child's handle, which cancels the child
      // and waits for it: the loop must run the child meanwhile.
      auto child = heddle::spawn([&] {
        SetOnUnwind guard{child_unwound};
        never.wait();
      });
      never.wait();
    });
  }
  EXPECT_TRUE(child_unwound);
  EXPECT_TRUE(other_ran);  // the loop's other work ran too
  other.join();
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(Loop, DroppingAHandleKeepsAStopForTheNextRun) {
  heddle::Loop loop;
  heddle::Event never;
  auto blocked = loop.spawn([&] { never.wait(); });
  loop.stop();
  { auto dropped = loop.spawn([&] { never.wait(); }); }
  EXPECT_EQ(loop.live_tasks(), 1u);
  loop.run();  // returns at once: the stop was kept
  EXPECT_EQ(loop.live_tasks(), 1u);
  blocked.cancel();
  loop.run();
  EXPECT_THROW(blocked.join(), heddle::Cancelled);
}

TEST(LoopDeathTest, DroppingAHandleInATimerCallbackOfTheRunningLoopAborts) {
  EXPECT_DEATH(
      {
        heddle::Loop loop;
        heddle::Event never;
        heddle::Task<void> parked = loop.spawn([&] { never.wait(); }, {.name = "parked"});
        heddle::Timer timer;
        auto drop = [&] { parked = heddle::Task<void>(); };
        auto arm = loop.spawn([&] { timer.arm(heddle::now(), drop); });
        loop.run();
      },
      "heddle: the handle of task [0-9]+ \"parked\" spawned at .*loop_test.cpp:[0-9]+ was destroyed unjoined "
      "outside any task on the thread of the running heddle::Loop");
}

// Loop::stop() is async-signal-safe (loop.hpp, docs/misuse.md "Signal
// handlers"): a handler may stop a loop that sleeps in ppoll.
heddle::Loop* loop_to_stop = nullptr;

TEST(Loop, StopFromASignalHandlerEndsRun) {
  heddle::Loop loop;
  loop_to_stop = &loop;
  struct sigaction action {};
  action.sa_handler = [](int) { loop_to_stop->stop(); };
  sigemptyset(&action.sa_mask);
  struct sigaction previous {};
  ASSERT_EQ(sigaction(SIGALRM, &action, &previous), 0);
  auto sleeper = loop.spawn([] { heddle::sleep_for(std::chrono::seconds(60)); });
  itimerval in_20ms{};
  in_20ms.it_value.tv_usec = 20'000;
  ASSERT_EQ(setitimer(ITIMER_REAL, &in_20ms, nullptr), 0);
  const auto start = std::chrono::steady_clock::now();
  loop.run();  // sleeps until the 60 s timer, unless the handler stops it
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_EQ(loop.live_tasks(), 1u);
  sigaction(SIGALRM, &previous, nullptr);
  loop_to_stop = nullptr;
  sleeper.cancel();
  loop.run();
  EXPECT_THROW(sleeper.join(), heddle::Cancelled);
}

}  // namespace
