// Channel 0 of the 8254 programmable interval timer as the Legacy platform's periodic
// tick: IRQ 0 through the master 8259.
//
// Rules for callers:
//   * `startPeriodic` reprograms channel 0, which is also what `arch_tsc_hz_from_pit`
//     (Arch/pc.c) uses to calibrate the TSC: calibrate first, then start the tick.
//   * The tick is an interrupt, not a clock: count ticks with `nanoseconds(ticks:)`,
//     which converts without drift; `nanosecondsPerTick` is rounded and for display.
//   * `stop` leaves channel 0 in mode 0 with a full count: at most one more IRQ 0 edge
//     (about 55 ms later). Mask IRQ 0 at the 8259 as well if none may arrive.
//   * Program it with interrupts disabled: the two count bytes must not be split by a
//     handler that touches the PIT.
//
// References (Intel 82C54 datasheet):
//   * Control word (port 0x43): bits 7-6 SC (counter 0 = 00), bits 5-4 RW (11 = least
//     then most significant byte), bits 3-1 mode, bit 0 BCD (0 = binary).
//   * Mode 2, rate generator: OUT pulses low for one clock every N clocks, reloading N;
//     "a count of 1 is illegal in mode 2". A count of 0 means 65536.
//   * Mode 0, interrupt on terminal count: OUT goes low when the control word is
//     written and rises once when the count runs out. Linux's i8253 shutdown does the
//     same (control word 0x30, then count 0).
//   * Input clock: 1.193182 MHz on the PC (QEMU hw/timer/i8254.c, PIT_FREQ 1193182).
import X86Asm

/// Fixed PC I/O ports of the 8254 (IBM PC/AT; QEMU hw/timer/i8254.c).
enum PITPorts {
    static let channel0: UInt16 = 0x40
    static let command: UInt16 = 0x43
}

struct PIT8254 {
    /// The PIT's input clock in Hz.
    static let inputHz: UInt64 = 1_193_182

    /// Smallest and largest divisor programmed: 1 is illegal in mode 2, and 65535 is the
    /// largest written as itself (0 would mean 65536).
    static let divisorRange: ClosedRange<UInt32> = 2...65_535

    private static let channel0LoHiMode2: UInt8 = 0b00_11_010_0   // 0x34
    private static let channel0LoHiMode0: UInt8 = 0b00_11_000_0   // 0x30

    /// The divisor channel 0 counts down from; 0 while stopped.
    private(set) var divisor: UInt32 = 0

    init() {}

    /// The divisor for `hz`: round(1193182 / hz), clamped to `divisorRange` (so 0 Hz and
    /// anything below ~18.2 Hz give the slowest tick, anything above ~597 kHz the fastest).
    static func divisor(hz: UInt32) -> UInt32 {
        guard hz > 0 else { return divisorRange.upperBound }
        let rounded = (inputHz + UInt64(hz) / 2) / UInt64(hz)
        return UInt32(min(max(rounded, UInt64(divisorRange.lowerBound)), UInt64(divisorRange.upperBound)))
    }

    /// Programs channel 0 as a rate generator ticking as close to `hz` as the divisor
    /// allows; returns the divisor (also in `divisor`).
    @discardableResult
    mutating func startPeriodic(hz: UInt32) -> UInt32 {
        let d = PIT8254.divisor(hz: hz)
        arch_outb(PITPorts.command, PIT8254.channel0LoHiMode2)
        arch_outb(PITPorts.channel0, UInt8(truncatingIfNeeded: d))
        arch_outb(PITPorts.channel0, UInt8(truncatingIfNeeded: d >> 8))
        divisor = d
        return d
    }

    /// Stops the periodic tick (see the rules above: one last edge is possible).
    mutating func stop() {
        arch_outb(PITPorts.command, PIT8254.channel0LoHiMode0)
        arch_outb(PITPorts.channel0, 0)
        arch_outb(PITPorts.channel0, 0)
        divisor = 0
    }

    var isRunning: Bool { divisor != 0 }

    /// The tick rate actually programmed, in whole Hz (rounded); 0 while stopped.
    var frequencyHz: UInt32 {
        divisor == 0 ? 0 : UInt32((PIT8254.inputHz + UInt64(divisor) / 2) / UInt64(divisor))
    }

    /// The tick period in nanoseconds, rounded (e.g. 999847 at 1000 Hz); 0 while stopped.
    var nanosecondsPerTick: UInt64 {
        (UInt64(divisor) * 1_000_000_000 + PIT8254.inputHz / 2) / PIT8254.inputHz
    }

    /// The time `ticks` ticks take, in nanoseconds, rounded down once: exact over any
    /// number of ticks (no per-tick rounding error accumulates). Whole seconds and the
    /// remainder are converted separately so nothing overflows before 2^64 PIT clocks.
    func nanoseconds(ticks: UInt64) -> UInt64 {
        let clocks = ticks &* UInt64(divisor)
        return clocks / PIT8254.inputHz * 1_000_000_000
            + clocks % PIT8254.inputHz * 1_000_000_000 / PIT8254.inputHz
    }
}
