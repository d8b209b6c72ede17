// heddle core: TaskLocal<T>, a variable with one value per task.
//
// Owns: per-task storage that follows the task wherever it runs. Why it
// exists: on a multi-threaded scheduler (heddle::Pool) a task may resume on
// another thread after any suspension point, so a `thread_local` read before
// a suspension and again after it can name two different threads' objects:
//
//     thread_local int depth = 0;   // WRONG in a Pool task:
//     ++depth;                      //   this thread's counter...
//     mutex.lock();                 //   (the task may move here)
//     --depth;                      //   ...another thread's counter
//
//     heddle::TaskLocal<int> depth; // right: the running task's own value
//     ++*depth; mutex.lock(); --*depth;
//
// A task's values are made on first use (copied from the TaskLocal's initial
// value) and destroyed on the task's own stack when its function returns or
// throws, in the reverse order of their first use. Using a TaskLocal outside
// a task throws std::logic_error. A TaskLocal variable must outlive the tasks
// that use it (make it static or global, as you would a thread_local).
#pragma once

#include <cstddef>
#include <utility>

namespace heddle {

namespace detail {
struct TaskControl;
struct TaskLocalSlot {
  void* value = nullptr;
  void (*destroy)(void* value) noexcept = nullptr;
};
// A key per TaskLocal object, never reused.
std::size_t new_task_local_key() noexcept;
// The running task's slot for `key` (storage made on first use). Throws
// std::logic_error outside a task.
TaskLocalSlot& task_local_slot(std::size_t key);
// The running task's slot for `key` if it has a value, else null.
TaskLocalSlot* find_task_local_slot(std::size_t key) noexcept;
}  // namespace detail

template <class T>
class TaskLocal {
 public:
  TaskLocal() : key_(detail::new_task_local_key()) {}
  explicit TaskLocal(T initial) : key_(detail::new_task_local_key()), initial_(std::move(initial)) {}
  TaskLocal(const TaskLocal&) = delete;
  TaskLocal& operator=(const TaskLocal&) = delete;

  // The running task's value, copied from the initial value on first use.
  T& get() {
    detail::TaskLocalSlot& slot = detail::task_local_slot(key_);
    if (!slot.value) {
      slot.value = new T(initial_);
      slot.destroy = [](void* value) noexcept { delete static_cast<T*>(value); };
    }
    return *static_cast<T*>(slot.value);
  }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }
  // True if the running task has made its value (false outside a task).
  bool has_value() const noexcept { return detail::find_task_local_slot(key_) != nullptr; }

 private:
  std::size_t key_;
  T initial_{};
};

}  // namespace heddle
