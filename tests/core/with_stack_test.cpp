// with_stack and maybe_grow (heddle/core/with_stack.hpp): the function runs
// on a segment of the size asked for, in the same task, and its result,
// exception or cancellation comes back; a recursion far deeper than the
// task's stack completes under maybe_grow; an overflow of a segment is
// caught and names the task; tasks on a Pool may move between threads while
// on a segment.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"

namespace {

using namespace std::chrono_literals;

[[gnu::noinline]] std::uintptr_t address_of_a_local() {
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}

TEST(WithStack, RunsTheFunctionOnASegmentOfTheSizeAskedForAndReturnsItsResult) {
  heddle::StackPool pool({.stack_bytes = 64 * 1024});
  auto task = heddle::spawn([] {
    const std::size_t left_here = heddle::stack_left();
    const std::uintptr_t here = address_of_a_local();
    EXPECT_LT(left_here, 64u * 1024);
    const auto [left_there, there] = heddle::with_stack(512 * 1024, [] {
      return std::pair{heddle::stack_left(), address_of_a_local()};
    });
    EXPECT_GT(left_there, 400u * 1024);  // a 512 KiB segment, not the 64 KiB task stack
    EXPECT_LE(left_there, 512u * 1024);
    const std::uintptr_t distance = here > there ? here - there : there - here;
    EXPECT_GT(distance, 64u * 1024) << "the function ran on the task's own stack";
    // Back on the task's stack afterwards.
    EXPECT_EQ(heddle::stack_left() / 4096, left_here / 4096);
    return 7;
  }, {.pool = &pool});
  EXPECT_EQ(task.join(), 7);
}

TEST(WithStack, TheFunctionRunsInTheSameTask) {
  static heddle::TaskLocal<std::string> label;
  auto task = heddle::spawn([] {
    *label = "mine";
    const std::uint64_t id = heddle::this_task::id();
    heddle::with_stack(32 * 1024, [&] {
      EXPECT_EQ(heddle::this_task::id(), id);
      EXPECT_EQ(*label, "mine");
      *label = "changed on the segment";
    });
    EXPECT_EQ(*label, "changed on the segment");
  }, {.name = "same task"});
  task.join();
}

TEST(WithStack, VoidReferenceAndMoveOnlyResults) {
  int target = 1;
  int& reference = heddle::with_stack(16 * 1024, [&]() -> int& { return target; });
  EXPECT_EQ(&reference, &target);
  auto owned = heddle::with_stack(16 * 1024, [] { return std::make_unique<int>(5); });
  EXPECT_EQ(*owned, 5);
  bool ran = false;
  heddle::with_stack(16 * 1024, [&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(WithStack, ExceptionsComeBackToTheCaller) {
  auto task = heddle::spawn([] {
    try {
      heddle::with_stack(64 * 1024, []() -> int { throw std::runtime_error("from the segment"); });
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "from the segment");
    }
    return heddle::with_stack(64 * 1024, [] { return 3; });  // and the next call works
  });
  EXPECT_EQ(task.join(), 3);
}

TEST(WithStack, OnAPlainThreadToo) {
  EXPECT_FALSE(heddle::this_task::in_task());
  const std::size_t left = heddle::with_stack(1024 * 1024, [] { return heddle::stack_left(); });
  EXPECT_GT(left, 900u * 1024);
  EXPECT_LE(left, 1024u * 1024);
}

TEST(WithStack, BadSizesAreRejectedNamingThem) {
  auto message_of = [](std::size_t bytes) -> std::string {
    try {
      heddle::with_stack(bytes, [] {});
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message_of(0).find("0 bytes"), std::string::npos);
  EXPECT_NE(message_of(heddle::kMaxSegmentBytes + 1).find("1 GiB"), std::string::npos);
}

TEST(WithStack, TheFunctionMaySuspendAndSpawnOnTheSegment) {
  heddle::Loop loop;
  heddle::Event event;
  auto task = loop.spawn([&] {
    return heddle::with_stack(64 * 1024, [&] {
      auto child = heddle::spawn([&] {
        event.wait();  // parks: back to the segment
        return 20;
      });
      heddle::sleep_for(1ms);  // the task itself parks on the segment
      event.set();
      return child.join() + 1;
    });
  });
  loop.run();
  EXPECT_EQ(task.join(), 21);
}

TEST(WithStack, CancellingATaskParkedOnASegmentUnwindsBothStacks) {
  heddle::Loop loop;
  heddle::Event never;
  bool unwound_on_segment = false;
  bool unwound_on_task = false;
  auto task = loop.spawn([&] {
    struct Mark {
      bool& flag;
      ~Mark() { flag = true; }
    } on_task{unwound_on_task};
    heddle::with_stack(64 * 1024, [&] {
      Mark on_segment{unwound_on_segment};
      never.wait();
    });
    ADD_FAILURE() << "with_stack returned after a cancellation";
  });
  auto canceller = loop.spawn([&] {
    heddle::sleep_for(1ms);
    task.cancel();
  });
  loop.run();
  canceller.join();
  EXPECT_THROW(task.join(), heddle::Cancelled);
  EXPECT_TRUE(unwound_on_segment);
  EXPECT_TRUE(unwound_on_task);
}

// Each level keeps about 512 bytes of locals: 20,000 levels need about
// 10 MiB, and the task has 64 KiB.
std::uint64_t deep_sum(std::uint64_t n) {
  return heddle::maybe_grow(32 * 1024, 1024 * 1024, [n]() -> std::uint64_t {
    volatile char locals[512];
    locals[n % sizeof locals] = static_cast<char>(n);
    if (n == 0) return static_cast<std::uint64_t>(locals[0]);
    return n + deep_sum(n - 1) + static_cast<std::uint64_t>(locals[n % sizeof locals] - static_cast<char>(n));
  });
}

TEST(WithStack, MaybeGrowLetsARecursionOutgrowTheTaskStack) {
  heddle::StackPool pool({.stack_bytes = 64 * 1024});
  auto task = heddle::spawn([] { return deep_sum(20'000); }, {.pool = &pool});
  EXPECT_EQ(task.join(), 20'000ull * 20'001 / 2);
}

TEST(WithStack, MaybeGrowStaysPutWhileThereIsRoom) {
  heddle::with_stack(256 * 1024, [] {
    const std::size_t before = heddle::stack_left();
    const std::size_t inside = heddle::maybe_grow(16 * 1024, 64 * 1024, [] { return heddle::stack_left(); });
    EXPECT_LE(inside, before);
    EXPECT_GT(inside, before - 4096);  // the same stack, a frame or two deeper
  });
}

volatile std::size_t never_reached = SIZE_MAX;
std::size_t unbounded(std::size_t depth) {
  volatile char frame[1024];
  frame[depth % sizeof frame] = 1;
  if (depth >= never_reached) return frame[0];
  return unbounded(depth + 1) + frame[depth % sizeof frame];
}

TEST(WithStackDeathTest, OverflowingASegmentIsCaughtAndNamesTheTask) {
  EXPECT_DEATH(
      {
        auto task = heddle::spawn([] { heddle::with_stack(32 * 1024, [] { unbounded(0); }); }, {.name = "grower"});
        task.join();
      },
      "stack overflow in task \"grower\"");
}

TEST(WithStack, TasksOnAPoolMoveBetweenThreadsWhileOnASegment) {
  heddle::Pool pool(2);
  std::atomic<int> done{0};
  std::vector<heddle::Task<int>> tasks;
  for (int i = 0; i < 64; ++i) {
    tasks.push_back(pool.spawn([i, &done] {
      const int result = heddle::with_stack(32 * 1024, [i] {
        int sum = 0;
        for (int round = 0; round < 20; ++round) {
          heddle::this_task::yield();  // may come back on the other worker
          sum += i;
        }
        return sum;
      });
      done.fetch_add(1);
      return result;
    }));
  }
  for (int i = 0; i < 64; ++i) EXPECT_EQ(tasks[i].join(), 20 * i);
  EXPECT_EQ(done.load(), 64);
}

}  // namespace
