// The 32-bit to long-mode trampoline both platforms enter.
//
// In:  protected mode, paging off, interrupts off (PVH: Xen's HVM direct boot ABI;
//      Multiboot 0.6.96 section 3.2). EAX = loader magic, EBX = physical address of the
//      boot information, ESI = ARCH_BOOT_PVH or ARCH_BOOT_MULTIBOOT.
// Out: long mode with the first GiB identity-mapped by 2 MiB pages, SSE enabled, the
//      boot stack, and a call to `toro_kernel_entry()` (Swift). The kernel later replaces
//      these tables with ones built from the memory map.
//
// The loaded image is identity-mapped at 1 MiB, so every address here is absolute and
// below 4 GiB: the same code runs before and after paging is turned on.

// Kernel image only: in a hosted build (`swift test` links X86Asm into test binaries)
// this file is empty; see arch.h, "Hosted builds".
#if !__STDC_HOSTED__

#define CR0_PE  (1 << 0)
#define CR0_MP  (1 << 1)
#define CR0_EM  (1 << 2)
#define CR0_WP  (1 << 16)
#define CR0_PG  (1 << 31)
#define CR4_PAE (1 << 5)
#define CR4_OSFXSR (1 << 9)
#define CR4_OSXMMEXCPT (1 << 10)
#define MSR_EFER 0xC0000080
#define EFER_LME (1 << 8)
#define EFER_NXE (1 << 11)

    .section .boot.text, "ax"
    .code32
    .global arch_boot32
arch_boot32:
    cli
    cld
    mov %eax, %ebp          // keep the loader's registers out of the way of rep stos
    mov %ebx, %edx

    // Zero .bss: page tables, stack and Swift globals live there. Loaders usually do
    // it, but neither protocol promises it for every layout.
    // The boot stack and the early heap sit in .noinit, after __bss_end: neither needs
    // zeroes, and not clearing them saves a measurable part of boot under TCG.
    // __bss_start and __bss_end are page-aligned (linker script).
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    shr $2, %ecx
    xor %eax, %eax
    rep stosl

    mov %ebp, arch_boot_magic
    mov %edx, arch_boot_info
    mov %esi, arch_boot_protocol
    mov $arch_boot_stack_top, %esp

    // PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] -> 2 MiB page i (present, writable, PS).
    mov $boot_pdpt, %eax
    or $0x3, %eax
    mov %eax, boot_pml4
    mov $boot_pd, %eax
    or $0x3, %eax
    mov %eax, boot_pdpt
    mov $boot_pd, %edi
    mov $0x83, %eax
    mov $512, %ecx
1:  mov %eax, (%edi)
    movl $0, 4(%edi)
    add $0x200000, %eax
    add $8, %edi
    loop 1b

    // SDM vol. 3, 9.8.5: PAE, CR3, EFER.LME, then CR0.PG.
    mov %cr4, %eax
    or $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    and $~CR0_EM, %eax
    or $(CR0_PE | CR0_MP | CR0_WP | CR0_PG), %eax
    mov %eax, %cr0

    lgdt boot_gdt_pointer
    ljmp $0x08, $long_mode

    .code64
long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    mov $arch_boot_stack_top, %rsp
    xor %ebp, %ebp          // the backtrace ends here
    fninit
    call toro_kernel_entry
2:  cli
    hlt
    jmp 2b

    .section .rodata
    .p2align 3
boot_gdt:
    .quad 0                      // null
    .quad 0x00af9a000000ffff     // 0x08: 64-bit code, DPL 0
    .quad 0x00cf92000000ffff     // 0x10: data, DPL 0
boot_gdt_end:
    .global boot_gdt_pointer
boot_gdt_pointer:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt

    .section .bss
    .p2align 12
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd:   .skip 4096
    .p2align 2
    .global arch_boot_protocol, arch_boot_magic, arch_boot_info
arch_boot_protocol: .long 0
arch_boot_magic:    .long 0
arch_boot_info:     .long 0

    .section .noinit, "aw", @nobits
    .p2align 12
    .global arch_boot_stack_bottom, arch_boot_stack_top
arch_boot_stack_bottom:
    .skip 65536
arch_boot_stack_top:
    .global arch_early_heap, arch_early_heap_end
arch_early_heap:
    .skip 131072
arch_early_heap_end:

#endif  // !__STDC_HOSTED__
