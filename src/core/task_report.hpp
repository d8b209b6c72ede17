// heddle core (internal): how a one-line report names a task.
//
// Every report that names a task (a primitive destroyed under its waiters,
// std::terminate in a task, a Loop task's handle dropped where it cannot be
// waited for) says `task <id> "<name>" spawned at <file>:<line>`, so one
// grep finds a task in all of them. Used from places a task can reach: it
// appends to a ReportLine (no allocation, no stdio).
#pragma once

#include "heddle/core/detail/control.hpp"
#include "sys/report_line.hpp"

namespace heddle::detail {

inline ReportLine& append_task(ReportLine& line, const TaskControl& task) noexcept {
  return line.append("task ")
      .append_decimal(task.id)
      .append(" \"")
      .append(task.name[0] ? task.name : "(unnamed)")
      .append("\" spawned at ")
      .append(task.spawn_file ? task.spawn_file : "(unknown)")
      .append(":")
      .append_decimal(task.spawn_line);
}

}  // namespace heddle::detail
