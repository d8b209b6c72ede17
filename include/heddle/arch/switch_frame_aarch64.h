/* heddle arch: the saved-register frame of the AArch64 AAPCS64 context switch.
 *
 * Shared by the assembly (src/arch/switch_aarch64_aapcs_elf_gas.S) and C++
 * (include/heddle/arch/context.hpp checks these offsets with static_assert).
 * A suspended context is nothing but a stack pointer that points at this
 * frame; the frame sits on the suspended stack itself. Its size is a multiple
 * of 16, so sp stays 16-aligned as AArch64 requires at every instruction.
 *
 *   offset  saved
 *   0       FPCR (8 bytes), then 8 bytes padding
 *   16      d8,  d9   (low halves of v8-v15: the callee-saved FP registers)
 *   32      d10, d11
 *   48      d12, d13
 *   64      d14, d15
 *   80      x19, x20
 *   96      x21, x22
 *   112     x23, x24
 *   128     x25, x26
 *   144     x27, x28
 *   160     x29 (frame pointer)
 *   168     x30 (link register: the resume address, branched to with br)
 */
#ifndef HEDDLE_ARCH_SWITCH_FRAME_AARCH64_H
#define HEDDLE_ARCH_SWITCH_FRAME_AARCH64_H

#define HEDDLE_FRAME_FPCR 0
#define HEDDLE_FRAME_D8 16
#define HEDDLE_FRAME_D10 32
#define HEDDLE_FRAME_D12 48
#define HEDDLE_FRAME_D14 64
#define HEDDLE_FRAME_X19 80
#define HEDDLE_FRAME_X21 96
#define HEDDLE_FRAME_X23 112
#define HEDDLE_FRAME_X25 128
#define HEDDLE_FRAME_X27 144
#define HEDDLE_FRAME_FP 160
#define HEDDLE_FRAME_LR 168
#define HEDDLE_FRAME_SIZE 176

#endif
