// The leak check must fail a test that leaks: this program's one test
// leaves a task parked, and ctest (support/CMakeLists.txt) passes only if
// the test failed for it, naming the task. A listener that stopped failing
// anything would be noticed here.
#include <gtest/gtest.h>

#include "heddle/heddle.hpp"
#include "heddle/sync/event.hpp"

namespace {

TEST(LeakCheckFails, ATestThatLeavesATaskParked) {
  static auto* const never = new heddle::Event;  // never destroyed: it has a waiter
  heddle::spawn([] { never->wait(); }, {.name = "leaked on purpose"}).detach();
}

}  // namespace
