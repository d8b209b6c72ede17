// heddle tests: every test leaves no task live and no stack lent.
//
// Every test program's main (test_main.cpp) installs a GoogleTest listener
// that, after each test, counts the tasks live in heddle's task registry
// (the control blocks, core/detail/control.hpp) and the stacks the default
// StackPool has lent out. Anything left fails the test that left it, with
// dump_tasks' report of the live tasks. Tasks finishing on other threads
// just after the test are waited for, briefly, before it counts as a leak.
// What one test leaked is reported once: later tests are measured against
// what was left before them.
//
// A test that leaves tasks on purpose says so, and why, with
//   heddle::test::LeftoverTasks leftovers("the death test's child keeps them");
// whatever is live when that object is destroyed may outlive the test; a
// leak after it still fails.
#pragma once

#include <cstddef>
#include <string>

namespace heddle::test {

struct Leftovers {
  std::size_t live_tasks = 0;    // tasks in the registry that have not finished
  std::size_t lent_stacks = 0;   // stacks StackPool::default_pool() has handed out
};

// What is live now, in the whole process.
Leftovers leftovers_now();

// Accepts what is live when it is destroyed as the running test's
// leftovers. `why` is printed with the test's result.
class LeftoverTasks {
 public:
  explicit LeftoverTasks(std::string why);
  ~LeftoverTasks();
  LeftoverTasks(const LeftoverTasks&) = delete;
  LeftoverTasks& operator=(const LeftoverTasks&) = delete;

 private:
  std::string why_;
};

// Appends the listener to GoogleTest's (call after InitGoogleTest).
void install_leak_check();

}  // namespace heddle::test
