// heddle core: the exception that unwinds a cancelled task.
#pragma once

namespace heddle {

// Thrown from a suspension point of a task that has been cancelled, so that
// the task's stack unwinds and its destructors run. Deliberately not derived
// from std::exception: `catch (const std::exception&)` must not swallow it.
// Catching it without rethrowing is a bug the runtime reports when the task
// then finishes normally.
struct Cancelled {
  const char* what() const noexcept { return "heddle::Cancelled: the task was cancelled"; }
};

}  // namespace heddle
