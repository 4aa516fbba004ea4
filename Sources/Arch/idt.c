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
    IdtPointer pointer = { .limit = sizeof(idt) - 1, .base = (uint64_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" : : "m"(pointer));
}
