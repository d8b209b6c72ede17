// heddle core: the stack each spawn site's tasks really used.
//
// Owns: the stack profile. While it is on, every task's stack high-water
// mark (heddle::high_water) is measured when the task is released (joined,
// or finished detached) and added to its spawn site: the source location
// of the spawn call, with the task's name. stack_report() returns the sites;
// HEDDLE_STACK_REPORT=<file> turns the profile on at start-up and writes the
// report there as JSON when the process exits.
//
// Precision, per site (the coarsest of its tasks'):
//   bytes    painted stacks (SpawnOptions::paint, StackPool::Options::paint):
//            the deepest byte written
//   pages    pool stacks that are not painted: the resident pages (mincore),
//            so the figure is rounded up to whole pages
//   unknown  caller storage (static, span, nested) that is not painted:
//            its tasks are counted, not sized
// Painting costs a write of the whole stack at spawn; pages cost a mincore
// call per task at release. Off, the profile costs one relaxed load and a
// not-taken branch per released task.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace heddle {

struct SpawnSiteStack {
  std::string file;      // the spawn call's source location
  unsigned line = 0;
  std::string function;
  std::string name;      // the task name given at that site ("" if none)
  std::uint64_t tasks = 0;        // tasks measured there (for a with_stack site: segments)
  std::uint64_t unmeasured = 0;   // tasks there whose stack could not be measured
  std::size_t high_water = 0;     // the deepest any of them used, in bytes from the stack's top
  std::size_t granularity = 0;    // 8 (bytes), the page size (pages), or 0 (unknown: none measured)
  std::size_t stack_bytes = 0;    // the largest stack any of them had
  // "bytes", "pages" or "unknown", from granularity.
  const char* precision() const noexcept;
};

// Turns the profile on or off. Turning it on does not forget what was
// measured; reset_stack_report() does.
void enable_stack_profile(bool on = true) noexcept;
bool stack_profile_enabled() noexcept;
void reset_stack_report() noexcept;

// Every site measured so far, sorted by file, line and name.
std::vector<SpawnSiteStack> stack_report();

// The report as JSON:
//   {"heddle_stack_report": 1, "pid": 4242, "sites": [
//     {"file": "/src/app.cpp", "line": 31, "function": "main", "name": "worker",
//      "tasks": 1000, "unmeasured": 0, "high_water_bytes": 3512,
//      "precision": "bytes", "granularity_bytes": 8, "stack_bytes": 65536}, ...]}
// Strings are UTF-8: a name's bytes that are not well-formed UTF-8 are
// written as U+FFFD (the same in the trace). The path version throws std::system_error naming the file when it cannot
// be written.
void write_stack_report(std::ostream& out);
void write_stack_report(const std::string& path);

}  // namespace heddle
