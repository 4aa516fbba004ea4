// Arch: the x86-64 primitives both platforms share.
//
// Everything here is a thin, explicit wrapper over one instruction or one fixed boot
// structure. Swift code reaches the hardware only through these functions; Core never
// includes this header, so Core stays hosted-testable.
#ifndef TORO_ARCH_H
#define TORO_ARCH_H

#include <stdint.h>

// Port I/O (Intel SDM vol. 2: IN, OUT).
static inline void arch_outb(uint16_t port, uint8_t value) {
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}
static inline uint8_t arch_inb(uint16_t port) {
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}
static inline void arch_outl(uint16_t port, uint32_t value) {
    __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint64_t arch_read_cr2(void) {
    uint64_t v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v;
}
static inline uint64_t arch_read_cr3(void) {
    uint64_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v;
}
// Loading CR3 also flushes every non-global TLB entry (SDM vol. 3, 4.10.4.1).
static inline void arch_write_cr3(uint64_t v) {
    __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}
static inline uint64_t arch_rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}
static inline void arch_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]) {
    __asm__ volatile("cpuid"
                     : "=a"(out[0]), "=b"(out[1]), "=c"(out[2]), "=d"(out[3])
                     : "a"(leaf), "c"(subleaf));
}
static inline void arch_halt_forever(void) {
    for (;;) __asm__ volatile("cli; hlt");
}
static inline void arch_pause(void) { __asm__ volatile("pause"); }
static inline uint64_t arch_frame_pointer(void) {
    uint64_t v; __asm__ volatile("mov %%rbp, %0" : "=r"(v)); return v;
}

// What the 32-bit entry recorded before the switch to long mode (longmode.S).
// `protocol` is ARCH_BOOT_PVH or ARCH_BOOT_MULTIBOOT; `info` is the physical address of
// hvm_start_info or of the Multiboot information structure; `magic` is the value the
// loader left in EAX (PVH: 0x336ec578, Multiboot: 0x2BADB002).
#define ARCH_BOOT_PVH 1
#define ARCH_BOOT_MULTIBOOT 2
extern uint32_t arch_boot_protocol;
extern uint32_t arch_boot_magic;
extern uint32_t arch_boot_info;
static inline uint32_t arch_boot_protocol_value(void) { return arch_boot_protocol; }
static inline uint32_t arch_boot_magic_value(void) { return arch_boot_magic; }
static inline uint64_t arch_boot_info_address(void) { return arch_boot_info; }

// Linker-script symbols: the loaded image and the boot stack.
extern char __image_start[], __image_end[], __bss_start[], __bss_end[];
extern char arch_boot_stack_bottom[], arch_boot_stack_top[];
static inline uint64_t arch_image_start(void) { return (uint64_t)(uintptr_t)__image_start; }
static inline uint64_t arch_image_end(void) { return (uint64_t)(uintptr_t)__image_end; }
static inline uint64_t arch_stack_bottom(void) { return (uint64_t)(uintptr_t)arch_boot_stack_bottom; }
static inline uint64_t arch_stack_top(void) { return (uint64_t)(uintptr_t)arch_boot_stack_top; }

// Installs the IDT: vectors 0-31 go to the exception stubs, which call
// `toro_exception(const ArchExceptionFrame *)` (defined by the kernel in Swift);
// every other vector goes to a stub that reports an unexpected interrupt the same way.
void arch_idt_init(void);

// The frame the exception stubs build on the stack, lowest address first.
typedef struct {
    uint64_t cr2;
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error_code;
    // Pushed by the CPU (SDM vol. 3, 6.14.2).
    uint64_t rip, cs, rflags, rsp, ss;
} ArchExceptionFrame;

// Installs new page tables: `pml4` is the physical address of the top-level table.
static inline void arch_load_page_tables(uint64_t pml4) { arch_write_cr3(pml4); }

// pc.c: COM1, isa-debug-exit and the PIT, present on both QEMU machines Toro uses.
void arch_serial_init(void);
void arch_serial_put(uint8_t byte);
void arch_debug_exit(uint8_t status) __attribute__((noreturn));
uint64_t arch_tsc_hz_from_pit(uint32_t pit_ticks);

// A region of .bss the heap starts from, before the memory map has been read.
extern char arch_early_heap[], arch_early_heap_end[];
static inline uint64_t arch_early_heap_start(void) { return (uint64_t)(uintptr_t)arch_early_heap; }
static inline uint64_t arch_early_heap_limit(void) { return (uint64_t)(uintptr_t)arch_early_heap_end; }

#endif
