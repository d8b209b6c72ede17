// heddle core (internal): the event sites of tracing (core/trace.hpp).
//
// Owns: trace_event, what src/core/task.cpp calls at each spawn, switch in
// (resume), switch out (suspend, yield, finish) and cancel. Off, an event
// site is one relaxed load of trace_on and a not-taken branch; the
// recording itself (trace_record, src/core/trace.cpp) is out of line and
// cold, so the switch and spawn paths keep their size. Built with
// HEDDLE_WITH_TRACE=OFF (CMake), trace_event is empty and nothing remains.
// Events always go to the ring of the thread making the call: the thread
// that does the switch, wherever the task ran before.
#pragma once

#include <atomic>
#include <cstdint>

#include "heddle/core/trace.hpp"

namespace heddle::detail {

struct TaskControl;

enum class TraceKind : std::uint8_t { spawn, resume, suspend, finish, cancel };

#if HEDDLE_WITH_TRACE
extern std::atomic<bool> trace_on;
[[gnu::cold, gnu::noinline]] void trace_record(TraceKind kind, const TaskControl* task) noexcept;

inline void trace_event(TraceKind kind, const TaskControl* task) noexcept {
  if (__builtin_expect(trace_on.load(std::memory_order_relaxed), 0)) trace_record(kind, task);
}
#else
inline void trace_event(TraceKind, const TaskControl*) noexcept {}
#endif

// For tests: the events the rings hold now, summed over every thread (the
// rings are emptied when a file is written, so with tracing off this stays 0).
std::uint64_t trace_events_held() noexcept;

}  // namespace heddle::detail
