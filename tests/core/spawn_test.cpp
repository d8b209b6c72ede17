// Spawning, joining, detaching, results and exceptions, bad input.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"

namespace {

using heddle::Resumer;

void park_into(Resumer& slot) {
  heddle::suspend([&](const Resumer& r) { slot = r; });
}

TEST(Spawn, RunsEagerlyUntilFirstSuspension) {
  std::vector<std::string> log;
  Resumer parked;
  log.push_back("before spawn");
  auto task = heddle::spawn([&] {
    log.push_back("child starts");
    park_into(parked);
    log.push_back("child resumed");
    return 7;
  });
  log.push_back("spawn returned");
  EXPECT_FALSE(task.finished());
  EXPECT_TRUE(parked.resume());
  log.push_back("resume returned");
  EXPECT_TRUE(task.finished());
  EXPECT_EQ(task.join(), 7);
  EXPECT_EQ(log, (std::vector<std::string>{"before spawn", "child starts", "spawn returned", "child resumed",
                                           "resume returned"}));
}

TEST(Spawn, TaskThatNeverSuspendsHasFinishedWhenSpawnReturns) {
  int runs = 0;
  auto task = heddle::spawn([&] { ++runs; });
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(task.finished());
  task.join();
}

TEST(Spawn, MoveOnlyResultsAndCallables) {
  auto owned = std::make_unique<int>(41);
  auto task = heddle::spawn([p = std::move(owned)]() mutable {
    ++*p;
    return std::move(p);
  });
  auto result = task.join();
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, 42);
}

TEST(Spawn, ExceptionPropagatesToJoin) {
  auto task = heddle::spawn([]() -> int { throw std::runtime_error("boom"); });
  EXPECT_THROW(
      {
        try {
          task.join();
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "boom");
          throw;
        }
      },
      std::runtime_error);
}

TEST(Spawn, ExceptionAfterSuspensionPropagatesToJoin) {
  Resumer parked;
  auto task = heddle::spawn([&] {
    park_into(parked);
    throw std::out_of_range("late");
  });
  parked.resume();
  EXPECT_THROW(task.join(), std::out_of_range);
}

TEST(Spawn, JoinTwiceThrowsLogicError) {
  auto task = heddle::spawn([] { return 1; });
  EXPECT_EQ(task.join(), 1);
  EXPECT_THROW(task.join(), std::logic_error);
  EXPECT_THROW(task.detach(), std::logic_error);
}

// Every accessor of an empty handle is safe: the queries answer "no task"
// (false, 0, "", an empty Stack, a zero StackUsage, null), cancel() does
// nothing, and join() and detach(), which must act on a task, throw
// std::logic_error.
template <class T>
void expect_every_accessor_safe_on_empty(heddle::Task<T>& task) {
  EXPECT_FALSE(task.joinable());
  EXPECT_FALSE(static_cast<bool>(task));
  EXPECT_FALSE(task.finished());
  EXPECT_EQ(task.id(), 0u);
  EXPECT_STREQ(task.name(), "");
  const heddle::Stack& stack = task.stack();
  EXPECT_FALSE(static_cast<bool>(stack));
  EXPECT_EQ(stack.low, nullptr);
  EXPECT_EQ(stack.size, 0u);
  EXPECT_EQ(stack.pool, nullptr);
  const heddle::StackUsage use = task.stack_high_water();
  EXPECT_EQ(use.bytes, 0u);
  EXPECT_EQ(use.granularity, 0u);
  EXPECT_EQ(task.control(), nullptr);
  task.cancel();
  EXPECT_THROW((void)task.join(), std::logic_error);
  EXPECT_THROW(task.detach(), std::logic_error);
  EXPECT_FALSE(task.joinable());  // still empty after every call above
}

TEST(Spawn, EveryAccessorIsSafeOnAnEmptyHandle) {
  {
    SCOPED_TRACE("default-constructed");
    heddle::Task<int> task;
    expect_every_accessor_safe_on_empty(task);
    heddle::Task<void> void_task;
    expect_every_accessor_safe_on_empty(void_task);
  }
  {
    SCOPED_TRACE("moved from");
    Resumer parked;
    auto task = heddle::spawn([&] {
      park_into(parked);
      return 7;
    });
    heddle::Task<int> owner = std::move(task);
    expect_every_accessor_safe_on_empty(task);
    EXPECT_NE(owner.stack().size, 0u);  // the stack went with the task
    parked.resume();
    EXPECT_EQ(owner.join(), 7);
    SCOPED_TRACE("joined");
    expect_every_accessor_safe_on_empty(owner);
  }
  {
    SCOPED_TRACE("detached");
    auto task = heddle::spawn([] {});
    task.detach();
    expect_every_accessor_safe_on_empty(task);
  }
}

TEST(Spawn, DestroyingAnUnjoinedParkedTaskCancelsAndJoinsIt) {
  Resumer parked;
  bool unwound = false;
  {
    auto task = heddle::spawn([&] {
      struct Guard {
        bool& flag;
        ~Guard() { flag = true; }
      } guard{unwound};
      park_into(parked);
      ADD_FAILURE() << "a cancelled task must not continue after its suspension point";
    });
  }
  EXPECT_TRUE(unwound);
  EXPECT_FALSE(parked.resume());
}

TEST(Spawn, DetachedTaskReleasesItsStorageWhenItFinishes) {
  auto& pool = heddle::StackPool::default_pool();
  const auto live_before = pool.stats().live;
  Resumer parked;
  int done = 0;
  heddle::spawn([&] {
    park_into(parked);
    ++done;
  }).detach();
  EXPECT_EQ(pool.stats().live, live_before + 1);
  EXPECT_TRUE(parked.resume());
  EXPECT_EQ(done, 1);
  EXPECT_EQ(pool.stats().live, live_before);
}

TEST(Spawn, DetachAfterFinishReleasesAtOnce) {
  auto& pool = heddle::StackPool::default_pool();
  const auto live_before = pool.stats().live;
  auto task = heddle::spawn([] {});
  task.detach();
  EXPECT_EQ(pool.stats().live, live_before);
}

TEST(Spawn, NamesIdsAndSpawnSite) {
  heddle::SpawnOptions options;
  options.name = "worker-with-a-name-longer-than-thirty-one-bytes";
  std::string seen_name;
  std::uint64_t seen_id = 0;
  unsigned seen_line = 0;
  const unsigned spawn_line = __LINE__ + 1;
  auto task = heddle::spawn(
      [&] {
        seen_name = heddle::this_task::name();
        seen_id = heddle::this_task::id();
        seen_line = heddle::this_task::spawn_site().line();
        EXPECT_TRUE(heddle::this_task::in_task());
      },
      options);
  EXPECT_EQ(seen_name, std::string(options.name).substr(0, 31));
  EXPECT_EQ(seen_id, task.id());
  EXPECT_NE(seen_id, 0u);
  EXPECT_EQ(seen_line, spawn_line);
  task.join();
  EXPECT_FALSE(heddle::this_task::in_task());
  EXPECT_EQ(heddle::this_task::id(), 0u);
}

TEST(Spawn, ChildrenOfChildren) {
  auto outer = heddle::spawn([] {
    auto a = heddle::spawn([] { return 20; });
    auto b = heddle::spawn([] { return heddle::spawn([] { return 22; }).join(); });
    return a.join() + b.join();
  });
  EXPECT_EQ(outer.join(), 42);
}

TEST(Spawn, JoinFromATaskWaitsForAParkedChild) {
  Resumer child_parked;
  auto parent = heddle::spawn([&] {
    auto child = heddle::spawn([&] {
      park_into(child_parked);
      return 5;
    });
    return child.join() * 2;  // parks the parent until the child finishes
  });
  EXPECT_FALSE(parent.finished());
  EXPECT_TRUE(child_parked.resume());  // child finishes and wakes the parent
  EXPECT_TRUE(parent.finished());
  EXPECT_EQ(parent.join(), 10);
}

TEST(Spawn, ManyTasksParkedThenResumedFromMain) {
  // No scheduler anywhere: the Resumers are kept in a vector.
  std::vector<Resumer> parked(1000);
  std::vector<heddle::Task<int>> tasks;
  for (int i = 0; i < 1000; ++i) {
    tasks.push_back(heddle::spawn([&parked, i] {
      park_into(parked[i]);
      return i;
    }));
  }
  for (int i = 999; i >= 0; --i) EXPECT_TRUE(parked[i].resume());
  long sum = 0;
  for (auto& t : tasks) sum += t.join();
  EXPECT_EQ(sum, 999L * 1000 / 2);
}

TEST(Spawn, CallsOutsideATaskAreRejected) {
  EXPECT_THROW(heddle::suspend([](const Resumer&) {}), std::logic_error);
  EXPECT_THROW(heddle::this_task::yield(), std::logic_error);
}

TEST(Spawn, TooSmallStackIsRejectedWithSizes) {
  alignas(16) static std::byte tiny[1024];
  try {
    heddle::SpawnOptions options;
    options.stack = heddle::stack_from_span(tiny);
    FAIL() << "a 1024-byte stack must be rejected";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("1024"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("2048"), std::string::npos) << e.what();
  }
}

TEST(Spawn, CallableTooBigForItsStackIsRejected) {
  heddle::StaticStack<4096> storage;
  heddle::SpawnOptions options;
  options.stack = storage.stack();
  struct Big {
    std::byte payload[8192];
    void operator()() const {}
  };
  EXPECT_THROW((void)heddle::spawn(Big{}, options), std::invalid_argument);
}

TEST(Spawn, StaticStackAndSpanStacks) {
  static heddle::StaticStack<16 * 1024> storage;
  heddle::SpawnOptions options;
  options.stack = storage.stack();
  auto a = heddle::spawn([] { return 1; }, options);
  EXPECT_EQ(a.stack().kind, heddle::StackKind::static_storage);
  EXPECT_EQ(a.join(), 1);

  std::vector<std::byte> buffer(32 * 1024 + 16);
  auto aligned = reinterpret_cast<std::uintptr_t>(buffer.data() + 15) & ~std::uintptr_t{15};
  options.stack = heddle::stack_from_span({reinterpret_cast<std::byte*>(aligned), 32 * 1024});
  Resumer parked;
  auto b = heddle::spawn(
      [&] {
        park_into(parked);
        return 2;
      },
      options);
  EXPECT_EQ(b.stack().kind, heddle::StackKind::span);
  parked.resume();
  EXPECT_EQ(b.join(), 2);
}

TEST(Spawn, HookExceptionPropagatesFromSuspend) {
  auto task = heddle::spawn([] {
    try {
      heddle::suspend([](const Resumer&) { throw std::runtime_error("hook failed"); });
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  });
  EXPECT_EQ(task.join(), "hook failed");
}

TEST(Spawn, YieldIsACancellationPointThatReturns) {
  int steps = 0;
  auto task = heddle::spawn([&] {
    for (int i = 0; i < 10; ++i) {
      heddle::this_task::yield();
      ++steps;
    }
  });
  EXPECT_EQ(steps, 10);
  task.join();
}

}  // namespace
