// Resumer safety: stale, duplicate and late resumes do nothing.
#include <gtest/gtest.h>

#include "heddle/heddle.hpp"

namespace {

using heddle::Resumer;

TEST(Resumer, EmptyHandleResumesNothing) {
  Resumer empty;
  EXPECT_FALSE(empty);
  EXPECT_FALSE(empty.resume());
}

TEST(Resumer, DuplicateResumeReturnsFalse) {
  Resumer first;
  int resumed = 0;
  auto task = heddle::spawn([&] {
    heddle::suspend([&](const Resumer& r) { first = r; });
    ++resumed;
  });
  Resumer copy = first;
  EXPECT_TRUE(first.resume());
  EXPECT_FALSE(copy.resume());
  EXPECT_FALSE(first.resume());
  EXPECT_EQ(resumed, 1);
  task.join();
}

TEST(Resumer, HandleOfAnEarlierSuspensionIsStale) {
  Resumer first, second;
  int stage = 0;
  auto task = heddle::spawn([&] {
    heddle::suspend([&](const Resumer& r) { first = r; });
    stage = 1;
    heddle::suspend([&](const Resumer& r) { second = r; });
    stage = 2;
  });
  EXPECT_TRUE(first.resume());
  EXPECT_EQ(stage, 1);
  EXPECT_FALSE(first.resume()) << "a handle names one suspension, not the task";
  EXPECT_EQ(stage, 1);
  EXPECT_TRUE(second.resume());
  EXPECT_EQ(stage, 2);
  task.join();
}

TEST(Resumer, ResumeAfterFinishAndAfterStorageReuseReturnsFalse) {
  Resumer stale;
  {
    auto task = heddle::spawn([&] { heddle::suspend([&](const Resumer& r) { stale = r; }); });
    EXPECT_TRUE(Resumer(stale).resume());
    task.join();
  }
  EXPECT_FALSE(stale.resume());
  // The control block is recycled for new tasks; the old handle stays stale.
  for (int i = 0; i < 1000; ++i) {
    Resumer fresh;
    auto t = heddle::spawn([&] { heddle::suspend([&](const Resumer& r) { fresh = r; }); });
    EXPECT_FALSE(stale.resume());
    EXPECT_TRUE(fresh.resume());
    t.join();
  }
}

TEST(Resumer, ResumeAfterCancelReturnsFalse) {
  Resumer parked;
  bool continued = false;
  auto task = heddle::spawn([&] {
    heddle::suspend([&](const Resumer& r) { parked = r; });
    continued = true;
  });
  task.cancel();
  EXPECT_FALSE(parked.resume());
  EXPECT_FALSE(continued);
  EXPECT_THROW(task.join(), heddle::Cancelled);
}

TEST(Resumer, ResumeThatArrivesWhileTheTaskIsStillSwitchingOut) {
  // The hook runs after the task's registers are saved; resuming from inside
  // it is the earliest possible resume. The core remembers it and resumes
  // the task as soon as the hook returns.
  int after = 0;
  auto task = heddle::spawn([&] {
    heddle::suspend([&](const Resumer& r) {
      EXPECT_TRUE(r.resume());
      EXPECT_FALSE(r.resume()) << "only one resume of a suspension may win";
      EXPECT_EQ(after, 0) << "the task must not run before its hook returns";
    });
    ++after;
  });
  EXPECT_EQ(after, 1);
  EXPECT_TRUE(task.finished());
  task.join();
}

TEST(Resumer, TaskResumesAnotherTask) {
  Resumer a_parked;
  std::vector<int> order;
  auto a = heddle::spawn([&] {
    heddle::suspend([&](const Resumer& r) { a_parked = r; });
    order.push_back(2);
  });
  auto b = heddle::spawn([&] {
    order.push_back(1);
    EXPECT_TRUE(a_parked.resume());  // runs `a` on top of `b`, inline
    order.push_back(3);
  });
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  a.join();
  b.join();
}

TEST(Resumer, EqualHandlesNameTheSameSuspensionOfTheSameTask) {
  Resumer a_first, a_second, b_first;
  auto a = heddle::spawn([&] {
    heddle::suspend([&](const Resumer& r) { a_first = r; });
    heddle::suspend([&](const Resumer& r) { a_second = r; });
  });
  auto b = heddle::spawn([&] { heddle::suspend([&](const Resumer& r) { b_first = r; }); });

  const Resumer copy = a_first;
  EXPECT_TRUE(copy == a_first) << "a copy names the same suspension";
  EXPECT_FALSE(copy != a_first);
  EXPECT_TRUE(a_first != b_first) << "different tasks";
  EXPECT_FALSE(a_first == b_first);
  EXPECT_TRUE(Resumer() == Resumer()) << "empty handles are equal";
  EXPECT_FALSE(Resumer() == a_first) << "an empty handle equals no real one";
  EXPECT_TRUE(Resumer() != b_first);

  EXPECT_TRUE(a_first.resume());
  ASSERT_TRUE(a_second);
  EXPECT_EQ(a_second.task_id(), a_first.task_id());
  EXPECT_TRUE(a_second != a_first) << "a later suspension of the same task";
  EXPECT_FALSE(a_second == a_first);
  EXPECT_TRUE(copy == a_first) << "using a handle does not change what it names";

  EXPECT_TRUE(a_second.resume());
  EXPECT_TRUE(b_first.resume());
  a.join();
  b.join();
}

TEST(Resumer, HandlesOfTasksThatShareARecycledControlBlockDiffer) {
  Resumer old_handle;
  heddle::spawn([&] { heddle::suspend([&](const Resumer& r) { old_handle = r; }); }).cancel();
  // Finished: its block goes back to the cache, and a later spawn reuses it.
  int reused = 0;
  for (int i = 0; i < 100; ++i) {
    Resumer fresh;
    auto t = heddle::spawn([&] { heddle::suspend([&](const Resumer& r) { fresh = r; }); });
    if (fresh.control() == old_handle.control()) {
      ++reused;
      EXPECT_TRUE(fresh != old_handle) << "same block, another task";
    }
    EXPECT_TRUE(fresh.resume());
    t.join();
  }
  EXPECT_GT(reused, 0) << "no spawn reused the block: the check above never ran";
}

TEST(Resumer, IsSixteenBytes) { EXPECT_EQ(sizeof(Resumer), 16u); }

}  // namespace
