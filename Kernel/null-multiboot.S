// The do-nothing Multiboot kernel for `toro bench boot`: the floor a real legacy boot
// is measured against. Same Multiboot v1 header as Sources/LegacyBoot/multiboot.S
// (0.6.96 section 3.1, with the a.out kludge QEMU needs for an ELF64 file); its first
// instruction leaves through isa-debug-exit (iobase 0xf4) with guest status 0, so QEMU
// exits with code 1. Linked with Kernel/kernel.ld.in (ENTRY_SYMBOL = multiboot_start),
// which defines __image_start, __data_end and __bss_end.

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS ((1 << 0) | (1 << 1) | (1 << 16))   // page-align modules, memory map, a.out kludge

    .section .multiboot, "a"
    .p2align 2
multiboot_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long multiboot_header          // header_addr
    .long __image_start             // load_addr
    .long __data_end                // load_end_addr
    .long __bss_end                 // bss_end_addr
    .long multiboot_start           // entry_addr

    .section .boot.text, "ax"
    .code32
    .global multiboot_start
multiboot_start:
    mov $0, %eax
    out %eax, $0xf4                 // 32-bit write to isa-debug-exit: QEMU exits here
1:  hlt
    jmp 1b
