/* preempt_x86_64_sysv_elf.S - the preemption trampoline for x86-64, System V ABI, ELF.
 *
 * The preemption signal handler does not switch stacks. It redirects the interrupted context instead: it
 * pushes the interrupted PC below the 128-byte red zone and sets the PC to sky_preempt_trampoline. When the
 * handler returns (the kernel restores every register and the signal mask), the trampoline runs on the
 * task's stack as if the interrupted code had called it:
 *
 *   higher addresses
 *     | interrupted code's stack ...        |
 *     | red zone (128 bytes, left untouched)|
 *     | interrupted PC                      |  <- rsp at trampoline entry
 *     | RFLAGS, RAX, RCX, RDX, RSI, RDI,    |
 *     | R8, R9, R10, R11, RBX               |  caller-saved registers (+ RBX, used as the frame anchor)
 *     | padding to 64 bytes                 |
 *     | XSAVE area (sky_xsave_size bytes)   |  x87, SSE, AVX(-512) state and MXCSR, 64-byte aligned;
 *     |                                     |  XSAVEC (compacted) where the CPU has it; XRSTOR reads both
 *   lower addresses
 *
 * It calls sky_preempt_entry() (C++, which may switch to other tasks and return much later, possibly on
 * another worker thread), restores everything and returns to the interrupted PC with `ret $128`, which
 * also pops the red zone gap. Callee-saved registers need no saving here: sky_preempt_entry preserves them
 * like any function (a task switch inside it saves them).
 * No code before the xsave may touch vector or x87 state.
 *
 * A signal must never redirect a task that is still inside this trampoline, or in the last instructions of
 * sky_preempt_entry after it cleared preempt_off: the trampoline's frame would nest on the stack (measured:
 * up to four nested frames under a 20 us timer). The safe-point test (src/preempt/safe_point.cpp) treats
 * [sky_preempt_trampoline, sky_preempt_trampoline_end) as unsafe, and a stack whose top words hold
 * sky_preempt_trampoline_resume (sky_preempt_entry's return address) too.
 */

    .text
    .globl  sky_preempt_trampoline
    .type   sky_preempt_trampoline, @function
    .globl  sky_preempt_trampoline_resume
    .hidden sky_preempt_trampoline_resume
    .globl  sky_preempt_trampoline_end
    .hidden sky_preempt_trampoline_end
    .align  16
sky_preempt_trampoline:
    pushfq                          /* save RFLAGS */
    pushq   %rax                    /* save RAX */
    pushq   %rcx                    /* save RCX */
    pushq   %rdx                    /* save RDX */
    pushq   %rsi                    /* save RSI */
    pushq   %rdi                    /* save RDI */
    pushq   %r8                     /* save R8 */
    pushq   %r9                     /* save R9 */
    pushq   %r10                    /* save R10 */
    pushq   %r11                    /* save R11 */
    pushq   %rbx                    /* save RBX: it anchors this frame */
    movq    %rsp, %rbx              /* RBX = frame anchor */
    subq    sky_xsave_size(%rip), %rsp  /* room for the XSAVE area */
    andq    $-64, %rsp              /* XSAVE needs 64-byte alignment */
    xorl    %eax, %eax              /* zero the 64-byte XSAVE header (XSAVE leaves reserved bytes alone) */
    movq    %rax, 512(%rsp)
    movq    %rax, 520(%rsp)
    movq    %rax, 528(%rsp)
    movq    %rax, 536(%rsp)
    movq    %rax, 544(%rsp)
    movq    %rax, 552(%rsp)
    movq    %rax, 560(%rsp)
    movq    %rax, 568(%rsp)
    movl    $-1, %eax               /* requested-feature bitmap EDX:EAX: everything enabled in XCR0 */
    movl    $-1, %edx
    cmpb    $0, sky_xsave_compact(%rip)  /* XSAVEC available? */
    je      1f
    xsavec  (%rsp)                  /* compacted save: components in their initial state are skipped */
    jmp     2f
1:  xsave   (%rsp)                  /* save the full vector and x87 state */
2:
    cld                             /* the ABI wants DF clear at a call */
    callq   sky_preempt_entry       /* may run other tasks before it returns */
sky_preempt_trampoline_resume:      /* sky_preempt_entry's return address (the safe-point test looks for it) */
    movl    $-1, %eax
    movl    $-1, %edx
    xrstor  (%rsp)                  /* restore the full vector and x87 state */
    movq    %rbx, %rsp              /* back to the register frame */
    popq    %rbx                    /* restore RBX */
    popq    %r11                    /* restore R11 */
    popq    %r10                    /* restore R10 */
    popq    %r9                     /* restore R9 */
    popq    %r8                     /* restore R8 */
    popq    %rdi                    /* restore RDI */
    popq    %rsi                    /* restore RSI */
    popq    %rdx                    /* restore RDX */
    popq    %rcx                    /* restore RCX */
    popq    %rax                    /* restore RAX */
    popfq                           /* restore RFLAGS */
    retq    $128                    /* resume at the interrupted PC and drop the red-zone gap */
sky_preempt_trampoline_end:
    .size   sky_preempt_trampoline, .-sky_preempt_trampoline

    .section .note.GNU-stack,"",%progbits
