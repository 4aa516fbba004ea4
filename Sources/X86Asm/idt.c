// The interrupt descriptor table (SDM vol. 3, 6.14.1): 256 64-bit interrupt gates on
// the kernel code segment, each pointing at its stub in isr.S.

// Kernel image only: in a hosted build (`swift test` links X86Asm into test binaries)
// this file is empty; see arch.h, "Hosted builds".
#if !__STDC_HOSTED__
#include "arch.h"

typedef struct __attribute__((packed)) {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attributes;   // 0x8E: present, DPL 0, 64-bit interrupt gate
    uint16_t offset_middle;
    uint32_t offset_high;
    uint32_t reserved;
} IdtGate;

typedef struct __attribute__((packed)) {
    uint16_t limit;
    uint64_t base;
} IdtPointer;

extern const uint64_t arch_isr_stubs[256];
static IdtGate idt[256] __attribute__((aligned(16)));

void arch_idt_init(void) {
    for (int vector = 0; vector < 256; vector++) {
        uint64_t handler = arch_isr_stubs[vector];
        idt[vector] = (IdtGate){
            .offset_low = (uint16_t)handler,
            .selector = 0x08,
            // #DF and #PF run on the CPU's IST1 stack (arch_cpu_tables_init): a thread
            // that overflows into its guard page cannot push an exception frame there.
            .ist = (vector == 8 || vector == 14) ? 1 : 0,
            .type_attributes = 0x8E,
            .offset_middle = (uint16_t)(handler >> 16),
            .offset_high = (uint32_t)(handler >> 32),
            .reserved = 0,
        };
    }
    arch_idt_load();
}

void arch_idt_load(void) {
    IdtPointer pointer = { .limit = sizeof(idt) - 1, .base = (uint64_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" : : "m"(pointer));
}

// Per-CPU blocks: IA32_GS_BASE of CPU i points at block i, whose first word is i, so
// `mov %gs:0` yields the CPU index in one instruction (arch_cpu_index).
#define ARCH_MAX_CPUS 16
static uint64_t cpu_blocks[ARCH_MAX_CPUS][8] __attribute__((aligned(64)));

void arch_cpu_block_init(uint32_t index) {
    if (index >= ARCH_MAX_CPUS) return;
    cpu_blocks[index][0] = index;
    arch_set_cpu_block((uint64_t)(uintptr_t)cpu_blocks[index]);
}

// Per-CPU GDT and TSS (SDM vol. 3, 7.7 and 3.5.2): the 64-bit TSS only supplies the
// interrupt stack table, whose entry 1 is a stack of the CPU's own for #DF and #PF.
typedef struct __attribute__((packed)) {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} Tss;

static Tss cpu_tss[ARCH_MAX_CPUS] __attribute__((aligned(16)));
static uint64_t cpu_gdt[ARCH_MAX_CPUS][5] __attribute__((aligned(16)));

void arch_cpu_tables_init(uint32_t index, uint64_t ist_stack_top) {
    if (index >= ARCH_MAX_CPUS) return;
    Tss *tss = &cpu_tss[index];
    tss->ist[0] = ist_stack_top;
    tss->iomap_base = sizeof(Tss);
    uint64_t base = (uint64_t)(uintptr_t)tss;
    uint64_t limit = sizeof(Tss) - 1;
    uint64_t *gdt = cpu_gdt[index];
    gdt[0] = 0;
    gdt[1] = 0x00af9a000000ffffull;      // 0x08: 64-bit code
    gdt[2] = 0x00cf92000000ffffull;      // 0x10: data
    gdt[3] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ull << 40)
           | (((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56);   // 0x18: TSS
    gdt[4] = base >> 32;
    struct __attribute__((packed)) { uint16_t limit; uint64_t base; } pointer = {
        sizeof(cpu_gdt[index]) - 1, (uint64_t)(uintptr_t)gdt };
    __asm__ volatile(
        "lgdt %0\n"
        "pushq $0x08\n"
        "leaq 1f(%%rip), %%rax\n"
        "pushq %%rax\n"
        "lretq\n"
        "1: mov $0x10, %%ax\n"
        "mov %%ax, %%ds\n"
        "mov %%ax, %%es\n"
        "mov %%ax, %%ss\n"
        "mov $0x18, %%ax\n"
        "ltr %%ax\n"
        : : "m"(pointer) : "rax", "memory");
}

#endif  // !__STDC_HOSTED__
