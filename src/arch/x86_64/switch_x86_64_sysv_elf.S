/* switch_x86_64_sysv_elf.S - user-level context switch for x86-64, System V ABI, ELF.
 *
 * Saved frame, at the saved stack pointer (lowest address first):
 *
 *   offset | content
 *   -------+----------------------------------------------------------
 *    0x00  | MXCSR (4 bytes)
 *    0x04  | x87 control word (2 bytes), 2 bytes padding
 *    0x08  | R12
 *    0x10  | R13
 *    0x18  | R14
 *    0x20  | R15
 *    0x28  | RBX
 *    0x30  | RBP
 *    0x38  | return address (pushed by the caller's `call`; the entry trampoline for a new context)
 *
 * The offsets are mirrored in src/arch/context.hpp (kFrame*), checked there with static_asserts.
 *
 * void* sky_context_switch(void** save_sp, void* load_sp, void* transfer)
 *   Saves the callee-saved state on the current stack, stores the stack pointer to *save_sp, switches to
 *   load_sp and resumes that context, which sees `transfer` as the return value of its own
 *   sky_context_switch call (or, for a new context, as the second argument of its entry function).
 *   MXCSR and the x87 control word are reloaded only when they differ from the current values:
 *   ldmxcsr/fldcw are slow, and almost every task runs with the defaults.
 */

    .text
    .globl  sky_context_switch
    .type   sky_context_switch, @function
    .align  16
sky_context_switch:
#ifdef __CET__
    endbr64
#endif
    leaq    -0x38(%rsp), %rsp       /* room for the saved frame below the return address */
    stmxcsr (%rsp)                  /* save MXCSR */
    fnstcw  0x4(%rsp)               /* save x87 control word */
    movq    %r12, 0x08(%rsp)        /* save R12 */
    movq    %r13, 0x10(%rsp)        /* save R13 */
    movq    %r14, 0x18(%rsp)        /* save R14 */
    movq    %r15, 0x20(%rsp)        /* save R15 */
    movq    %rbx, 0x28(%rsp)        /* save RBX */
    movq    %rbp, 0x30(%rsp)        /* save RBP */
    movl    (%rsp), %r8d            /* keep the current MXCSR to compare with the target's */
    movzwl  0x4(%rsp), %r9d         /* keep the current x87 control word likewise */

    movq    %rsp, (%rdi)            /* publish the saved stack pointer */
    movq    %rsi, %rsp              /* switch to the target stack */

    cmpl    (%rsp), %r8d            /* target MXCSR differs? */
    jne     .Lload_mxcsr
.Lmxcsr_done:
    cmpw    0x4(%rsp), %r9w         /* target x87 control word differs? */
    jne     .Lload_fpucw
.Lfpucw_done:
    movq    0x08(%rsp), %r12        /* restore R12 */
    movq    0x10(%rsp), %r13        /* restore R13 */
    movq    0x18(%rsp), %r14        /* restore R14 */
    movq    0x20(%rsp), %r15        /* restore R15 */
    movq    0x28(%rsp), %rbx        /* restore RBX */
    movq    0x30(%rsp), %rbp        /* restore RBP */
    movq    %rdx, %rax              /* transfer value: the resumed context's return value */
    movq    0x38(%rsp), %r8         /* the resume address */
    leaq    0x40(%rsp), %rsp        /* drop the frame and the return address slot */
    jmpq    *%r8                    /* resume (pop+jmp: `ret` to a different site mispredicts) */

.Lload_mxcsr:
    ldmxcsr (%rsp)                  /* restore MXCSR */
    jmp     .Lmxcsr_done
.Lload_fpucw:
    fldcw   0x4(%rsp)               /* restore x87 control word */
    jmp     .Lfpucw_done
    .size   sky_context_switch, .-sky_context_switch

/* sky_context_entry: first code a new context runs. make_context() stores the entry function in R13 and
 * its first argument in R12; the transfer value arrives in RAX. The stack is 16-byte aligned here, so the
 * call leaves it as the ABI expects at a function entry. The entry function never returns. */
    .globl  sky_context_entry
    .type   sky_context_entry, @function
    .align  16
sky_context_entry:
#ifdef __CET__
    endbr64
#endif
    xorl    %ebp, %ebp              /* terminate frame-pointer backtraces here */
    movq    %r12, %rdi              /* arg 1: the entry argument */
    movq    %rax, %rsi              /* arg 2: the transfer value */
    callq   *%r13                   /* entry(arg, transfer) */
    ud2                             /* entry functions never return */
    .size   sky_context_entry, .-sky_context_entry

    .section .note.GNU-stack,"",%progbits
