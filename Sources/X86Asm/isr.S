// Interrupt and exception entry stubs (SDM vol. 3, 6.12 and 6.14).
//
// Each stub makes the stack uniform (a zero error code where the CPU pushes none, then
// the vector), saves the general registers and CR2, and calls
// `toro_exception(ArchExceptionFrame *)`. The kernel's handler reports and exits; if it
// ever returns, the stub restores the registers and returns with iretq.

// Kernel image only: in a hosted build (`swift test` links X86Asm into test binaries)
// this file is empty; see arch.h, "Hosted builds".
#if !__STDC_HOSTED__

    .text
    .code64

.macro STUB vector, has_error
    .p2align 4
isr_stub_\vector:
    .if \has_error == 0
    pushq $0
    .endif
    pushq $\vector
    jmp isr_common
.endm

// Vectors with a CPU-pushed error code: 8, 10-14, 17, 21, 29, 30.
STUB 0,0;  STUB 1,0;  STUB 2,0;  STUB 3,0;  STUB 4,0;  STUB 5,0;  STUB 6,0;  STUB 7,0
STUB 8,1;  STUB 9,0;  STUB 10,1; STUB 11,1; STUB 12,1; STUB 13,1; STUB 14,1; STUB 15,0
STUB 16,0; STUB 17,1; STUB 18,0; STUB 19,0; STUB 20,0; STUB 21,1; STUB 22,0; STUB 23,0
STUB 24,0; STUB 25,0; STUB 26,0; STUB 27,0; STUB 28,0; STUB 29,1; STUB 30,1; STUB 31,0

// Vectors 32-255: no error code; the vector number is recovered from the stub.
.altmacro
.macro IRQSTUB n
    .p2align 4
isr_stub_\n:
    pushq $0
    pushq $\n
    jmp isr_common
.endm
.set i, 32
.rept 224
    IRQSTUB %i
    .set i, i+1
.endr

isr_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %cr2, %rax
    push %rax
    mov %rsp, %rdi
    // Keep the ABI's 16-byte stack alignment at the call.
    mov %rsp, %rbx
    and $-16, %rsp
    cld
    call toro_exception
    mov %rbx, %rsp
    add $8, %rsp            // cr2
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp           // vector, error code
    iretq

// The addresses of the 256 stubs, in vector order, for arch_idt_init.
    .section .rodata
    .p2align 3
    .global arch_isr_stubs
arch_isr_stubs:
.macro STUBADDR n
    .quad isr_stub_\n
.endm
.set i, 0
.rept 256
    STUBADDR %i
    .set i, i+1
.endr

#endif  // !__STDC_HOSTED__
