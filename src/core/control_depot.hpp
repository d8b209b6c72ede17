// heddle core (internal): the control-block depot, the registry of tasks,
// each thread's cache of free blocks, and task ids.
//
// Owns: ControlChunk (control blocks are made a chunk at a time and never
// freed: type-stable, so a stale handle may always read one), the list of
// every chunk (the registry dump_tasks and debuggers walk), the depot of
// free blocks and thread parkers, and the per-thread fast paths that take
// and give back blocks and ids without a lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "heddle/core/detail/control.hpp"
#include "thread_state.hpp"

namespace heddle::detail {

inline constexpr std::size_t kControlChunk = 64;
inline constexpr std::size_t kControlCacheMax = 256;
inline constexpr std::uint64_t kIdBlock = 1024;

// Control blocks are made kControlChunk at a time and never freed. Every
// chunk is also linked into control_chunks, which is the registry of
// tasks that dump_tasks walks: a live task is a block whose state word says
// so, so spawn pays nothing to be registered. A chunk is fully built before
// the release store that publishes it, and its `next` never changes after,
// so a walker that acquire-loads the head sees every block of every chunk it
// reaches initialised; it reads their fields racily (src/core/dump.cpp).
struct ControlChunk {
  TaskControl blocks[kControlChunk];
  ControlChunk* next = nullptr;  // the chunk made before this one
};

// Newest first; written under ControlDepot::mutex, read by anyone. A
// namespace-scope constant-initialised atomic (a plain pointer in memory),
// so a debugger finds it without running code (heddle_debug_descriptor).
extern constinit std::atomic<ControlChunk*> control_chunks;

// The depot (under a mutex): blocks and thread parkers that no thread
// caches. Blocks move in batches, so a thread takes the lock about once per
// kControlChunk spawns.
TaskControl* take_control_batch(std::size_t& count);
void give_back_controls(TaskControl* head, TaskControl* tail);
Parker* take_thread_parker();
void give_back_thread_parker(Parker* parker);

// Ids are handed out kIdBlock at a time to each thread: unique, and
// increasing per thread, never per process.
inline constinit std::atomic<std::uint64_t> next_id_block{1};

inline TaskControl* pop_control(ThreadState& ts) {
  if (!ts.cache_head) {
    std::size_t count = 0;
    ts.cache_head = take_control_batch(count);
    ts.cache_count = count;
  }
  TaskControl* t = ts.cache_head;
  ts.cache_head = t->next_free;
  --ts.cache_count;
  t->next_free = nullptr;
  return t;
}

inline void recycle_control(TaskControl* t) noexcept {
  ThreadState& ts = thread_state();
  t->frame = nullptr;
  t->group = nullptr;
  t->on_suspend = nullptr;
  t->on_cancel = nullptr;
  t->hook_context = nullptr;
  t->next_free = ts.cache_head;
  ts.cache_head = t;
  if (++ts.cache_count > kControlCacheMax) {
    // Give half back so blocks freed on one thread reach the others.
    TaskControl* tail = ts.cache_head;
    for (std::size_t i = 1; i < kControlCacheMax / 2; ++i) tail = tail->next_free;
    TaskControl* rest = tail->next_free;
    tail->next_free = nullptr;
    TaskControl* rest_tail = rest;
    while (rest_tail->next_free) rest_tail = rest_tail->next_free;
    give_back_controls(rest, rest_tail);
    ts.cache_count = kControlCacheMax / 2;
  }
}

inline std::uint64_t next_task_id(ThreadState& ts) {
  if (ts.next_id == ts.id_limit) {
    ts.next_id = next_id_block.fetch_add(kIdBlock, std::memory_order_relaxed);
    ts.id_limit = ts.next_id + kIdBlock;
  }
  return ts.next_id++;
}

}  // namespace heddle::detail
