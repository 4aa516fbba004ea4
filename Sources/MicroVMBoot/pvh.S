// PVH entry for QEMU's microvm machine (Xen's HVM direct boot ABI, as QEMU implements
// it in hw/i386/x86.c): the loader finds XEN_ELFNOTE_PHYS32_ENTRY (18) in a PT_NOTE
// segment and jumps there in 32-bit protected mode with paging off,
// EAX = 0x336ec578 and EBX = the physical address of struct hvm_start_info.

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define ARCH_BOOT_PVH 1

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
    mov $ARCH_BOOT_PVH, %esi
    jmp arch_boot32
