/* heddle arch: context switch for x86-64, System V ABI, ELF, GNU as.
 *
 *   void* heddle_switch_context(void** save_sp  (rdi),
 *                               void*  target_sp (rsi),
 *                               void*  transfer  (rdx));
 *
 * Saves the callee-saved registers, MXCSR and the x87 control word on the
 * current stack (frame layout in include/heddle/arch/switch_frame_x86_64.h),
 * stores the stack pointer in *save_sp, loads target_sp and restores the
 * frame found there. `transfer` arrives in the target as the return value of
 * its own heddle_switch_context call (rax), and also in rdi so that a fresh
 * context's entry receives it as its first argument.
 *
 * The resume address is popped into a scratch register and jumped to rather
 * than returned to with `ret`: the return-stack predictor would miss on every
 * switch (the `call` that saved it was made on another stack), and a miss
 * costs more than the whole switch (about 9 ns versus 3 ns measured).
 *
 * Intel CET: this file supports neither shadow stacks nor indirect branch
 * tracking, and says so by carrying no .note.gnu.property: the linker
 * then marks no program or library that contains it for either, so
 * neither is ever enforced on the switch. Shadow stacks
 * (SHSTK) cannot work: a switch changes stacks without changing shadow
 * stacks, so the first `ret` after it would not match. IBT would need
 * every resume address to be a landing pad, and they are ordinary return
 * addresses in compiled code, reached by the `jmp *%rcx` below. In a
 * -fcf-protection build (__CET__ bit 0) the entry points still begin with
 * endbr64, as every compiled function does (heddle_context_entry is
 * reached by an indirect jump, heddle_call_on_stack may be called through
 * a PLT); other builds assemble exactly as before. <cet.h>'s _CET_ENDBR
 * is not used: including <cet.h> also emits a property note claiming
 * whatever __CET__ asks for, shadow stacks included.
 */
#include "heddle/arch/switch_frame_x86_64.h"

#if defined(__CET__) && (__CET__ & 1) != 0
#define HEDDLE_ENDBR endbr64
#else
#define HEDDLE_ENDBR
#endif

    .text
    .globl  heddle_switch_context
    .hidden heddle_switch_context
    .type   heddle_switch_context,@function
    .p2align 4
heddle_switch_context:
    .cfi_startproc
    HEDDLE_ENDBR
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr HEDDLE_FRAME_FPU(%rsp)
    fnstcw  HEDDLE_FRAME_FPU+4(%rsp)
    movl    HEDDLE_FRAME_FPU(%rsp), %r8d
    movzwl  HEDDLE_FRAME_FPU+4(%rsp), %r9d

    movq    %rsp, (%rdi)
    movq    %rsi, %rsp

    /* The target's frame has the same layout, so the CFI above still
     * describes where its registers are. LDMXCSR and FLDCW are slow and
     * partly serialising; almost every context runs with the same control
     * words, so they are loaded only when the target's differ. */
    cmpl    HEDDLE_FRAME_FPU(%rsp), %r8d
    jne     .Lload_mxcsr
.Lmxcsr_done:
    cmpw    HEDDLE_FRAME_FPU+4(%rsp), %r9w
    jne     .Lload_x87
.Lx87_done:
    addq    $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq    %r15
    .cfi_adjust_cfa_offset -8
    popq    %r14
    .cfi_adjust_cfa_offset -8
    popq    %r13
    .cfi_adjust_cfa_offset -8
    popq    %r12
    .cfi_adjust_cfa_offset -8
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    popq    %rcx
    .cfi_adjust_cfa_offset -8
    movq    %rdx, %rax
    movq    %rdx, %rdi
    jmp     *%rcx
.Lload_mxcsr:
    .cfi_adjust_cfa_offset HEDDLE_FRAME_SIZE
    ldmxcsr HEDDLE_FRAME_FPU(%rsp)
    jmp     .Lmxcsr_done
.Lload_x87:
    fldcw   HEDDLE_FRAME_FPU+4(%rsp)
    jmp     .Lx87_done
    .cfi_endproc
    .size   heddle_switch_context, .-heddle_switch_context

/* First frame of every context made by heddle::arch::make_context.
 * make_context leaves the entry function in r12 and its argument in r13;
 * the transfer value arrives in rdi. The return address is undefined in the
 * CFI so that unwinders and debuggers stop here cleanly: this is the bottom
 * of a task's stack. The entry function never returns. */
    .globl  heddle_context_entry
    .hidden heddle_context_entry
    .type   heddle_context_entry,@function
    .p2align 4
heddle_context_entry:
    .cfi_startproc
    .cfi_undefined %rip
    HEDDLE_ENDBR
    movq    %r13, %rsi
    callq   *%r12
    ud2
    .cfi_endproc
    .size   heddle_context_entry, .-heddle_context_entry

/* heddle_call_on_stack(void* argument (rdi), void (*function)(void*) (rsi),
 *                      void* stack_top (rdx, 16-aligned))
 *
 * Calls function(argument) with the stack pointer at stack_top, then returns
 * on the caller's stack. Not a context switch: nothing is saved beyond the
 * frame pointer, and the function runs as part of the caller. The frame's
 * CFA is defined through rbp, which holds the caller's stack pointer, so
 * unwinders and debuggers walk from the function's frames (on the other
 * stack) straight back into the caller's, and an exception thrown by the
 * function (or by an unwinder running there: see
 * include/heddle/core/detail/unwinder_wrappers.hpp) unwinds through it. */
    .text
    .globl  heddle_call_on_stack
    .type   heddle_call_on_stack,@function
    .p2align 4
heddle_call_on_stack:
    .cfi_startproc
    HEDDLE_ENDBR
    pushq   %rbp
    .cfi_def_cfa_offset 16
    .cfi_offset %rbp, -16
    movq    %rsp, %rbp
    .cfi_def_cfa_register %rbp
    movq    %rdx, %rsp
    callq   *%rsi
    movq    %rbp, %rsp
    .cfi_def_cfa_register %rsp
    popq    %rbp
    .cfi_def_cfa_offset 8
    .cfi_restore %rbp
    ret
    .cfi_endproc
    .size   heddle_call_on_stack, .-heddle_call_on_stack

    .section .note.GNU-stack,"",%progbits
