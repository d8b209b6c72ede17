// heddle arch: building the first frame of a new context.
#include "heddle/arch/context.hpp"

#include <cstring>

namespace heddle::arch {

void* make_context(void* stack_high, EntryFunction entry, void* argument) noexcept {
  // The entry trampoline `call`s the entry function, so the stack pointer it
  // runs with (the address just above the popped frame) must be 16-aligned.
  auto top = reinterpret_cast<std::uintptr_t>(stack_high) & ~std::uintptr_t{15};
  top -= 16;  // a zeroed slot above the first frame: frame-pointer walks end on it
  std::memset(reinterpret_cast<void*>(top), 0, 16);
  auto* frame = reinterpret_cast<SwitchFrame*>(top - sizeof(SwitchFrame));
  std::memset(frame, 0, sizeof *frame);
  std::uint32_t mxcsr;
  std::uint16_t x87;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(x87));
  frame->mxcsr = mxcsr;
  frame->x87_control = x87;
  frame->r12 = reinterpret_cast<std::uint64_t>(entry);
  frame->r13 = reinterpret_cast<std::uint64_t>(argument);
  frame->rbp = 0;
  frame->resume_address = reinterpret_cast<void*>(&heddle_context_entry);
  return frame;
}

}  // namespace heddle::arch
