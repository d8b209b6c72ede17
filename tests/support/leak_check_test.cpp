// The leak check itself (leak_check.hpp): it counts what a test leaves, and
// a declared leftover passes. That a leak fails the test that leaked is
// leak_check_fails_test.cpp's to show.
#include <gtest/gtest.h>

#include "heddle/heddle.hpp"
#include "heddle/sync/event.hpp"
#include "leak_check.hpp"

namespace {

using heddle::test::leftovers_now;

// Parks a task, named `name`, forever on an Event nobody sets.
void leak_a_parked_task(const char* name) {
  static auto* const never = new heddle::Event;  // never destroyed: it has waiters
  heddle::spawn([] { never->wait(); }, {.name = name}).detach();
}

TEST(LeakCheck, CountsLiveTasksAndLentStacks) {
  const auto before = leftovers_now();
  heddle::Event go;
  auto task = heddle::spawn([&] { go.wait(); });
  const auto during = leftovers_now();
  EXPECT_EQ(during.live_tasks, before.live_tasks + 1);
  EXPECT_EQ(during.lent_stacks, before.lent_stacks + 1);
  go.set();
  task.join();
  const auto after = leftovers_now();
  EXPECT_EQ(after.live_tasks, before.live_tasks);
  EXPECT_EQ(after.lent_stacks, before.lent_stacks);
}

TEST(LeakCheck, ADeclaredLeftoverPasses) {
  heddle::test::LeftoverTasks leftovers("the leak check's own test of its opt-out");
  leak_a_parked_task("declared leftover");
}

}  // namespace
