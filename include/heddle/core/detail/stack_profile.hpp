// heddle core (internal): the stack profile's hook in release_task
// (src/core/task.cpp); the profile itself is src/core/stack_report.cpp.
#pragma once

#include <atomic>

#include "heddle/core/source_location.hpp"
#include "heddle/stack/stack.hpp"

namespace heddle::detail {

struct TaskControl;

// On while heddle::enable_stack_profile(true) or HEDDLE_STACK_REPORT is set.
extern std::atomic<bool> stack_profile_on;
// Adds the task's stack high-water mark to its spawn site (before its stack
// goes back to its pool).
void record_stack_use(const TaskControl* task) noexcept;
// Adds a with_stack segment's high-water mark to the site of the with_stack
// call, named "with_stack segment" (before the segment goes back).
void record_segment_use(const SourceLocation& site, const Stack& segment) noexcept;

}  // namespace heddle::detail
