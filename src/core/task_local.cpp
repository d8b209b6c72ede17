// heddle core: storage of TaskLocal values (include/heddle/core/task_local.hpp).
#include "heddle/core/task_local.hpp"

#include <atomic>
#include <stdexcept>
#include <vector>

#include "heddle/core/detail/control.hpp"

namespace heddle::detail {

// One per task that used a TaskLocal: slots indexed by key, and the keys in
// order of first use (destruction runs in reverse).
struct TaskLocals {
  std::vector<TaskLocalSlot> slots;
  std::vector<std::size_t> order;
};

namespace {
std::atomic<std::size_t> next_key{0};
}

std::size_t new_task_local_key() noexcept { return next_key.fetch_add(1, std::memory_order_relaxed); }

TaskLocalSlot& task_local_slot(std::size_t key) {
  TaskControl* t = current_task();
  if (!t) throw std::logic_error("heddle::TaskLocal: used outside a task (on a thread's own stack)");
  if (!t->locals) t->locals = new TaskLocals;
  TaskLocals& locals = *t->locals;
  if (key >= locals.slots.size()) locals.slots.resize(key + 1);
  TaskLocalSlot& slot = locals.slots[key];
  if (!slot.value) locals.order.push_back(key);
  return slot;
}

TaskLocalSlot* find_task_local_slot(std::size_t key) noexcept {
  TaskControl* t = current_task();
  if (!t || !t->locals || key >= t->locals->slots.size()) return nullptr;
  TaskLocalSlot& slot = t->locals->slots[key];
  return slot.value ? &slot : nullptr;
}

void destroy_task_locals(TaskControl* t) noexcept {
  // A destructor may use another TaskLocal and make a new value: keep going
  // until none is left.
  while (t->locals && !t->locals->order.empty()) {
    const std::size_t key = t->locals->order.back();
    t->locals->order.pop_back();
    TaskLocalSlot slot = t->locals->slots[key];
    t->locals->slots[key] = TaskLocalSlot{};
    if (slot.value) slot.destroy(slot.value);
  }
  delete t->locals;
  t->locals = nullptr;
}

}  // namespace heddle::detail
