// join, select and TaskGroup: wait like threads, cancel the rest on failure.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include "heddle/arch/sanitizer.hpp"
#include "heddle/heddle.hpp"

namespace {

using heddle::Resumer;

struct SetOnDestroy {
  bool& flag;
  ~SetOnDestroy() { flag = true; }
};

void park_into(Resumer& slot) {
  heddle::suspend([&](const Resumer& r) { slot = r; });
}

// An arm that parks until cancelled and counts its own unwinding.
auto parked_forever(int& unwound) {
  return [&unwound] {
    struct Count {
      int& n;
      ~Count() { ++n; }
    } count{unwound};
    heddle::suspend([](const Resumer&) {});
  };
}

TEST(Join, ReturnsEveryResultInOrder) {
  auto [a, b, c] = heddle::join([] { return 1; }, [] { return std::string("two"); }, [] {});
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, "two");
  (void)c;  // std::monostate for a void arm
}

TEST(Join, ArmsRunEagerlyInOrderAndWaitForParkedArms) {
  std::vector<int> log;
  Resumer first, second;
  auto task = heddle::spawn([&] {
    auto [x, y] = heddle::join(
        [&] {
          log.push_back(1);
          park_into(first);
          log.push_back(4);
          return 10;
        },
        [&] {
          log.push_back(2);
          park_into(second);
          log.push_back(3);
          return 20;
        });
    log.push_back(5);
    return x + y;
  });
  EXPECT_EQ(log, (std::vector<int>{1, 2}));
  second.resume();
  EXPECT_FALSE(task.finished());
  first.resume();
  EXPECT_EQ(log, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(task.join(), 30);
}

TEST(Join, FailingArmCancelsTheOthersAndRethrows) {
  bool other_unwound = false;
  Resumer failing;
  auto task = heddle::spawn([&] {
    heddle::join(
        [&] {
          SetOnDestroy guard{other_unwound};
          heddle::suspend([](const Resumer&) {});  // parked forever unless cancelled
        },
        [&] {
          park_into(failing);
          throw std::runtime_error("arm failed");
        });
  });
  failing.resume();
  EXPECT_TRUE(other_unwound);
  EXPECT_TRUE(task.finished());
  EXPECT_THROW(task.join(), std::runtime_error);
}

TEST(Join, FirstExceptionInTimeWins) {
  Resumer a, b;
  auto task = heddle::spawn([&] {
    heddle::join(
        [&] {
          park_into(a);
          throw std::runtime_error("first arm, second in time");
        },
        [&] {
          park_into(b);
          throw std::logic_error("second arm, first in time");
        });
  });
  b.resume();  // arm 1 throws first; arm 0 is cancelled
  EXPECT_FALSE(a.resume());
  EXPECT_THROW(task.join(), std::logic_error);
}

TEST(Join, CancellingTheWaiterCancelsAndAwaitsEveryArm) {
  int unwound = 0;
  auto task = heddle::spawn([&] { heddle::join(parked_forever(unwound), parked_forever(unwound)); });
  task.cancel();
  EXPECT_EQ(unwound, 2);
  EXPECT_THROW(task.join(), heddle::Cancelled);
}

TEST(Join, ArmThatCancelsItsParent) {
  heddle::Task<void>* parent = nullptr;
  Resumer arm_parked;
  bool sibling_unwound = false;
  heddle::Task<void> task = heddle::spawn([&] {
    heddle::join(
        [&] {
          park_into(arm_parked);
          parent->cancel();           // the parent is parked in join: it unwinds now
          heddle::this_task::yield();  // and this arm was cancelled by it
        },
        [&] {
          SetOnDestroy guard{sibling_unwound};
          heddle::suspend([](const Resumer&) {});
        });
  });
  parent = &task;
  arm_parked.resume();
  EXPECT_TRUE(sibling_unwound);
  EXPECT_TRUE(task.finished());
  EXPECT_THROW(task.join(), heddle::Cancelled);
}

__attribute__((noinline)) std::uintptr_t stack_address() {
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}

TEST(Join, NestedArmStacksAreCarvedFromTheCallersStack) {
  auto task = heddle::spawn([] {
    int marker = 0;
    const auto caller = reinterpret_cast<std::uintptr_t>(&marker);
    auto [a, b] = heddle::join(heddle::nested(8 * 1024), [] { return stack_address(); },
                               [] { return stack_address(); });
    // Both arms ran below the caller's frame, within the carved region.
    EXPECT_LT(a, caller);
    EXPECT_LT(b, caller);
    EXPECT_GT(a, caller - 64 * 1024);
    EXPECT_GT(b, caller - 64 * 1024);
    EXPECT_NE(a, b);
  }, heddle::SpawnOptions{.pool = nullptr});
  task.join();
}

TEST(Join, NestedArmsThatParkAndResume) {
  // Parking takes about 10 KiB of stack in clang's ASan debug build (3.4 KiB
  // with g++'s, a few hundred bytes optimised).
  constexpr std::size_t kArmBytes = HEDDLE_ASAN ? 16 * 1024 : 8 * 1024;
  Resumer r1, r2;
  auto task = heddle::spawn([&] {
    auto [x, y] = heddle::join(
        heddle::nested(kArmBytes),
        [&] {
          park_into(r1);
          return 1;
        },
        [&] {
          park_into(r2);
          return 2;
        });
    return x + y;
  });
  r1.resume();
  r2.resume();
  EXPECT_EQ(task.join(), 3);
}

TEST(Join, NestedStacksTooBigForTheCallerAreRejected) {
  auto task = heddle::spawn([] { heddle::join(heddle::nested(1 << 20), [] {}, [] {}); });
  // Exactly std::length_error (docs/misuse.md), not just something derived from it.
  try {
    task.join();
    ADD_FAILURE() << "no exception";
  } catch (const std::exception& e) {
    EXPECT_TRUE(typeid(e) == typeid(std::length_error)) << "threw " << typeid(e).name();
    EXPECT_NE(std::string(e.what()).find("nested arm stacks need"), std::string::npos) << e.what();
  }
}

std::string own_name() { return heddle::this_task::name(); }

TEST(Join, EachArmIsNamedForItsPosition) {
  auto [a, b, c] = heddle::join(own_name, own_name, own_name);
  EXPECT_EQ(a, "join arm 0");
  EXPECT_EQ(b, "join arm 1");
  EXPECT_EQ(c, "join arm 2");
  auto task = heddle::spawn([] { return heddle::join(heddle::nested(8 * 1024), own_name, own_name); });
  EXPECT_EQ(task.join(), std::make_tuple(std::string("join arm 0"), std::string("join arm 1")));
}

// An arm's spawn site is the caller's join/select call (this file, that
// line), not a line inside combinators.hpp.
heddle::SourceLocation own_site() { return heddle::this_task::spawn_site(); }

void expect_site(const heddle::SourceLocation& site, unsigned line) {
  EXPECT_STREQ(site.file_name(), __FILE__);
  EXPECT_EQ(site.line(), line);
}

TEST(Join, ArmsAreSpawnedAtTheCallersLine) {
  auto [a, b] = heddle::join(own_site, own_site); const unsigned line = __LINE__;
  expect_site(a, line);
  expect_site(b, line);
}

TEST(Join, NestedArmsAreSpawnedAtTheCallersLine) {
  auto task = heddle::spawn([] {
    auto [a, b] = heddle::join(heddle::nested(8 * 1024), own_site, own_site); const unsigned line = __LINE__;
    expect_site(a, line);
    expect_site(b, line);
  });
  task.join();
}

TEST(Join, FromAPlainThreadWhenArmsFinishOnTheirOwn) {
  auto [a, b] = heddle::join([] { return 1; }, [] { return 2; });
  EXPECT_EQ(a + b, 3);
}

TEST(Select, FirstToFinishWinsAndTheOthersAreCancelled) {
  Resumer slow, fast;
  bool slow_unwound = false;
  auto task = heddle::spawn([&] {
    return heddle::select(
        [&] {
          SetOnDestroy guard{slow_unwound};
          park_into(slow);
          return std::string("slow");
        },
        [&] {
          park_into(fast);
          return 42;
        });
  });
  fast.resume();
  EXPECT_TRUE(slow_unwound);
  EXPECT_FALSE(slow.resume());
  auto winner = task.join();
  ASSERT_EQ(winner.index(), 1u);
  EXPECT_EQ(std::get<1>(winner), 42);
}

TEST(Select, ArmThatFinishesAtOnceWins) {
  auto task = heddle::spawn([] {
    return heddle::select([] { heddle::suspend([](const Resumer&) {}); return 1; }, [] { return 2; });
  });
  auto winner = task.join();
  EXPECT_EQ(winner.index(), 1u);
  EXPECT_EQ(std::get<1>(winner), 2);
}

TEST(Select, WinnerThatThrowsIsRethrown) {
  auto task = heddle::spawn([] {
    return heddle::select([] { heddle::suspend([](const Resumer&) {}); }, []() -> int { throw std::runtime_error("x"); });
  });
  EXPECT_THROW(task.join(), std::runtime_error);
}

// Arms are eager: one that finishes without suspending finishes during its
// own start. From then on select has its winner, and no later arm starts.
TEST(Select, NoArmStartsOnceAnArmFinishedWhileStarting) {
  bool later_ran = false;
  auto winner = heddle::select([] { return 1; }, [&] {
    later_ran = true;
    return 2;
  });
  EXPECT_FALSE(later_ran);
  ASSERT_EQ(winner.index(), 0u);
  EXPECT_EQ(std::get<0>(winner), 1);
}

TEST(Select, NoArmStartsOnceAnArmThrewWhileStarting) {
  bool later_ran = false;
  EXPECT_THROW(heddle::select([]() -> int { throw std::runtime_error("first"); }, [&] {
    later_ran = true;
    return 2;
  }),
               std::runtime_error);
  EXPECT_FALSE(later_ran);
}

TEST(Select, NoArmStartsOnceAnEarlierArmFinishedWhileALaterOneStarted) {
  Resumer first;
  bool second_unwound = false, third_ran = false;
  auto task = heddle::spawn([&] {
    return heddle::select(
        [&] {
          park_into(first);
          return 1;
        },
        [&] {
          SetOnDestroy guard{second_unwound};
          first.resume();  // the first arm finishes: it is the winner
          heddle::suspend([](const Resumer&) {});
          return 2;
        },
        [&] {
          third_ran = true;
          return 3;
        });
  });
  EXPECT_TRUE(task.finished());
  EXPECT_TRUE(second_unwound);
  EXPECT_FALSE(third_ran);
  auto winner = task.join();
  ASSERT_EQ(winner.index(), 0u);
  EXPECT_EQ(std::get<0>(winner), 1);
}

TEST(Select, NoNestedArmStartsOnceAnArmFinishedWhileStarting) {
  bool later_ran = false;
  auto task = heddle::spawn([&] {
    return heddle::select(heddle::nested(8 * 1024), [] { return 1; }, [&] {
      later_ran = true;
      return 2;
    });
  });
  auto winner = task.join();
  EXPECT_FALSE(later_ran);
  EXPECT_EQ(winner.index(), 0u);
}

TEST(Select, EachArmIsNamedForItsPosition) {
  std::string first;
  auto task = heddle::spawn([&] {
    return heddle::select(
        [&] {
          first = heddle::this_task::name();
          heddle::suspend([](const Resumer&) {});  // so that the next arm starts
        },
        own_name);
  });
  auto winner = task.join();
  EXPECT_EQ(first, "select arm 0");
  ASSERT_EQ(winner.index(), 1u);
  EXPECT_EQ(std::get<1>(winner), "select arm 1");
}

TEST(Select, ArmsAreSpawnedAtTheCallersLine) {
  heddle::SourceLocation first;
  auto parks_first = [&] {
    first = heddle::this_task::spawn_site();
    heddle::suspend([](const Resumer&) {});  // so that the next arm starts
    return heddle::SourceLocation{};
  };
  auto task = heddle::spawn([&] {
    auto winner = heddle::select(parks_first, own_site); const unsigned line = __LINE__;
    expect_site(first, line);
    ASSERT_EQ(winner.index(), 1u);
    expect_site(std::get<1>(winner), line);
  });
  task.join();
}

TEST(Select, NestedArmsAreSpawnedAtTheCallersLine) {
  heddle::SourceLocation first;
  auto parks_first = [&] {
    first = heddle::this_task::spawn_site();
    heddle::suspend([](const Resumer&) {});
    return heddle::SourceLocation{};
  };
  auto task = heddle::spawn([&] {
    // 16 KiB: a parked arm needs about 10 KiB in a clang ASan debug build.
    auto winner = heddle::select(heddle::nested(16 * 1024), parks_first, own_site); const unsigned line = __LINE__;
    expect_site(first, line);
    ASSERT_EQ(winner.index(), 1u);
    expect_site(std::get<1>(winner), line);
  });
  task.join();
}

TEST(Select, CancellingTheWaiterCancelsEveryArm) {
  int unwound = 0;
  auto task = heddle::spawn([&] { heddle::select(parked_forever(unwound), parked_forever(unwound)); });
  task.cancel();
  EXPECT_EQ(unwound, 2);
  EXPECT_THROW(task.join(), heddle::Cancelled);
}

TEST(TaskGroup, WaitsForEveryChild) {
  std::vector<Resumer> parked(100);
  int finished = 0;
  auto task = heddle::spawn([&] {
    heddle::TaskGroup group;
    for (int i = 0; i < 100; ++i) {
      group.spawn([&, i] {
        park_into(parked[i]);
        ++finished;
      });
    }
    EXPECT_EQ(group.size(), 100u);
    group.wait();
    return finished;
  });
  for (int i = 0; i < 100; ++i) {
    EXPECT_FALSE(task.finished());
    parked[i].resume();
  }
  EXPECT_EQ(task.join(), 100);
}

TEST(TaskGroup, ChildExceptionCancelsTheRestAndIsRethrown) {
  Resumer failing;
  int unwound = 0;
  auto task = heddle::spawn([&] {
    heddle::TaskGroup group;
    for (int i = 0; i < 10; ++i) {
      group.spawn([&] {
        struct G { int& n; ~G() { ++n; } } g{unwound};
        heddle::suspend([](const Resumer&) {});
      });
    }
    group.spawn([&] {
      park_into(failing);
      throw std::runtime_error("child failed");
    });
    group.wait();
  });
  failing.resume();
  EXPECT_EQ(unwound, 10);
  EXPECT_THROW(task.join(), std::runtime_error);
}

TEST(TaskGroup, DestructorWaitsAndRethrows) {
  Resumer parked;
  auto task = heddle::spawn([&] {
    heddle::TaskGroup group;
    group.spawn([&] {
      park_into(parked);
      throw std::runtime_error("from child");
    });
  });  // the group's scope ends inside the task: it waits there
  EXPECT_FALSE(task.finished());
  parked.resume();
  EXPECT_THROW(task.join(), std::runtime_error);
}

TEST(TaskGroup, ScopeLeftByAnExceptionCancelsChildren) {
  bool child_unwound = false;
  auto task = heddle::spawn([&] {
    heddle::TaskGroup group;
    group.spawn([&] {
      SetOnDestroy guard{child_unwound};
      heddle::suspend([](const Resumer&) {});
    });
    throw std::runtime_error("owner fails");
  });
  EXPECT_TRUE(child_unwound);
  EXPECT_THROW(task.join(), std::runtime_error);
}

TEST(TaskGroup, SpawnFromAnotherTaskIsRejected) {
  auto task = heddle::spawn([] {
    heddle::TaskGroup group;
    auto other = heddle::spawn([&] { group.spawn([] {}); });
    EXPECT_THROW(other.join(), std::logic_error);
  });
  task.join();
}

TEST(TaskGroup, ManyShortChildrenAreReapedAsTheyFinish) {
  auto& pool = heddle::StackPool::default_pool();
  heddle::TaskGroup group;
  for (int i = 0; i < 10000; ++i) group.spawn([] {});
  EXPECT_LE(group.size(), 1u);
  EXPECT_LE(pool.stats().live, 1u);
  group.wait();
}

}  // namespace
