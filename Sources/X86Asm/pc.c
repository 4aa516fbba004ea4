// Devices every PC-compatible QEMU machine Toro boots on has at the same ports:
// the COM1 16550 UART, the isa-debug-exit port, and the 8254 PIT used once to
// calibrate the TSC.
#include "arch.h"

#define COM1 0x3F8
#define DEBUG_EXIT_PORT 0xF4

void arch_serial_init(void) {
    arch_outb(COM1 + 1, 0x00);   // no UART interrupts
    arch_outb(COM1 + 3, 0x80);   // DLAB on
    arch_outb(COM1 + 0, 0x01);   // divisor 1: 115200 baud
    arch_outb(COM1 + 1, 0x00);
    arch_outb(COM1 + 3, 0x03);   // 8 data bits, no parity, 1 stop bit
    arch_outb(COM1 + 2, 0xC7);   // FIFOs on and cleared
    arch_outb(COM1 + 4, 0x03);   // DTR, RTS
}

void arch_serial_put(uint8_t byte) {
    // Line status bit 5: transmit holding register empty. Bounded: a UART that never
    // drains drops output instead of hanging the kernel.
    for (int spins = 0; spins < 100000 && !(arch_inb(COM1 + 5) & 0x20); spins++) arch_pause();
    arch_outb(COM1, byte);
}

void arch_debug_exit(uint8_t status) {
    // QEMU's isa-debug-exit: the process exits with (value << 1) | 1.
    arch_outl(DEBUG_EXIT_PORT, status);
    arch_halt_forever();
}

// The 8254 runs at 1.193182 MHz. Channel 0 is set to count down from 65535 (mode 2);
// latching and reading the count (8254 datasheet, counter latch command) measures
// elapsed PIT ticks against the TSC. Returns TSC ticks per second, or 0 when the PIT
// does not count (absent device).
#define PIT_HZ 1193182ull

static uint16_t pit_read_channel0(void) {
    arch_outb(0x43, 0x00);                 // latch channel 0
    uint8_t low = arch_inb(0x40);
    uint8_t high = arch_inb(0x40);
    return (uint16_t)(low | (high << 8));
}

uint64_t arch_tsc_hz_from_pit(uint32_t pit_ticks) {
    arch_outb(0x43, 0x34);                 // channel 0, lobyte/hibyte, mode 2
    arch_outb(0x40, 0xFF);
    arch_outb(0x40, 0xFF);
    uint16_t start = pit_read_channel0();
    uint64_t tsc_start = arch_rdtsc();
    uint32_t elapsed = 0;
    uint16_t last = start;
    for (uint32_t reads = 0; elapsed < pit_ticks; reads++) {
        uint16_t now = pit_read_channel0();
        elapsed += (uint16_t)(last - now);
        last = now;
        if (reads > 2000000 && elapsed == 0) return 0;   // the counter never moves
    }
    uint64_t tsc_elapsed = arch_rdtsc() - tsc_start;
    return tsc_elapsed * PIT_HZ / elapsed;
}
