// heddle core: ThreadSanitizer fibers for tasks, reused (thread_state.hpp).
// Compiled to nothing without TSan.
#include "thread_state.hpp"

#if HEDDLE_TSAN
#include <sanitizer/tsan_interface.h>

namespace heddle::detail {
namespace {

// TSan fibers, reused. A TSan fiber is a whole ThreadState (over 512 KiB,
// mostly its shadow call stack) that __tsan_create_fiber maps and zeroes and
// __tsan_destroy_fiber unmaps: on a VM with slow page faults that was over
// 1 ms per spawn, 90% of a fork-join test's time. So a finished task's fiber
// goes to a small per-thread cache and the next spawn on that thread takes
// it. A reused fiber keeps its happens-before history, which can only hide a
// race between a finished task and a later one, never report a false one.
// It also keeps the shadow-stack entries of the frames its task never
// returned from (task_entry and the final switch), so a fiber is destroyed
// after kTsanFiberUses tasks, long before those could fill the shadow stack.
constexpr std::size_t kTsanFiberCacheSize = 64;
constexpr std::uint32_t kTsanFiberUses = 256;
struct TsanFiberCache {
  void* fibers[kTsanFiberCacheSize];
  std::uint32_t uses[kTsanFiberCacheSize];
  std::size_t count = 0;
  ~TsanFiberCache() {
    while (count > 0) __tsan_destroy_fiber(fibers[--count]);
  }
};
thread_local TsanFiberCache t_tsan_fibers;

}  // namespace

void take_tsan_fiber(TaskControl* t) {
  TsanFiberCache& cache = t_tsan_fibers;
  if (cache.count > 0) {
    --cache.count;
    t->tsan_fiber = cache.fibers[cache.count];
    t->tsan_fiber_uses = cache.uses[cache.count] + 1;
  } else {
    t->tsan_fiber = __tsan_create_fiber(0);
    t->tsan_fiber_uses = 1;
  }
}

// Called off the task's fiber (TSan forbids destroying the current one).
void give_back_tsan_fiber(TaskControl* t) noexcept {
  TsanFiberCache& cache = t_tsan_fibers;
  if (cache.count < kTsanFiberCacheSize && t->tsan_fiber_uses < kTsanFiberUses) {
    cache.fibers[cache.count] = t->tsan_fiber;
    cache.uses[cache.count] = t->tsan_fiber_uses;
    ++cache.count;
  } else {
    __tsan_destroy_fiber(t->tsan_fiber);
  }
  t->tsan_fiber = nullptr;
}

}  // namespace heddle::detail
#endif
