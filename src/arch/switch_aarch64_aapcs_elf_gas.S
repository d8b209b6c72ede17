/* heddle arch: context switch for AArch64, AAPCS64, ELF, GNU as.
 *
 *   void* heddle_switch_context(void** save_sp  (x0),
 *                               void*  target_sp (x1),
 *                               void*  transfer  (x2));
 *
 * Saves the callee-saved registers (x19-x28, the frame pointer x29, the link
 * register x30, and d8-d15, the low halves of v8-v15 that AAPCS64 preserves)
 * and FPCR on the current stack (frame layout in
 * include/heddle/arch/switch_frame_aarch64.h), stores the stack pointer in
 * *save_sp, loads target_sp and restores the frame found there. `transfer`
 * arrives in the target as the return value of its own heddle_switch_context
 * call (x0); x0 is also the first argument register, so a fresh context's
 * entry receives it as its first argument.
 *
 * The resume address is branched to with `br x30` rather than `ret`: `ret`
 * predicts from the return stack, whose top entry is the `bl` that called
 * this switch on the stack being left, so it would miss on every switch
 * (the same reason x86-64 pops and jumps).
 *
 * Branch protection: Debian 12's aarch64 gcc does not enable
 * -mbranch-protection by default, and this file carries no
 * GNU_PROPERTY_AARCH64_FEATURE_1_AND note, so the linker never marks a
 * binary containing it as BTI-guarded. That is what lets `br x30` land on
 * ordinary return addresses and heddle_context_entry go without a `bti`
 * landing pad. A BTI build would have to resume with `ret x30` (which BTI
 * does not check) and mark this file. Return-address signing (pac-ret) needs
 * nothing here: the switch is a leaf that never signs x30, and each compiled
 * function authenticates its own return address against its own sp, which
 * the switch restores exactly.
 */
#include "heddle/arch/switch_frame_aarch64.h"

    .text
    .globl  heddle_switch_context
    .hidden heddle_switch_context
    .type   heddle_switch_context,%function
    .p2align 4
heddle_switch_context:
    .cfi_startproc
    sub     sp, sp, #HEDDLE_FRAME_SIZE
    .cfi_adjust_cfa_offset HEDDLE_FRAME_SIZE
    stp     x29, x30, [sp, #HEDDLE_FRAME_FP]
    .cfi_rel_offset x29, HEDDLE_FRAME_FP
    .cfi_rel_offset x30, HEDDLE_FRAME_LR
    stp     x19, x20, [sp, #HEDDLE_FRAME_X19]
    .cfi_rel_offset x19, HEDDLE_FRAME_X19
    .cfi_rel_offset x20, HEDDLE_FRAME_X19+8
    stp     x21, x22, [sp, #HEDDLE_FRAME_X21]
    .cfi_rel_offset x21, HEDDLE_FRAME_X21
    .cfi_rel_offset x22, HEDDLE_FRAME_X21+8
    stp     x23, x24, [sp, #HEDDLE_FRAME_X23]
    .cfi_rel_offset x23, HEDDLE_FRAME_X23
    .cfi_rel_offset x24, HEDDLE_FRAME_X23+8
    stp     x25, x26, [sp, #HEDDLE_FRAME_X25]
    .cfi_rel_offset x25, HEDDLE_FRAME_X25
    .cfi_rel_offset x26, HEDDLE_FRAME_X25+8
    stp     x27, x28, [sp, #HEDDLE_FRAME_X27]
    .cfi_rel_offset x27, HEDDLE_FRAME_X27
    .cfi_rel_offset x28, HEDDLE_FRAME_X27+8
    stp     d8, d9, [sp, #HEDDLE_FRAME_D8]
    .cfi_rel_offset d8, HEDDLE_FRAME_D8
    .cfi_rel_offset d9, HEDDLE_FRAME_D8+8
    stp     d10, d11, [sp, #HEDDLE_FRAME_D10]
    .cfi_rel_offset d10, HEDDLE_FRAME_D10
    .cfi_rel_offset d11, HEDDLE_FRAME_D10+8
    stp     d12, d13, [sp, #HEDDLE_FRAME_D12]
    .cfi_rel_offset d12, HEDDLE_FRAME_D12
    .cfi_rel_offset d13, HEDDLE_FRAME_D12+8
    stp     d14, d15, [sp, #HEDDLE_FRAME_D14]
    .cfi_rel_offset d14, HEDDLE_FRAME_D14
    .cfi_rel_offset d15, HEDDLE_FRAME_D14+8
    mrs     x9, fpcr
    str     x9, [sp, #HEDDLE_FRAME_FPCR]

    mov     x10, sp
    str     x10, [x0]
    mov     sp, x1

    /* The target's frame has the same layout, so the CFI above still
     * describes where its registers are. Writing FPCR can be slow and is
     * serialising on some cores; almost every context runs with the same
     * FPCR, so it is written only when the target's differs. */
    ldr     x10, [sp, #HEDDLE_FRAME_FPCR]
    cmp     x9, x10
    b.ne    .Lload_fpcr
.Lfpcr_done:
    .cfi_remember_state
    ldp     d8, d9, [sp, #HEDDLE_FRAME_D8]
    ldp     d10, d11, [sp, #HEDDLE_FRAME_D10]
    ldp     d12, d13, [sp, #HEDDLE_FRAME_D12]
    ldp     d14, d15, [sp, #HEDDLE_FRAME_D14]
    ldp     x19, x20, [sp, #HEDDLE_FRAME_X19]
    ldp     x21, x22, [sp, #HEDDLE_FRAME_X21]
    ldp     x23, x24, [sp, #HEDDLE_FRAME_X23]
    ldp     x25, x26, [sp, #HEDDLE_FRAME_X25]
    ldp     x27, x28, [sp, #HEDDLE_FRAME_X27]
    ldp     x29, x30, [sp, #HEDDLE_FRAME_FP]
    add     sp, sp, #HEDDLE_FRAME_SIZE
    .cfi_adjust_cfa_offset -HEDDLE_FRAME_SIZE
    mov     x0, x2
    br      x30
.Lload_fpcr:
    .cfi_restore_state
    msr     fpcr, x10
    b       .Lfpcr_done
    .cfi_endproc
    .size   heddle_switch_context, .-heddle_switch_context

/* First frame of every context made by heddle::arch::make_context.
 * make_context leaves the entry function in x19 and its argument in x20;
 * the transfer value arrives in x0. The link register is undefined in the
 * CFI so that unwinders and debuggers stop here cleanly: this is the bottom
 * of a task's stack (the saved frame pointer is zero too, so frame-pointer
 * walks stop as well). The entry function never returns. */
    .globl  heddle_context_entry
    .hidden heddle_context_entry
    .type   heddle_context_entry,%function
    .p2align 4
heddle_context_entry:
    .cfi_startproc
    .cfi_undefined x30
    mov     x1, x20
    blr     x19
    brk     #0x3e8
    .cfi_endproc
    .size   heddle_context_entry, .-heddle_context_entry

/* heddle_call_on_stack(void* argument (x0), void (*function)(void*) (x1),
 *                      void* stack_top (x2, 16-aligned))
 *
 * Calls function(argument) with sp at stack_top, then returns on the
 * caller's stack. Not a context switch: the function runs as part of the
 * caller. The frame's CFA is defined through x29, which holds the caller's
 * stack pointer, so unwinders and debuggers walk from the function's frames
 * (on the other stack) straight back into the caller's, and an exception
 * thrown there unwinds through it. */
    .text
    .globl  heddle_call_on_stack
    .type   heddle_call_on_stack,%function
    .p2align 4
heddle_call_on_stack:
    .cfi_startproc
    stp     x29, x30, [sp, #-16]!
    .cfi_def_cfa_offset 16
    .cfi_offset x29, -16
    .cfi_offset x30, -8
    mov     x29, sp
    .cfi_def_cfa_register x29
    mov     sp, x2
    blr     x1
    mov     sp, x29
    .cfi_def_cfa_register sp
    ldp     x29, x30, [sp], #16
    .cfi_def_cfa_offset 0
    .cfi_restore x29
    .cfi_restore x30
    ret
    .cfi_endproc
    .size   heddle_call_on_stack, .-heddle_call_on_stack

    .section .note.GNU-stack,"",%progbits
