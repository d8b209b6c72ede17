// The program tests/tools/gdb_test.sh debugs: it stops in
// heddle_gdb_test_stop() with one task parked three calls deep in an Event
// and another task running on the main thread, then lets both finish.
#include <cstdio>

#include "heddle/heddle.hpp"

extern "C" [[gnu::noinline]] void heddle_gdb_test_stop() { asm volatile("" ::: "memory"); }

namespace {

[[gnu::noinline]] void parked_level_three(heddle::Event& event) {
  event.wait();
  asm volatile("" ::: "memory");  // keeps the call a call, not a tail jump
}
[[gnu::noinline]] void parked_level_two(heddle::Event& event) {
  parked_level_three(event);
  asm volatile("" ::: "memory");
}
[[gnu::noinline]] void parked_level_one(heddle::Event& event) {
  parked_level_two(event);
  asm volatile("" ::: "memory");
}

}  // namespace

int main() {
  heddle::Event event;
  auto parked = heddle::spawn([&] { parked_level_one(event); }, {.name = "gdb-parked"});
  auto running = heddle::spawn([&] {
    heddle_gdb_test_stop();
    event.set();
  }, {.name = "gdb-running"});
  running.join();
  parked.join();
  std::puts("gdb target: done");
  return 0;
}
