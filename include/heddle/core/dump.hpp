// heddle core: seeing every task.
//
// Owns: dump_tasks (a text report of every live task: id, name, state and
// the leaf it is parked at, spawn site, stack, and a symbolised backtrace of
// each parked task) and install_dump_on_signal (the same report on stderr
// when the process receives a signal, SIGQUIT by default, as `kill -QUIT`
// does for a JVM or a Go program).
//
// Invariants:
//  - Spawn pays nothing for this: the registry is the type-stable control
//    blocks themselves (src/core/control_depot.cpp, control_chunks), and a
//    task's liveness is its state word.
//  - A dump never blocks a spawn, a switch or a wake, and never crashes on a
//    task that changes under it: each task is read like a seqlock (state
//    word, fields, parked stack copied by the kernel, state word again) and
//    shown only as a consistent snapshot; a task that kept changing is
//    counted, not shown. The report is a best-effort snapshot, not an atomic
//    picture of the whole process.
//  - Backtraces follow frame pointers, from the parked task's saved context
//    and only inside its own stack. heddle is built with
//    -fno-omit-frame-pointer; build your code with it too, or its frames are
//    skipped (the walk stops or jumps at the first frame that omits it).
#pragma once

#include <csignal>
#include <cstddef>
#include <iosfwd>

namespace heddle {

// Writes one report of every live task to `out`, one block per task,
// ordered by task id:
//
//   heddle: 2 live tasks (pid 4242, dumped by thread 4242)
//   task 7 "sleeper": parked at heddle::sleep_until
//     spawned at /src/app.cpp:31 in main
//     stack: guarded, 65536 bytes, high water 8192 bytes (whole pages)
//     #0  0x000055d0c1a2b3c4 in heddle::detail::suspend_current(...) at /src/heddle/src/core/task.cpp:618
//     ...
//   task 8 "worker": running on thread 4250
//     ...
//   heddle: end of task dump
//
// States: "running on thread <tid>" (switched in now), "runnable" (woken or
// spawned and waiting for its scheduler to run it), "parked at <leaf>" (or
// "parked" for a suspension that names no leaf, e.g. a plain
// heddle::suspend), "parking at <leaf>" (switching out right now); then
// ", cancel requested" and ", uninterruptible" where they apply. Thread ids
// are Linux thread ids (gettid, as top -H and gdb show them). Running tasks
// get no backtrace. Not async-signal-safe (it allocates and symbolises):
// from a signal, use install_dump_on_signal. Returns the number of tasks
// shown.
std::size_t dump_tasks(std::ostream& out);

// Opt-in: from now on, `signal` (SIGQUIT by default) writes dump_tasks to
// stderr and the process keeps running. The handler is async-signal-safe (it
// writes one byte to a pipe); a thread started by the first call, with every
// signal blocked, waits on that pipe and writes the dump. Signals that arrive
// while a dump is written are coalesced into one more dump. Calling it again
// (for the same or another signal) reuses the thread. Throws
// std::system_error when the pipe, the thread or sigaction(2) fails (e.g.
// SIGKILL).
void install_dump_on_signal(int signal = SIGQUIT);

}  // namespace heddle
