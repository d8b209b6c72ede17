// heddle core: the control-block depot and the registry of tasks
// (control_depot.hpp).
#include "control_depot.hpp"

#include <mutex>
#include <vector>

namespace heddle::detail {

constinit std::atomic<ControlChunk*> control_chunks{nullptr};

namespace {

struct ControlDepot {
  std::mutex mutex;
  TaskControl* free_head = nullptr;
  std::vector<Parker*> thread_parkers;

  void give_back(TaskControl* head, TaskControl* tail) {
    std::lock_guard lock(mutex);
    tail->next_free = free_head;
    free_head = head;
  }
  // Takes up to kControlChunk blocks, making new ones when the depot is empty.
  TaskControl* take_batch(std::size_t& count) {
    std::lock_guard lock(mutex);
    if (free_head == nullptr) {
      auto* chunk = new ControlChunk;  // never freed: type-stable
      TaskControl* blocks = chunk->blocks;
      for (std::size_t i = 0; i < kControlChunk; ++i) {
        blocks[i].parker.task = &blocks[i];
        blocks[i].next_free = i + 1 < kControlChunk ? &blocks[i + 1] : nullptr;
      }
      // Publish for for_each_control_block. Writers hold the mutex, so a
      // plain load and a release store suffice (no read-modify-write).
      chunk->next = control_chunks.load(std::memory_order_relaxed);
      control_chunks.store(chunk, std::memory_order_release);
      free_head = blocks;
    }
    TaskControl* head = free_head;
    TaskControl* tail = head;
    count = 1;
    while (count < kControlChunk && tail->next_free) {
      tail = tail->next_free;
      ++count;
    }
    free_head = tail->next_free;
    tail->next_free = nullptr;
    return head;
  }
  Parker* take_thread_parker() {
    std::lock_guard lock(mutex);
    if (thread_parkers.empty()) return new Parker;  // never freed: type-stable
    Parker* p = thread_parkers.back();
    thread_parkers.pop_back();
    return p;
  }
  void give_back_thread_parker(Parker* p) {
    std::lock_guard lock(mutex);
    thread_parkers.push_back(p);
  }
};

ControlDepot& depot() {
  static auto* d = new ControlDepot;  // outlives every thread's exit
  return *d;
}

}  // namespace

TaskControl* take_control_batch(std::size_t& count) { return depot().take_batch(count); }
void give_back_controls(TaskControl* head, TaskControl* tail) { depot().give_back(head, tail); }
Parker* take_thread_parker() { return depot().take_thread_parker(); }
void give_back_thread_parker(Parker* parker) { depot().give_back_thread_parker(parker); }

void for_each_control_block(void (*visit)(TaskControl*, void*), void* context) noexcept {
  for (ControlChunk* chunk = control_chunks.load(std::memory_order_acquire); chunk; chunk = chunk->next) {
    for (TaskControl& block : chunk->blocks) visit(&block, context);
  }
}

}  // namespace heddle::detail

// The debugger's descriptor of this registry (debug_descriptor.cpp) is
// linked into every program that has the registry: a static library's
// member is linked only when something refers to it.
extern "C" const char heddle_debug_descriptor_anchor;
[[gnu::used]] static const char* const keep_debug_descriptor = &heddle_debug_descriptor_anchor;
