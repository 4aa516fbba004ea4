// Multiboot v1 entry for QEMU's pc machine (Multiboot 0.6.96, section 3.1).
//
// QEMU's Multiboot loader accepts an ELF64 image only through the "a.out kludge"
// (flag bit 16): it then loads the file as a flat image using the addresses in this
// header. The linker script makes file offsets equal to (address - 1 MiB), so
// load_addr = __image_start maps file offset 0 and everything lines up.

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS ((1 << 0) | (1 << 1) | (1 << 16))   // page-align modules, memory map, a.out kludge
#define ARCH_BOOT_MULTIBOOT 2

    .section .multiboot, "a"
    .p2align 2
multiboot_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long multiboot_header          // header_addr
    .long __image_start             // load_addr
    .long __data_end                // load_end_addr: end of the file's contents
    .long __bss_end                 // bss_end_addr: the loader zeroes up to here
    .long multiboot_start           // entry_addr

    .section .boot.text, "ax"
    .code32
    .global multiboot_start
multiboot_start:
    mov $ARCH_BOOT_MULTIBOOT, %esi
    jmp arch_boot32
