// heddle core: tracing task events to a Chrome trace file.
//
// Owns: recording spawn, resume (a task switched in on a thread), suspend
// (with the leaf it waits in), cancel and finish events, and writing them
// in the Chrome trace-event JSON format, which Perfetto (ui.perfetto.dev)
// and chrome://tracing open. Each thread's track shows the slices during
// which tasks ran on it, named after the task (a task that resumes another
// inline, or spawns one, holds it as a nested slice); spawns and cancels are
// instant events carrying the task id.
//
//   HEDDLE_TRACE=trace.json ./server     # records from start-up, written at exit
//   heddle::trace::start("trace.json");  // or around the part of interest
//   ...
//   heddle::trace::stop();               // writes the file
//
// Recording: each thread appends to a ring of its own (65,536 events, the
// oldest overwritten; the file's otherData.dropped_events says how many),
// with no lock and no allocation after the ring is made. Cost when off: one
// load and a predictable branch at each event site (bench/core_bench.cpp
// and bench/sched_bench.cpp show spawn_join and switch with tracing off and
// on); none at all when heddle is built with HEDDLE_WITH_TRACE=OFF.
#pragma once

#include <string>

// 0 when heddle was built with the CMake option HEDDLE_WITH_TRACE=OFF
// (the library's targets then define it for their users too).
#ifndef HEDDLE_WITH_TRACE
#define HEDDLE_WITH_TRACE 1
#endif

namespace heddle::trace {

// False when heddle was built without tracing: start() then throws.
inline constexpr bool compiled_in = HEDDLE_WITH_TRACE != 0;

// Starts recording; the file is written by stop() or at process exit.
// Throws std::system_error naming `path` when it cannot be created,
// std::logic_error if tracing is already on, and std::runtime_error when
// heddle was built without tracing.
void start(const std::string& path);
// Stops recording and writes the file (Chrome trace-event JSON). Throws
// std::system_error naming the path if writing fails. No-op when off.
void stop();
bool enabled() noexcept;

}  // namespace heddle::trace
