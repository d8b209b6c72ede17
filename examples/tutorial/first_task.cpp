// heddle tutorial 1: a first task.
//
// spawn runs the task at once, on this thread, until it first suspends; the
// suspension hands out a Resumer; main resumes it and joins it. A task that
// throws has its exception rethrown by join.
#include <cstdio>
#include <stdexcept>
#include <string>

#include "heddle/heddle.hpp"

int main() {
  // --- spawn, park, resume, join ---
  std::string log;
  heddle::Resumer parked;  // 16 bytes, copyable, always safe to use
  auto task = heddle::spawn([&] {
    log += "started ";
    heddle::suspend([&](const heddle::Resumer& r) { parked = r; });  // park here
    log += "resumed ";
    return 42;
  });
  // Eager: the task already ran up to its suspension point.
  if (log != "started " || task.finished()) return 1;

  if (!parked.resume()) return 2;  // switches into the task now; back when it finishes
  if (parked.resume()) return 3;   // a used Resumer is stale: false, does nothing
  const int answer = task.join();  // 42
  if (answer != 42 || log != "started resumed ") return 4;

  // --- a task that throws: join rethrows ---
  auto failing = heddle::spawn([]() -> int { throw std::runtime_error("boom"); });
  std::string caught;
  try {
    (void)failing.join();
  } catch (const std::runtime_error& e) {
    caught = e.what();
  }
  if (caught != "boom") return 5;

  // --- where a stack lives ---
  // Default: a 64 KiB stack from StackPool::default_pool(). A pool of your own
  // picks the size; a StaticStack (or any span) is storage you provide.
  heddle::StackPool small_pool({.stack_bytes = 16 * 1024});
  auto pooled = heddle::spawn([] { return 1; }, {.name = "pooled", .pool = &small_pool});
  static heddle::StaticStack<16 * 1024> storage;  // must outlive the task
  auto fixed = heddle::spawn([] { return 2; }, {.name = "static", .stack = storage.stack()});
  if (pooled.join() + fixed.join() != 3) return 6;

  std::printf("first_task: answer %d, log \"%s\", caught \"%s\"\n", answer, log.c_str(), caught.c_str());
  return 0;
}
