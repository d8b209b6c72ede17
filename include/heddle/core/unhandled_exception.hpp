// heddle core: the exception that ends a detached task.
//
// Owns: set_unhandled_exception_handler and the default handler. A joined
// task's exception comes out of join(), a group arm's out of its group's
// wait; a detached task has nobody to give it to, so heddle hands it to one
// process-wide handler instead of dropping it (as tokio reports a spawned
// task that panicked). The default writes one line on stderr:
//
//   heddle: detached task 7 "worker" spawned at /src/app.cpp:31 ended with an exception: boom
//
// (what() of a std::exception, or "ended with an unknown exception").
//
// heddle::Cancelled is not reported: it is how a cancelled task ends (a
// scheduler's shutdown cancels its detached tasks), not an error.
//
// When and where the handler runs: once per detached task that ended with
// an exception, when its storage is released: on the thread the task
// finished on, right after its last switch and off its stack (on the
// stack of whatever it switched to: its scheduler's dispatcher, the task or
// thread that woke it), or in Task::detach() when the task had already
// finished. So the handler must not suspend (it may be running on another
// task's behalf) and must not throw (a throw calls std::terminate); log
// and return. The task's storage is released after it returns.
#pragma once

#include <cstdint>
#include <exception>

#include "heddle/core/source_location.hpp"

namespace heddle {

// What a handler gets: enough to log. `task_name` is "" for an unnamed task
// and valid only during the call.
struct UnhandledException {
  std::uint64_t task_id = 0;
  const char* task_name = "";
  SourceLocation spawn_site;
  std::exception_ptr exception;
};

// A plain function (no state, so it is swapped with one atomic store and
// read with one atomic load, from any thread, at any time).
using UnhandledExceptionHandler = void (*)(const UnhandledException&);

// Installs `handler` for every detached task from now on, on every thread,
// and returns the previous one. nullptr puts the default back.
UnhandledExceptionHandler set_unhandled_exception_handler(UnhandledExceptionHandler handler) noexcept;
UnhandledExceptionHandler unhandled_exception_handler() noexcept;

// The default: one line on stderr, written with a single write(2) (lines
// from several threads never interleave). A replaced handler may call it.
void default_unhandled_exception_handler(const UnhandledException& unhandled);

}  // namespace heddle
