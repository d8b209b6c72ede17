// heddle arch: building the first frame of a new context.
#include "heddle/arch/context.hpp"

#include <cstring>

namespace heddle::arch {

#if defined(__x86_64__)

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

#elif defined(__aarch64__)

void* make_context(void* stack_high, EntryFunction entry, void* argument) noexcept {
  // sp must be 16-aligned at every instruction on AArch64, not only at
  // calls; the frame's size is a multiple of 16, so an aligned top keeps the
  // frame and the entry trampoline's sp (the address just above it) aligned.
  auto top = reinterpret_cast<std::uintptr_t>(stack_high) & ~std::uintptr_t{15};
  top -= 16;  // a zeroed slot above the first frame, as on x86-64
  std::memset(reinterpret_cast<void*>(top), 0, 16);
  auto* frame = reinterpret_cast<SwitchFrame*>(top - sizeof(SwitchFrame));
  std::memset(frame, 0, sizeof *frame);
  std::uint64_t fpcr;
  asm volatile("mrs %0, fpcr" : "=r"(fpcr));
  frame->fpcr = fpcr;  // a new context starts with its maker's rounding and flush-to-zero modes
  frame->x19 = reinterpret_cast<std::uint64_t>(entry);
  frame->x20 = reinterpret_cast<std::uint64_t>(argument);
  frame->frame_pointer = 0;  // the entry function's frame record links to 0: frame-pointer walks end there
  frame->resume_address = reinterpret_cast<void*>(&heddle_context_entry);
  return frame;
}

#endif

}  // namespace heddle::arch
