// heddle arch: the machine context switch and sanitizer fibre hooks.
//
// Owns: heddle_switch_context and heddle_call_on_stack (one assembly file per ABI), make_context, and
// the AddressSanitizer / ThreadSanitizer annotations every switch must make.
// Invariants: a suspended context is exactly a stack pointer at a saved frame
// (layout in switch_frame_<arch>.h, checked below); a context is resumed at
// most once per suspension; the entry function of a made context never
// returns (it switches away for the last time instead).
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__x86_64__)
#include "heddle/arch/switch_frame_x86_64.h"
#elif defined(__aarch64__)
#include "heddle/arch/switch_frame_aarch64.h"
#else
#error "heddle: no context switch for this architecture (x86-64 and AArch64 have one: src/arch/switch_*.S)"
#endif

extern "C" void* heddle_switch_context(void** save_sp, void* target_sp, void* transfer) noexcept;
extern "C" void heddle_context_entry() noexcept;
// Calls function(argument) with the stack pointer at stack_top (16-aligned),
// on the caller's behalf: not a switch. Unwinds (and throws) through.
extern "C" void heddle_call_on_stack(void* argument, void (*function)(void*), void* stack_top);

namespace heddle::arch {

// The frame heddle_switch_context saves, as C++ sees it.
#if defined(__x86_64__)
struct SwitchFrame {
  std::uint32_t mxcsr;
  std::uint16_t x87_control;
  std::uint16_t padding;
  std::uint64_t r15, r14, r13, r12, rbx, rbp;
  void* resume_address;
};
static_assert(offsetof(SwitchFrame, mxcsr) == HEDDLE_FRAME_FPU);
static_assert(offsetof(SwitchFrame, x87_control) == HEDDLE_FRAME_FPU + 4);
static_assert(offsetof(SwitchFrame, r15) == HEDDLE_FRAME_R15);
static_assert(offsetof(SwitchFrame, r14) == HEDDLE_FRAME_R14);
static_assert(offsetof(SwitchFrame, r13) == HEDDLE_FRAME_R13);
static_assert(offsetof(SwitchFrame, r12) == HEDDLE_FRAME_R12);
static_assert(offsetof(SwitchFrame, rbx) == HEDDLE_FRAME_RBX);
static_assert(offsetof(SwitchFrame, rbp) == HEDDLE_FRAME_RBP);
static_assert(offsetof(SwitchFrame, resume_address) == HEDDLE_FRAME_RIP);
#elif defined(__aarch64__)
struct SwitchFrame {
  std::uint64_t fpcr;
  std::uint64_t padding;
  std::uint64_t d8, d9, d10, d11, d12, d13, d14, d15;  // bit patterns of the low 64 bits of v8-v15
  std::uint64_t x19, x20, x21, x22, x23, x24, x25, x26, x27, x28;
  std::uint64_t frame_pointer;  // x29
  void* resume_address;         // x30
};
static_assert(offsetof(SwitchFrame, fpcr) == HEDDLE_FRAME_FPCR);
static_assert(offsetof(SwitchFrame, d8) == HEDDLE_FRAME_D8);
static_assert(offsetof(SwitchFrame, d10) == HEDDLE_FRAME_D10);
static_assert(offsetof(SwitchFrame, d12) == HEDDLE_FRAME_D12);
static_assert(offsetof(SwitchFrame, d14) == HEDDLE_FRAME_D14);
static_assert(offsetof(SwitchFrame, x19) == HEDDLE_FRAME_X19);
static_assert(offsetof(SwitchFrame, x21) == HEDDLE_FRAME_X21);
static_assert(offsetof(SwitchFrame, x23) == HEDDLE_FRAME_X23);
static_assert(offsetof(SwitchFrame, x25) == HEDDLE_FRAME_X25);
static_assert(offsetof(SwitchFrame, x27) == HEDDLE_FRAME_X27);
static_assert(offsetof(SwitchFrame, frame_pointer) == HEDDLE_FRAME_FP);
static_assert(offsetof(SwitchFrame, resume_address) == HEDDLE_FRAME_LR);
static_assert(HEDDLE_FRAME_SIZE % 16 == 0, "AArch64 requires sp to stay 16-aligned");
#endif
static_assert(sizeof(SwitchFrame) == HEDDLE_FRAME_SIZE);

using EntryFunction = void (*)(void* transfer, void* argument);

// Space make_context needs at the top of a stack: the first frame plus the
// alignment slack of the entry call.
inline constexpr std::size_t kEntryFrameBytes = HEDDLE_FRAME_SIZE + 16;

// Smallest stack a context can run any code on: the entry frame, the switch
// frame of its first suspension, and room for a few ordinary frames and the
// sanitizer runtimes. Smaller stacks are rejected with std::invalid_argument.
inline constexpr std::size_t kMinimumStackBytes = 2048;

// Makes a context on [stack_low, stack_high) that, when first switched to,
// calls entry(transfer, argument) with a correctly aligned stack. Returns the
// context's stack pointer. stack_high need not be aligned.
void* make_context(void* stack_high, EntryFunction entry, void* argument) noexcept;

// Switches from the running context (whose stack pointer is saved in
// *save_sp) to target_sp. Returns the transfer value of the switch that
// resumes this context later.
inline void* switch_context(void** save_sp, void* target_sp, void* transfer) noexcept {
  return heddle_switch_context(save_sp, target_sp, transfer);
}

}  // namespace heddle::arch
