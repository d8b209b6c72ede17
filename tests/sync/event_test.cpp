// Event between tasks: manual and automatic reset, cancellation, scale.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/event.hpp"

namespace {

TEST(Event, ManualResetWakesEveryWaiterAndStaysSet) {
  heddle::Event event;
  int woken = 0;
  std::vector<heddle::Task<void>> tasks;
  for (int i = 0; i < 10; ++i) tasks.push_back(heddle::spawn([&] { event.wait(); ++woken; }));
  EXPECT_EQ(woken, 0);
  EXPECT_EQ(event.waiters(), 10u);
  event.set();
  EXPECT_EQ(woken, 10);
  EXPECT_TRUE(event.is_set());
  event.wait();  // already set: returns at once, even on a thread
  for (auto& t : tasks) t.join();
}

TEST(Event, AutomaticResetWakesOneWaiterPerSet) {
  heddle::Event event(heddle::Event::Reset::automatic);
  int woken = 0;
  auto a = heddle::spawn([&] { event.wait(); ++woken; });
  auto b = heddle::spawn([&] { event.wait(); ++woken; });
  event.set();
  EXPECT_EQ(woken, 1);
  EXPECT_FALSE(event.is_set());
  event.set();
  EXPECT_EQ(woken, 2);
  event.set();  // no waiter: stays set for the next one
  EXPECT_TRUE(event.is_set());
  auto c = heddle::spawn([&] { event.wait(); ++woken; });
  EXPECT_EQ(woken, 3);
  EXPECT_FALSE(event.is_set());
  a.join();
  b.join();
  c.join();
}

TEST(Event, CancelledWaiterLeavesTheListAndTakesNothing) {
  heddle::Event event(heddle::Event::Reset::automatic);
  int woken = 0;
  auto cancelled = heddle::spawn([&] { event.wait(); ++woken; });
  auto other = heddle::spawn([&] { event.wait(); ++woken; });
  cancelled.cancel();
  EXPECT_EQ(event.waiters(), 1u);
  event.set();  // must go to `other`, not be lost on the cancelled one
  EXPECT_EQ(woken, 1);
  EXPECT_TRUE(other.finished());
  EXPECT_THROW(cancelled.join(), heddle::Cancelled);
  other.join();
}

TEST(Event, WaitIsACancellationPointEvenWhenCancelledBeforeWaiting) {
  heddle::Event event;
  auto task = heddle::spawn([&] {
    heddle::this_task::cancel();
    event.wait();
  });
  EXPECT_THROW(task.join(), heddle::Cancelled);
  EXPECT_EQ(event.waiters(), 0u);
  event.set();
}

// A million tasks on 8 KiB stacks in release builds. Under AddressSanitizer
// a parked task's stack holds about 10 KiB (clang: every local has red
// zones, and the fibre switch runs in the sanitizer's runtime), so 8 KiB
// stacks would overflow into each other: those builds use 16 KiB stacks
// and a tenth of the tasks, which keeps their memory and time in bounds.
TEST(Event, MillionTasksParkedOnOneEventAllWake) {
  constexpr int kTasks = HEDDLE_ASAN ? 100'000 : 1'000'000;
  constexpr std::size_t kStackBytes = HEDDLE_ASAN ? 16 * 1024 : 8 * 1024;
  heddle::StackPool pool(heddle::StackPool::Options{.stack_bytes = kStackBytes, .guard = heddle::StackPool::Guard::never});
  heddle::Event event;
  long woken = 0;
  heddle::TaskGroup group(&pool);
  for (int i = 0; i < kTasks; ++i) group.spawn([&] { event.wait(); ++woken; });
  EXPECT_EQ(event.waiters(), static_cast<std::size_t>(kTasks));
  event.set();
  EXPECT_EQ(woken, kTasks);
  group.wait();
}

// In every build (the check preset defines NDEBUG): the waiters would
// otherwise be left parked on freed memory.
TEST(EventDeathTest, DestroyingAnEventWithWaitersAbortsNamingTheFirst) {
  EXPECT_DEATH(
      {
        auto* event = new heddle::Event;
        heddle::spawn([event] { event->wait(); }, {.name = "first waiter"}).detach();
        heddle::spawn([event] { event->wait(); }, {.name = "second waiter"}).detach();
        delete event;
      },
      "heddle::Event at 0x[0-9a-f]+ destroyed while 2 waiters are parked on it; the first: task [0-9]+ "
      "\"first waiter\" spawned at .*event_test.cpp:[0-9]+");
}

TEST(EventDeathTest, DestroyingAnEventAThreadWaitsOnAborts) {
  EXPECT_DEATH(
      {
        auto* event = new heddle::Event;
        std::thread([event] { event->wait(); }).detach();
        while (event->waiters() == 0) std::this_thread::yield();
        delete event;
      },
      "heddle::Event at 0x[0-9a-f]+ destroyed while 1 waiter is parked on it; the first: a thread");
}

}  // namespace
