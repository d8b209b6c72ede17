// heddle core: tracing task events to a Chrome trace file.
//
// Owns: recording spawn, resume (a task switched in on a thread), suspend
// (with the leaf it waits in), cancel and finish events, and writing them
// in the Chrome trace-event JSON format, which Perfetto (ui.perfetto.dev)
// and chrome://tracing open. Each thread's track shows the slices during
// which tasks ran on it, named after the task; spawns and cancels are
// instant events carrying the task id.
//
//   HEDDLE_TRACE=trace.json ./server     # records from start-up, written at exit
//   heddle::trace::start("trace.json");  // or around the part of interest
//   ...
//   heddle::trace::stop();               // writes the file
//
// Recording: each thread appends to a ring of its own (65,536 events, the
// oldest overwritten; the file says how many were dropped), with no lock
// and no allocation after the ring is made. Cost when off: one load and a
// predictable branch at each event site (bench/core_bench.cpp shows
// spawn_join and switch with tracing off and on).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace heddle {

namespace trace {
// Starts recording; the file is written by stop() or at process exit.
// Throws std::system_error naming `path` when it cannot be created, and
// std::logic_error if tracing is already on.
void start(const std::string& path);
// Stops recording and writes the file (Chrome trace-event JSON). Throws
// std::system_error naming the path if writing fails. No-op when off.
void stop();
bool enabled() noexcept;
}  // namespace trace

namespace detail {
struct TaskControl;

enum class TraceKind : std::uint8_t { spawn, resume, suspend, finish, cancel };

extern std::atomic<bool> trace_on;
[[gnu::cold]] void trace_record(TraceKind kind, const TaskControl* task) noexcept;

// The event sites call this: off, it is a relaxed load and a branch.
inline void trace_event(TraceKind kind, const TaskControl* task) noexcept {
  if (__builtin_expect(trace_on.load(std::memory_order_relaxed), false)) trace_record(kind, task);
}
}  // namespace detail

}  // namespace heddle
