// heddle core: SpinLock's slow path.
#include "heddle/core/detail/spin_lock.hpp"

#include <sched.h>

#include "heddle/arch/cpu_relax.hpp"

namespace heddle::detail {

void SpinLock::lock_slow() noexcept {
  for (int spins = 0;; ++spins) {
    if (!locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire)) return;
    if (spins < 64) {
      arch::cpu_relax();
    } else {
      sched_yield();  // the holder may be preempted: let it run
    }
  }
}

}  // namespace heddle::detail
