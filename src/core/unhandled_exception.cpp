// heddle core: the exception that ends a detached task
// (include/heddle/core/unhandled_exception.hpp).
#include "heddle/core/unhandled_exception.hpp"

#include <atomic>
#include <exception>

#include "heddle/core/detail/control.hpp"
#include "sys/report_line.hpp"

namespace heddle {

namespace {

std::atomic<UnhandledExceptionHandler> handler{&default_unhandled_exception_handler};

}  // namespace

UnhandledExceptionHandler set_unhandled_exception_handler(UnhandledExceptionHandler replacement) noexcept {
  return handler.exchange(replacement ? replacement : &default_unhandled_exception_handler,
                          std::memory_order_acq_rel);
}

UnhandledExceptionHandler unhandled_exception_handler() noexcept { return handler.load(std::memory_order_acquire); }

void default_unhandled_exception_handler(const UnhandledException& unhandled) {
  detail::ReportLine line;
  line.append("heddle: detached task ")
      .append_decimal(unhandled.task_id)
      .append(" \"")
      .append(unhandled.task_name && unhandled.task_name[0] ? unhandled.task_name : "(unnamed)")
      .append("\" spawned at ")
      .append(unhandled.spawn_site.file_name())
      .append(":")
      .append_decimal(unhandled.spawn_site.line());
  try {
    std::rethrow_exception(unhandled.exception);
  } catch (const std::exception& error) {
    line.append(" ended with an exception: ").append(error.what());
  } catch (...) {
    line.append(" ended with an unknown exception");
  }
  line.write_line();
}

namespace detail {

namespace {

void call_handler(void* task) {
  const auto* t = static_cast<const TaskControl*>(task);
  const UnhandledException unhandled{t->id, t->name,
                                     SourceLocation::current(t->spawn_file ? t->spawn_file : "(unknown)",
                                                             t->spawn_line,
                                                             t->spawn_function ? t->spawn_function : ""),
                                     t->frame->error};
  handler.load(std::memory_order_acquire)(unhandled);
}

}  // namespace

// A detached task ended with `t->frame->error` (not a Cancelled): called
// before its storage is released (finalize, detach_task in task.cpp).
// detach() may be called on a bounded task's stack, so the handler runs
// off it, on the thread's unwind stack (run_off_task_stack). noexcept: a
// handler that throws terminates the program.
void report_unhandled_exception(TaskControl* t) noexcept { run_off_task_stack(&call_handler, t); }

}  // namespace detail
}  // namespace heddle
