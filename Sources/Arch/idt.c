// The interrupt descriptor table (SDM vol. 3, 6.14.1): 256 64-bit interrupt gates on
// the kernel code segment, each pointing at its stub in isr.S.
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
            .ist = 0,
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
