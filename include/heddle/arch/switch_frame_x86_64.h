/* heddle arch: the saved-register frame of the x86-64 System V context switch.
 *
 * Shared by the assembly (src/arch/switch_x86_64_sysv_elf_gas.S) and C++
 * (include/heddle/arch/context.hpp checks these offsets with static_assert).
 * A suspended context is nothing but a stack pointer that points at this
 * frame; the frame sits on the suspended stack itself.
 *
 *   offset  saved
 *   0       MXCSR (4 bytes) then x87 control word (2 bytes), 2 bytes padding
 *   8       r15
 *   16      r14
 *   24      r13
 *   32      r12
 *   40      rbx
 *   48      rbp
 *   56      resume address (popped into a scratch register and jumped to)
 */
#ifndef HEDDLE_ARCH_SWITCH_FRAME_X86_64_H
#define HEDDLE_ARCH_SWITCH_FRAME_X86_64_H

#define HEDDLE_FRAME_FPU 0
#define HEDDLE_FRAME_R15 8
#define HEDDLE_FRAME_R14 16
#define HEDDLE_FRAME_R13 24
#define HEDDLE_FRAME_R12 32
#define HEDDLE_FRAME_RBX 40
#define HEDDLE_FRAME_RBP 48
#define HEDDLE_FRAME_RIP 56
#define HEDDLE_FRAME_SIZE 64

#endif
