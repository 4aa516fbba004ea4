// The application-processor trampoline (Intel MP spec B.4, SDM vol. 3, 9.4.4 and 9.8).
//
// A Startup IPI starts an AP in real mode at CS:IP = (vector << 8):0, so this blob is
// copied to a page below 1 MiB. The BSP patches four fields before each start (offsets
// exported below): the GDT pointer's base, the 32-bit far-jump target, CR3 and the
// stack. The AP then: real mode -> protected mode (GDT in the blob) -> long mode with the
// BSP's page tables -> arch_ap_long_mode in the kernel image, which loads the stack and
// calls toro_ap_entry() (Swift). Interrupts stay off throughout.

// Kernel image only: in a hosted build (`swift test` links X86Asm into test binaries)
// this file is empty; see arch.h, "Hosted builds".
#if !__STDC_HOSTED__

#define CR4_PAE (1 << 5)
#define CR4_OSFXSR (1 << 9)
#define CR4_OSXMMEXCPT (1 << 10)

    .section .rodata
    .global arch_ap_blob_start, arch_ap_blob_end
    .global arch_ap_gdt_base_offset, arch_ap_jump32_offset, arch_ap_cr3_offset, arch_ap_stack_offset
    .p2align 4
arch_ap_blob_start:
    .code16
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    movzwl %ax, %ebx
    shl $4, %ebx                    // ebx = the blob's physical base, kept across the mode switch
    lgdtl (ap_gdt_pointer - arch_ap_blob_start)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl *(ap_jump32 - arch_ap_blob_start)

    .code32
ap_protected:                       // reached at (blob + this offset), patched into ap_jump32
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %cr4, %eax
    or $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
    mov %eax, %cr4
    mov (ap_cr3 - arch_ap_blob_start)(%ebx), %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx
    rdmsr
    or $(1 << 8), %eax
    wrmsr
    mov %cr0, %eax
    and $~(1 << 2), %eax
    or $((1 << 31) | (1 << 16) | (1 << 1)), %eax
    mov %eax, %cr0
    // Load the 64-bit stack pointer's low half now (the stack is below 4 GiB).
    mov (ap_stack - arch_ap_blob_start)(%ebx), %esp
    ljmpl $0x18, $arch_ap_long_mode

    .p2align 3
ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff        // 0x08: 32-bit code
    .quad 0x00cf92000000ffff        // 0x10: data
    .quad 0x00af9a000000ffff        // 0x18: 64-bit code
ap_gdt_end:
ap_gdt_pointer:
    .word ap_gdt_end - ap_gdt - 1
ap_gdt_base:
    .long 0                         // patched: blob base + (ap_gdt - blob)
ap_jump32:
    .long 0                         // patched: blob base + (ap_protected - blob)
    .word 0x08
ap_cr3:
    .long 0                         // patched: the BSP's CR3
ap_stack:
    .long 0                         // patched: this AP's stack top
arch_ap_blob_end:

    .p2align 2
arch_ap_gdt_base_offset: .long ap_gdt_base - arch_ap_blob_start
arch_ap_jump32_offset:   .long ap_jump32 - arch_ap_blob_start
arch_ap_cr3_offset:      .long ap_cr3 - arch_ap_blob_start
arch_ap_stack_offset:    .long ap_stack - arch_ap_blob_start
    .global arch_ap_gdt_offset, arch_ap_protected_offset
arch_ap_gdt_offset:      .long ap_gdt - arch_ap_blob_start
arch_ap_protected_offset: .long ap_protected - arch_ap_blob_start

    .text
    .code64
    .global arch_ap_long_mode
arch_ap_long_mode:
    // Switch from the blob's GDT (its page is freed once every AP has started) to the
    // kernel's, where 0x08 is the 64-bit code segment the IDT's gates name.
    lgdt boot_gdt_pointer
    pushq $0x08
    leaq 1f(%rip), %rax
    pushq %rax
    lretq
1:  mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    mov %esp, %esp                  // zero-extend the stack pointer
    xor %ebp, %ebp
    fninit
    call toro_ap_entry
2:  cli
    hlt
    jmp 2b

#endif  // !__STDC_HOSTED__
