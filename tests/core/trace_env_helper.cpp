// Run by trace_test.cpp with HEDDLE_TRACE set: no tracing call of its own,
// so whatever the file holds was started by the environment variable and
// written at exit.
#include <cstdio>

#include "heddle/core/task.hpp"
#include "heddle/sync/event.hpp"

int main() {
  heddle::Event event;
  auto waiter = heddle::spawn([&] { event.wait(); }, {.name = "env-waiter"});
  event.set();
  waiter.join();
  std::puts("helper done");
  return 0;
}
