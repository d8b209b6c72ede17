// heddle arch: the spin-wait hint.
//
// Owns: cpu_relax(), which every bounded spin in heddle (SpinLock, the wait
// list's hand-over) issues between polls. It tells the core that it is
// spinning, so that a sibling hyperthread gets the pipeline and the loop
// does not flood the memory system with speculative loads.
#pragma once

namespace heddle::arch {

inline void cpu_relax() noexcept {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  // `isb` rather than `yield`: `yield` is a no-op on most cores, while `isb`
  // stalls for a few tens of cycles, close to what `pause` does on x86
  // (the choice Rust's spin_loop and others made for the same reason).
  asm volatile("isb" ::: "memory");
#else
#error "heddle: no spin-wait hint for this architecture"
#endif
}

}  // namespace heddle::arch
