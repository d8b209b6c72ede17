// heddle core: this_task, what the running task knows about itself
// (core/task.hpp).
#include <stdexcept>

#include "heddle/core/task.hpp"

namespace heddle {

namespace this_task {

bool in_task() noexcept { return detail::current_task() != nullptr; }
std::uint64_t id() noexcept {
  auto* t = detail::current_task();
  return t ? t->id : 0;
}
const char* name() noexcept {
  auto* t = detail::current_task();
  return t ? t->name : "";
}
SourceLocation spawn_site() noexcept {
  auto* t = detail::current_task();
  return t ? SourceLocation::current(t->spawn_file, t->spawn_line, t->spawn_function) : SourceLocation{};
}
void cancel() noexcept {
  if (auto* t = detail::current_task()) t->state.cancel_self();
}
bool cancel_requested() noexcept {
  auto* t = detail::current_task();
  return t && (t->state.load(std::memory_order_acquire) & detail::kCancelRequested);
}
void yield() {
  detail::TaskControl* t = detail::current_task();
  if (!t) throw std::logic_error("heddle::this_task::yield: called outside a task (on a thread's own stack)");
  if (t->state.load(std::memory_order_acquire) & detail::kCancelRequested) {
    t->cancel_delivered = true;
    detail::throw_cancelled();
  }
  if (!t->scheduler) return;  // nothing else could run: a cancellation point only
  // Back on the scheduler's queue behind what is runnable, with no park
  // protocol: the task stays "running" and whoever receives the switch
  // requeues it (after_switch).
  t->switch_request = detail::SwitchRequest::yield;
  detail::check_stack_canary(t);
  detail::leave_running_task(t);
  if (t->state.load(std::memory_order_acquire) & detail::kCancelRequested) {
    t->cancel_delivered = true;
    detail::throw_cancelled();
  }
}

}  // namespace this_task
}  // namespace heddle
