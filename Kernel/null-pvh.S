// The do-nothing PVH kernel for `toro bench boot`: the floor a real microvm boot is
// measured against. Same PVH note as Sources/MicroVMBoot/pvh.S (Xen's
// XEN_ELFNOTE_PHYS32_ENTRY, as QEMU reads it in hw/i386/x86.c); its first instruction
// leaves through isa-debug-exit (iobase 0xf4) with guest status 0, so QEMU exits with
// code (0 << 1) | 1 = 1. Linked with Kernel/kernel.ld.in (ENTRY_SYMBOL = pvh_start).

#define XEN_ELFNOTE_PHYS32_ENTRY 18

    .section .note.Xen, "a", @note
    .p2align 2
    .long 4                         // namesz: "Xen\0"
    .long 8                         // descsz
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .quad pvh_start                 // QEMU reads the entry as a 64-bit value

    .section .boot.text, "ax"
    .code32
    .global pvh_start
pvh_start:
    mov $0, %eax
    out %eax, $0xf4                 // 32-bit write to isa-debug-exit: QEMU exits here
1:  hlt
    jmp 1b
