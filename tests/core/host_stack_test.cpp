// Host stacks (src/core/host_stacks.cpp): a task on a bounded stack never hosts the
// work of another task's switch. Its stack was sized from a proof of its own
// code, so the park hook of a task it wakes or spawns must run elsewhere.
// Each test records where such a hook runs (its frame address) and checks it
// against the bounded task's stack; the ordinary-stack case shows that the
// check can tell the two apart.
#include <gtest/gtest.h>

#include "heddle/heddle.hpp"

namespace {

const heddle::Stack& running_stack() { return heddle::detail::current_task()->stack; }

struct Sleeper {
  heddle::Resumer parked;
  const void* hook_frame = nullptr;
  heddle::Task<void> task;

  // Parks once to be woken by the test's waker, then a second time with a
  // hook that records where it runs: on whoever received that switch.
  void start() {
    task = heddle::spawn([this] {
      heddle::suspend([this](const heddle::Resumer& r) { parked = r; });
      heddle::suspend([this](const heddle::Resumer& r) {
        hook_frame = __builtin_frame_address(0);
        parked = r;
      });
    });
  }
  void finish() {
    ASSERT_TRUE(parked.resume());
    task.join();
  }
};

TEST(HostStacks, AParkHookOfATaskWokenByABoundedTaskRunsOffItsStack) {
  heddle::StackPool bounded({.stack_bytes = 16 * 1024, .bounded = true});
  Sleeper sleeper;
  sleeper.start();
  heddle::Stack waker_stack;
  auto waker = heddle::spawn(
      [&] {
        waker_stack = running_stack();
        EXPECT_TRUE(sleeper.parked.resume());  // inline: the sleeper runs until it parks again
      },
      {.pool = &bounded});
  waker.join();
  ASSERT_NE(sleeper.hook_frame, nullptr);
  EXPECT_FALSE(waker_stack.contains(sleeper.hook_frame)) << "the woken task's park hook ran on the bounded stack";
  sleeper.finish();
}

TEST(HostStacks, OnAnOrdinaryStackTheWakerHostsTheHookItself) {
  Sleeper sleeper;
  sleeper.start();
  heddle::Stack waker_stack;
  auto waker = heddle::spawn([&] {
    waker_stack = running_stack();
    EXPECT_TRUE(sleeper.parked.resume());
  });
  waker.join();
  EXPECT_TRUE(waker_stack.contains(sleeper.hook_frame)) << "an ordinary waker receives the switch and runs the hook";
  sleeper.finish();
}

TEST(HostStacks, AChildSpawnedByABoundedTaskParksOffItsStack) {
  heddle::StackPool bounded({.stack_bytes = 16 * 1024, .bounded = true});
  heddle::Resumer child_parked;
  const void* hook_frame = nullptr;
  heddle::Stack parent_stack;
  heddle::Task<void> child;
  auto parent = heddle::spawn(
      [&] {
        parent_stack = running_stack();
        child = heddle::spawn([&] {  // eager: runs until it parks, then the parent goes on
          heddle::suspend([&](const heddle::Resumer& r) {
            hook_frame = __builtin_frame_address(0);
            child_parked = r;
          });
        });
      },
      {.pool = &bounded});
  parent.join();
  ASSERT_NE(hook_frame, nullptr);
  EXPECT_FALSE(parent_stack.contains(hook_frame)) << "the child's first park hook ran on the bounded parent's stack";
  ASSERT_TRUE(child_parked.resume());
  child.join();
}

TEST(HostStacks, WakeUpsNestedFromABoundedTaskAllRunOffItsStack) {
  // A bounded task wakes the first of a chain of sleepers; each sleeper, once
  // woken, wakes the next before it parks again: inline wake-ups nest (past
  // the 8-deep limit, so some are deferred) and every hook must land off the
  // bounded stack.
  heddle::StackPool bounded({.stack_bytes = 16 * 1024, .bounded = true});
  constexpr int kSleepers = 12;
  struct Link {
    heddle::Resumer parked;
    const void* hook_frame = nullptr;
    heddle::Task<void> task;
  };
  std::vector<Link> links(kSleepers);
  for (int i = 0; i < kSleepers; ++i) {
    links[i].task = heddle::spawn([&links, i] {
      heddle::suspend([&links, i](const heddle::Resumer& r) { links[i].parked = r; });
      if (i + 1 < kSleepers) links[i + 1].parked.wake();
      heddle::suspend([&links, i](const heddle::Resumer& r) {
        links[i].hook_frame = __builtin_frame_address(0);
        links[i].parked = r;
      });
    });
  }
  heddle::Stack waker_stack;
  auto waker = heddle::spawn(
      [&] {
        waker_stack = running_stack();
        EXPECT_TRUE(links[0].parked.wake());
      },
      {.pool = &bounded});
  waker.join();
  for (int i = 0; i < kSleepers; ++i) {
    ASSERT_NE(links[i].hook_frame, nullptr) << "sleeper " << i << " was not woken";
    EXPECT_FALSE(waker_stack.contains(links[i].hook_frame)) << "sleeper " << i;
  }
  for (auto& link : links) {
    ASSERT_TRUE(link.parked.resume());
    link.task.join();
  }
}

struct CountsDestruction {
  int* count;
  ~CountsDestruction() { ++*count; }
};

TEST(HostStacks, ABoundedTaskIsCancelledFromTheUnwindStack) {
  // heddle::Cancelled is made and thrown on the thread's unwind stack (made
  // when the bounded task was entered) and unwinds back into the task's
  // frames from there, running their destructors. (How little of the task's
  // own stack that takes is tested where the unwinder wrappers are linked:
  // tests/tools/bounded_spawn_test.cpp.)
  heddle::StackPool bounded({.stack_bytes = 16 * 1024, .bounded = true});
  heddle::Event never_set;
  int destroyed = 0;
  auto task = heddle::spawn(
      [&] {
        CountsDestruction guard{&destroyed};
        never_set.wait();
      },
      {.pool = &bounded});
  task.cancel();
  EXPECT_EQ(destroyed, 1);
  EXPECT_THROW(task.join(), heddle::Cancelled);
  // And the thread's next task still throws and catches as usual.
  int caught = 0;
  auto next = heddle::spawn(
      [&] {
        heddle::Event unset;
        heddle::this_task::cancel();  // the next suspension point throws Cancelled
        try {
          unset.wait();
        } catch (const heddle::Cancelled&) {
          ++caught;
          throw;
        }
      },
      {.pool = &bounded});
  EXPECT_THROW(next.join(), heddle::Cancelled);
  EXPECT_EQ(caught, 1);
}

}  // namespace
