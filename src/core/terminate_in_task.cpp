// heddle core: std::terminate in a task names the task.
#include <atomic>
#include <cstdlib>
#include <exception>

#include "sys/report_line.hpp"
#include "task_report.hpp"
#include "thread_state.hpp"

namespace heddle::detail {
namespace {

// ---- std::terminate in a task
//
// A throw that cannot be handled in a task (a destructor that throws while
// the task unwinds from Cancelled, a throw out of a noexcept function) ends
// in std::terminate, whose message names the exception but not the task.
// heddle installs a terminate handler, once, when the first thread starts
// using tasks: when the terminating thread runs a task it writes one line
// naming it, then calls the handler that was installed before (the C++
// runtime's verbose handler by default, which names the exception's type
// and aborts). An exception captures the terminate handler current when it
// is thrown, so every throw after the first spawn reaches this one. A
// handler the program installs later replaces it (std::set_terminate).

std::atomic<std::terminate_handler> previous_terminate_handler{nullptr};

void write_terminate_in_task(void* task) {
  const auto* t = static_cast<const TaskControl*>(task);
  ReportLine line;
  append_task(line.append("heddle: "), *t).append(": terminate called");
  if (std::exception_ptr active = std::current_exception()) {
    try {
      std::rethrow_exception(active);
    } catch (const std::exception& error) {
      line.append(" after throwing an exception: ").append(error.what());
    } catch (...) {
      line.append(" after throwing an exception that is not a std::exception");
    }
  } else {
    line.append(" without an active exception");
  }
  line.write_line();
}

[[noreturn]] void terminate_naming_the_task() noexcept {
  if (TaskControl* t = t_current) run_off_task_stack(&write_terminate_in_task, t);
  if (std::terminate_handler previous = previous_terminate_handler.load(std::memory_order_acquire)) previous();
  std::abort();
}

}  // namespace

void install_terminate_handler() noexcept {
  previous_terminate_handler.store(std::set_terminate(&terminate_naming_the_task), std::memory_order_release);
}

}  // namespace heddle::detail
