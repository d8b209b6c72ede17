// heddle core: the waiting side of join, select and TaskGroup.
#include "heddle/core/combinators.hpp"

#include <charconv>
#include <cstring>
#include <exception>

namespace heddle::detail {
namespace {

bool arm_failed(const TaskControl* arm) noexcept {
  // An arm we cancelled ends with Cancelled: that is not a failure.
  return arm->frame->error && !(arm->ended_by_cancel && arm->cancelled_by_owner);
}

void cancel_arm(TaskControl* arm) noexcept {
  if (is_finished(arm)) return;
  arm->cancelled_by_owner = true;
  request_cancel(arm);
}

}  // namespace

ArmName::ArmName(bool select_mode, std::size_t index) noexcept {
  const char* kind = select_mode ? "select arm " : "join arm ";
  const std::size_t length = std::strlen(kind);
  std::memcpy(text, kind, length);
  // 20 digits at most: "select arm " and a 64-bit index fit in 31 bytes.
  char* end = std::to_chars(text + length, text + sizeof text - 1, index).ptr;
  *end = '\0';
}

GroupOutcome wait_arms(GroupLink& group, TaskControl* const* arms, std::size_t count, bool select_mode) {
  GroupOutcome outcome;
  std::size_t remaining = count;
  bool cancelling = false;
  auto cancel_all = [&] {
    cancelling = true;
    for (std::size_t i = 0; i < count; ++i) cancel_arm(arms[i]);
  };
  for (;;) {
    for (TaskControl* arm = take_finished(group); arm;) {
      TaskControl* next = arm->group_next_finished;
      --remaining;
      const auto index = static_cast<std::ptrdiff_t>(arm->group_index);
      if (outcome.first_finished < 0) outcome.first_finished = index;
      const bool failed = arm_failed(arm);
      if (failed && outcome.first_failed < 0) outcome.first_failed = index;
      if ((failed || select_mode) && !cancelling) cancel_all();
      arm = next;
    }
    if (remaining == 0) return outcome;
    try {
      group.owner->park(!cancelling, "heddle::join/select");
    } catch (const Cancelled&) {
      outcome.owner_cancelled = true;
      cancel_all();
    }
  }
}

void release_arms(TaskControl* const* arms, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i) release_task(arms[i]);
}

void release_arms_and_rethrow(const GroupOutcome& outcome, TaskControl* const* arms, std::size_t count,
                              bool /*release_all*/) {
  if (outcome.owner_cancelled) {
    release_arms(arms, count);
    throw_cancelled();
  }
  if (outcome.first_failed >= 0) {
    std::exception_ptr error = arms[outcome.first_failed]->frame->error;
    release_arms(arms, count);
    std::rethrow_exception(error);
  }
}

}  // namespace heddle::detail

namespace heddle {

TaskGroup::TaskGroup(StackPool* pool) : pool_(pool), uncaught_at_start_(std::uncaught_exceptions()) {
  link_.owner = &detail::current_parker();
}

TaskGroup::~TaskGroup() noexcept(false) {
  const bool unwinding = std::uncaught_exceptions() > uncaught_at_start_;
  if (unwinding) {
    cancel();
    wait_all(false);
    return;
  }
  wait();
}

void TaskGroup::check_owner() const {
  if (&detail::current_parker() != link_.owner)
    detail::throw_logic("heddle::TaskGroup::spawn: only the task or thread that made the group may spawn into it");
}

void TaskGroup::link_child(detail::TaskControl* child) noexcept {
  child->group_prev = nullptr;
  child->group_next = live_head_;
  if (live_head_) live_head_->group_prev = child;
  live_head_ = child;
  ++live_;
}

void TaskGroup::cancel_child(detail::TaskControl* child) noexcept {
  if (detail::is_finished(child)) return;
  child->cancelled_by_owner = true;
  detail::request_cancel(child);
}

void TaskGroup::reap() noexcept {
  for (detail::TaskControl* child = detail::take_finished(link_); child;) {
    detail::TaskControl* next = child->group_next_finished;
    const bool failed = child->frame->error && !(child->ended_by_cancel && child->cancelled_by_owner);
    if (failed && !first_error_) {
      first_error_ = child->frame->error;
      cancel();
    }
    if (child->group_prev) child->group_prev->group_next = child->group_next;
    else live_head_ = child->group_next;
    if (child->group_next) child->group_next->group_prev = child->group_prev;
    --live_;
    detail::release_task(child);
    child = next;
  }
}

void TaskGroup::cancel() noexcept {
  cancelling_ = true;
  // Cancelling may run a child to completion inline; it then joins the
  // finished list, and the live list is only changed by reap().
  for (detail::TaskControl* child = live_head_; child; child = child->group_next) cancel_child(child);
}

void TaskGroup::wait_all(bool interruptible) {
  for (;;) {
    reap();
    if (live_ == 0) return;
    try {
      link_.owner->park(interruptible && !cancelling_, "heddle::TaskGroup::wait");
    } catch (const Cancelled&) {
      owner_cancelled_ = true;
      cancel();
    }
  }
}

void TaskGroup::wait() {
  check_owner();
  wait_all(true);
  if (owner_cancelled_) {
    owner_cancelled_ = false;
    detail::throw_cancelled();
  }
  if (first_error_) {
    std::exception_ptr error = std::exchange(first_error_, nullptr);
    cancelling_ = false;
    std::rethrow_exception(error);
  }
  cancelling_ = false;
}

}  // namespace heddle
