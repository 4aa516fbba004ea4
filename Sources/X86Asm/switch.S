// Thread context switch and the first frame of a new thread (System V AMD64 ABI:
// rbx, rbp, r12-r15 are callee-saved; everything else the caller already saved).
//
// arch_context_switch(uint64_t *save_rsp, uint64_t next_rsp):
//   pushes the callee-saved registers on the current stack, stores RSP in *save_rsp,
//   loads next_rsp and pops the next thread's registers; `ret` resumes it.
// A new thread's stack is prepared by arch_prepare_stack so that the first switch to it
// "returns" into arch_thread_trampoline, which calls toro_thread_start() (Swift).

// Kernel image only: in a hosted build (`swift test` links X86Asm into test binaries)
// this file is empty; see arch.h, "Hosted builds".
#if !__STDC_HOSTED__

    .text
    .code64
    .global arch_context_switch
arch_context_switch:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, (%rdi)
    mov %rsi, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret

    .global arch_thread_trampoline
arch_thread_trampoline:
    xor %ebp, %ebp              // the new thread's backtrace ends here
    call toro_thread_start
1:  cli
    hlt
    jmp 1b

#endif  // !__STDC_HOSTED__
