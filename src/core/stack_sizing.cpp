// heddle core: proven bounds and learned size classes
// (include/heddle/core/stack_sizing.hpp).
//
// Registrations are rare (one per generated source, at static
// initialisation) and lookups happen once per callable type and registry
// generation, so one mutex guards it all. Bounded pools, one per distinct
// stack size, are leaked on purpose like the default pool: a task may give
// its stack back while static destructors run.
#include "heddle/core/stack_sizing.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "heddle/stack/stack.hpp"

namespace heddle {
namespace detail {

std::atomic<std::uint64_t> stack_bounds_generation{0};

namespace {

struct Registry {
  std::mutex mutex;
  std::vector<std::pair<const StackBound*, std::size_t>> tables;
  std::map<std::size_t, StackPool*> pools;  // by stack size
};

Registry& registry() {
  static auto* made = new Registry;  // outlives every static destructor
  return *made;
}

std::size_t round_up(std::size_t bytes, std::size_t unit) noexcept { return (bytes + unit - 1) / unit * unit; }

}  // namespace

StackBoundUse lookup_stack_bound(const char* frame_type, std::size_t frame_bytes) noexcept {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::size_t bound = 0;
  for (auto [table, count] : r.tables) {
    for (std::size_t i = 0; i < count; ++i) {
      // The same callable in two tables (a lambda mangled alike in two
      // targets): the larger bound is the safe one.
      if (std::strcmp(table[i].frame_type, frame_type) == 0 && table[i].bytes > bound) bound = table[i].bytes;
    }
  }
  if (bound == 0) return {};
  // Below the frame: the canary zone at the bottom, the bound above it.
  const std::size_t stack_bytes =
      std::max(kMinimumBoundedStackBytes, round_up(kCanaryBytes + round_up(frame_bytes, 16) + bound, kSlabStackAlignment));
  StackPool*& pool = r.pools[stack_bytes];
  if (pool == nullptr) {
    try {
      StackPool::Options options;
      options.stack_bytes = stack_bytes;
      options.bounded = true;
      pool = new StackPool(options);
    } catch (...) {
      r.pools.erase(stack_bytes);
      return {};  // no memory for a pool: the task keeps the default one
    }
  }
  return {bound, pool->options().stack_bytes, pool};
}

namespace {

constexpr std::size_t kSmallestLearnedClass = 4 * 1024;
constexpr std::size_t kLargestLearnedClass = 1024 * 1024;
constexpr std::size_t kLearnedClasses = 9;  // 4 KiB, 8 KiB, ... 1 MiB

// One pool per class, made on first use and leaked like the default pool.
std::atomic<StackPool*> learned_pools[kLearnedClasses];
std::mutex learned_pools_mutex;

StackPool* learned_pool(std::size_t class_bytes) noexcept {
  std::size_t index = 0;
  while ((kSmallestLearnedClass << index) < class_bytes) ++index;
  StackPool* pool = learned_pools[index].load(std::memory_order_acquire);
  if (pool != nullptr) return pool;
  std::lock_guard lock(learned_pools_mutex);
  pool = learned_pools[index].load(std::memory_order_relaxed);
  if (pool == nullptr) {
    try {
      StackPool::Options options;
      options.stack_bytes = class_bytes;
      // Sized from what its tasks' own code was seen to use, so its tasks
      // host no other task's switch work, as proven ones do (Host stacks in
      // src/core/task.cpp): that work is in no sample.
      options.bounded = true;
      pool = new StackPool(options);
    } catch (...) {
      return nullptr;  // no memory for a pool: the default one
    }
    learned_pools[index].store(pool, std::memory_order_release);
  }
  return pool;
}

// Per thread, so that sampling costs no shared write.
thread_local std::uint32_t learned_spawns_here = 0;

}  // namespace

std::size_t learned_class_bytes(std::size_t high_water) noexcept {
  const std::size_t wanted = high_water + std::max<std::size_t>(high_water / 4, 1024);
  std::size_t class_bytes = kSmallestLearnedClass;
  while (class_bytes < wanted && class_bytes < kLargestLearnedClass) class_bytes *= 2;
  return class_bytes;
}

LearnedChoice choose_learned_stack(LearnedStack& learned) noexcept {
  if (learned.samples.load(std::memory_order_relaxed) < kLearnedSamples) {
    // Learning: the default pool, measured while fewer than kLearnedSamples
    // tasks are (racy between threads: a few more at worst).
    return {nullptr, learned.measuring.load(std::memory_order_relaxed) < kLearnedSamples};
  }
  const std::size_t high_water = learned.high_water.load(std::memory_order_relaxed);
  const std::size_t class_bytes = learned_class_bytes(high_water);
  // Deeper than the largest class with its margin: not a case for classes.
  if (high_water + std::max<std::size_t>(high_water / 4, 1024) > kLargestLearnedClass) return {nullptr, false};
  const bool measure = ++learned_spawns_here % kLearnedSampleEvery == 0;
  return {learned_pool(class_bytes), measure};
}

void record_learned_stack(LearnedStack& learned, std::size_t high_water) noexcept {
  std::size_t seen = learned.high_water.load(std::memory_order_relaxed);
  while (seen < high_water &&
         !learned.high_water.compare_exchange_weak(seen, high_water, std::memory_order_relaxed)) {
  }
  learned.samples.fetch_add(1, std::memory_order_relaxed);
  learned.measuring.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace detail

StackBoundsRegistration::StackBoundsRegistration(const StackBound* bounds, std::size_t count) noexcept {
  detail::Registry& r = detail::registry();
  {
    std::lock_guard lock(r.mutex);
    try {
      r.tables.emplace_back(bounds, count);
    } catch (...) {
      return;  // out of memory at static initialisation: no bounds, default pools
    }
  }
  detail::stack_bounds_generation.fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace heddle
