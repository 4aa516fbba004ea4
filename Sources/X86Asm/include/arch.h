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
static inline void arch_outw(uint16_t port, uint16_t value) {
    __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port));
}
static inline uint16_t arch_inw(uint16_t port) {
    uint16_t value;
    __asm__ volatile("inw %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}
static inline void arch_outl(uint16_t port, uint32_t value) {
    __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}
static inline uint32_t arch_inl(uint16_t port) {
    uint32_t value;
    __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
    return value;
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
__attribute__((noreturn)) static inline void arch_halt_forever(void) {
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

// A region of .bss the heap starts from, before the memory map has been read.
extern char arch_early_heap[], arch_early_heap_end[];
static inline uint64_t arch_early_heap_start(void) { return (uint64_t)(uintptr_t)arch_early_heap; }
static inline uint64_t arch_early_heap_limit(void) { return (uint64_t)(uintptr_t)arch_early_heap_end; }

// switch.S: cooperative context switch and the first frame of a new thread.
void arch_context_switch(uint64_t *save_rsp, uint64_t next_rsp);
extern char arch_thread_trampoline[];
// Builds the initial frame of a thread whose stack ends at `top` (16-byte aligned):
// six zeroed callee-saved registers under the trampoline's address. Returns its RSP.
static inline uint64_t arch_prepare_stack(uint64_t top) {
    uint64_t *sp = (uint64_t *)(uintptr_t)top;
    // `ret` into the trampoline leaves RSP == top (16-byte aligned), so its `call`
    // enters toro_thread_start with RSP % 16 == 8, as the ABI requires.
    *--sp = (uint64_t)(uintptr_t)arch_thread_trampoline;
    for (int i = 0; i < 6; i++) *--sp = 0;       // rbp rbx r12 r13 r14 r15
    return (uint64_t)(uintptr_t)sp;
}

// Interrupt flag and halting (SDM vol. 2: STI's one-instruction shadow makes
// "sti; hlt" atomic: an interrupt that arrives in between still ends the HLT).
static inline void arch_enable_interrupts(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void arch_disable_interrupts(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void arch_wait_for_interrupt(void) { __asm__ volatile("sti; hlt; cli" ::: "memory"); }
static inline void arch_invlpg(uint64_t address) {
    __asm__ volatile("invlpg (%0)" : : "r"(address) : "memory");
}

static inline uint64_t arch_rdmsr(uint32_t msr) {
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}
static inline void arch_wrmsr(uint32_t msr, uint64_t value) {
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)));
}

// Per-CPU data: IA32_GS_BASE points at a block whose first word is the CPU index.
static inline void arch_set_cpu_block(uint64_t block) { arch_wrmsr(0xC0000101, block); }
static inline uint64_t arch_cpu_index(void) {
    uint64_t v; __asm__ volatile("mov %%gs:0, %0" : "=r"(v)); return v;
}

// Makes `index` this CPU's index (arch_cpu_index); index < 16.
void arch_cpu_block_init(uint32_t index);
static inline long arch_cpu_index_c(void) { return (long)arch_cpu_index(); }

// Gives CPU `index` its own GDT and TSS, whose IST1 (used by #DF and #PF) is the stack
// ending at `ist_stack_top`. Keeps selectors 0x08 (code) and 0x10 (data).
void arch_cpu_tables_init(uint32_t index, uint64_t ist_stack_top);

// Loads the IDT that arch_idt_init built (application processors).
void arch_idt_load(void);

// smp.S: the application-processor start-up blob and the offsets the BSP patches.
extern const char arch_ap_blob_start[], arch_ap_blob_end[];
extern const uint32_t arch_ap_gdt_base_offset, arch_ap_jump32_offset, arch_ap_cr3_offset,
    arch_ap_stack_offset, arch_ap_gdt_offset, arch_ap_protected_offset;
static inline uint64_t arch_ap_blob_address(void) { return (uint64_t)(uintptr_t)arch_ap_blob_start; }
static inline uint64_t arch_ap_blob_size(void) { return (uint64_t)(arch_ap_blob_end - arch_ap_blob_start); }
static inline uint32_t arch_ap_offset_gdt_base(void) { return arch_ap_gdt_base_offset; }
static inline uint32_t arch_ap_offset_jump32(void) { return arch_ap_jump32_offset; }
static inline uint32_t arch_ap_offset_cr3(void) { return arch_ap_cr3_offset; }
static inline uint32_t arch_ap_offset_stack(void) { return arch_ap_stack_offset; }
static inline uint32_t arch_ap_offset_gdt(void) { return arch_ap_gdt_offset; }
static inline uint32_t arch_ap_offset_protected(void) { return arch_ap_protected_offset; }

// The image's driver table (MicroVM/DeviceAttach.swift): one C object per image, written by
// `./toro build` from the service's `devices:`, sets each hook to the platform's attach
// function or to null. Nothing else references the drivers, so an image whose service uses
// no sockets or files carries no driver for them.
#include <stdbool.h>
extern bool (*const toro_driver_scan)(void *);
extern bool (*const toro_driver_sockets)(void *);
extern bool (*const toro_driver_files)(void *);

// Hosted builds. `swift test` links PC (and so X86Asm) into a host test binary, where
// the kernel-only definitions are absent: the assembly files, idt.c and libc.c compile
// to nothing there (`#if !__STDC_HOSTED__`; the kernel's toolset passes -ffreestanding),
// so glibc keeps its own memcpy and malloc, and the linker script's symbols do not
// exist. The symbols those files and the linker script define are weak references in a
// hosted build: code that names them (PCMachine, SMP) still links, as null, and must
// never run on the host; the chips the tests drive (Sources/PC) name none of them.
#if __STDC_HOSTED__
#pragma weak __image_start
#pragma weak __image_end
#pragma weak __bss_start
#pragma weak __bss_end
#pragma weak arch_boot_stack_bottom
#pragma weak arch_boot_stack_top
#pragma weak arch_boot_protocol
#pragma weak arch_boot_magic
#pragma weak arch_boot_info
#pragma weak arch_early_heap
#pragma weak arch_early_heap_end
#pragma weak arch_idt_init
#pragma weak arch_idt_load
#pragma weak arch_cpu_block_init
#pragma weak arch_cpu_tables_init
#pragma weak arch_context_switch
#pragma weak arch_thread_trampoline
#pragma weak arch_ap_blob_start
#pragma weak arch_ap_blob_end
#pragma weak arch_ap_gdt_base_offset
#pragma weak arch_ap_jump32_offset
#pragma weak arch_ap_cr3_offset
#pragma weak arch_ap_stack_offset
#pragma weak arch_ap_gdt_offset
#pragma weak arch_ap_protected_offset
#endif

#endif
