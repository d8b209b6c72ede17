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

TEST(Resumer, IsSixteenBytes) { EXPECT_EQ(sizeof(Resumer), 16u); }

}  // namespace
