// Devices every PC-compatible QEMU machine Toro boots on has at the same ports:
// the COM1 16550 UART and the isa-debug-exit port.
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
