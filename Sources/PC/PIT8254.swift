// Channel 0 of the 8254 programmable interval timer, the one PIT driver both PC machines
// use: once at boot to measure the TSC's rate (`measureTSC`, for TSCClock), and on the
// Legacy platform as the periodic tick (IRQ 0 through the master 8259). `PIT8254` is the
// kernel's timer over the CPU's I/O ports; the host tests run `PIT8254Chip` over a
// `RegisterRecorder` (Tests/PCTests).
//
// Rules for callers:
//   * `startPeriodic` reprograms channel 0, which `measureTSC` also uses: measure first,
//     then start the tick. `measureTSC` leaves channel 0 counting down from 65535 in
//     mode 2 (an IRQ 0 edge every ~55 ms, which the 8259 masks until the tick starts).
//   * `measureTSC` gives up (nil) when the count has not moved after 2,000,000 reads: an
//     absent or stuck PIT costs a bounded wait, and the caller falls back to a guess.
//   * The tick is an interrupt, not a clock: count ticks with `nanoseconds(ticks:)`,
//     which converts without drift; `nanosecondsPerTick` is rounded and for display.
//   * `stop` leaves channel 0 in mode 0 with a full count: at most one more IRQ 0 edge
//     (about 55 ms later). Mask IRQ 0 at the 8259 as well if none may arrive.
//   * Program it with interrupts disabled: the two count bytes must not be split by a
//     handler that touches the PIT.
//
// References (Intel 82C54 datasheet):
//   * Control word (port 0x43): bits 7-6 SC (counter 0 = 00), bits 5-4 RW (11 = least
//     then most significant byte, 00 = counter latch command), bits 3-1 mode, bit 0 BCD
//     (0 = binary).
//   * Counter latch command: the count is frozen for the next two reads of the counter's
//     port (low byte, then high byte) while the counter keeps counting.
//   * Mode 2, rate generator: OUT pulses low for one clock every N clocks, reloading N;
//     "a count of 1 is illegal in mode 2". A count of 0 means 65536.
//   * Mode 0, interrupt on terminal count: OUT goes low when the control word is
//     written and rises once when the count runs out. Linux's i8253 shutdown does the
//     same (control word 0x30, then count 0).
//   * Input clock: 1.193182 MHz on the PC (QEMU hw/timer/i8254.c, PIT_FREQ 1193182).
import X86Asm

/// Fixed PC I/O ports of the 8254 (IBM PC/AT; QEMU hw/timer/i8254.c).
public enum PITPorts {
    public static let channel0: UInt16 = 0x40
    public static let command: UInt16 = 0x43
}

/// The control words Toro writes to `PITPorts.command`.
public enum PITControl {
    /// Counter 0, low then high byte, mode 2 (rate generator), binary.
    public static let channel0LoHiMode2: UInt8 = 0b00_11_010_0     // 0x34
    /// Counter 0, low then high byte, mode 0 (interrupt on terminal count), binary.
    public static let channel0LoHiMode0: UInt8 = 0b00_11_000_0     // 0x30
    /// Counter latch command for counter 0.
    public static let latchChannel0: UInt8 = 0b00_00_000_0         // 0x00
}

/// The kernel's PIT, over the CPU's I/O ports.
public typealias PIT8254 = PIT8254Chip<X86Ports>

extension PIT8254Chip where Ports == X86Ports {
    public init() { self.init(ports: X86Ports()) }
}

public struct PIT8254Chip<Ports: PortAccess> {
    public let ports: Ports

    /// The PIT's input clock in Hz.
    public static var inputHz: UInt64 { 1_193_182 }

    /// Smallest and largest divisor programmed: 1 is illegal in mode 2, and 65535 is the
    /// largest written as itself (0 would mean 65536).
    public static var divisorRange: ClosedRange<UInt32> { 2...65_535 }

    /// Reads of a count that has not moved before `measureTSC` gives up.
    public static var stuckReadLimit: UInt32 { 2_000_000 }

    public init(ports: Ports) { self.ports = ports }

    /// The divisor channel 0 counts down from; 0 while stopped.
    public private(set) var divisor: UInt32 = 0

    /// The divisor for `hz`: round(1193182 / hz), clamped to `divisorRange` (so 0 Hz and
    /// anything below ~18.2 Hz give the slowest tick, anything above ~597 kHz the fastest).
    public static func divisor(hz: UInt32) -> UInt32 {
        guard hz > 0 else { return divisorRange.upperBound }
        let rounded = (inputHz + UInt64(hz) / 2) / UInt64(hz)
        return UInt32(min(max(rounded, UInt64(divisorRange.lowerBound)), UInt64(divisorRange.upperBound)))
    }

    /// Programs channel 0 as a rate generator ticking as close to `hz` as the divisor
    /// allows; returns the divisor (also in `divisor`).
    @discardableResult
    public mutating func startPeriodic(hz: UInt32) -> UInt32 {
        let d = Self.divisor(hz: hz)
        program(PITControl.channel0LoHiMode2, count: UInt16(d))
        divisor = d
        return d
    }

    /// Stops the periodic tick (see the rules above: one last edge is possible).
    public mutating func stop() {
        program(PITControl.channel0LoHiMode0, count: 0)
        divisor = 0
    }

    public var isRunning: Bool { divisor != 0 }

    /// The tick rate actually programmed, in whole Hz (rounded); 0 while stopped.
    public var frequencyHz: UInt32 {
        divisor == 0 ? 0 : UInt32((Self.inputHz + UInt64(divisor) / 2) / UInt64(divisor))
    }

    /// The tick period in nanoseconds, rounded (e.g. 999847 at 1000 Hz); 0 while stopped.
    public var nanosecondsPerTick: UInt64 {
        (UInt64(divisor) * 1_000_000_000 + Self.inputHz / 2) / Self.inputHz
    }

    /// The time `ticks` ticks take, in nanoseconds, rounded down once: exact over any
    /// number of ticks (no per-tick rounding error accumulates). Whole seconds and the
    /// remainder are converted separately so nothing overflows before 2^64 PIT clocks.
    public func nanoseconds(ticks: UInt64) -> UInt64 {
        let clocks = ticks &* UInt64(divisor)
        return clocks / Self.inputHz * 1_000_000_000
            + clocks % Self.inputHz * 1_000_000_000 / Self.inputHz
    }

    /// Writes `control` to the command port, then the 16-bit `count` low byte first.
    func program(_ control: UInt8, count: UInt16) {
        ports.out8(PITPorts.command, control)
        ports.out8(PITPorts.channel0, UInt8(truncatingIfNeeded: count))
        ports.out8(PITPorts.channel0, UInt8(truncatingIfNeeded: count >> 8))
    }

    /// Channel 0's current count, latched so the two bytes belong together.
    func readCount() -> UInt16 {
        ports.out8(PITPorts.command, PITControl.latchChannel0)
        let low = ports.in8(PITPorts.channel0)
        let high = ports.in8(PITPorts.channel0)
        return UInt16(low) | UInt16(high) << 8
    }

    /// The TSC's rate in Hz, measured over `pitTicks` PIT clocks (1193 per millisecond):
    /// channel 0 counts down from 65535 in mode 2 and is sampled (a latched count, then
    /// the TSC) until that many clocks have passed; `cycles` reads the TSC. Nil when the
    /// count never moves. Leaves channel 0 counting (see the rules above); `divisor` is
    /// left as it was.
    ///
    /// Every sample comes from the same instructions and the first is thrown away: under
    /// TCG the first pass through new code pays for its translation between the latch and
    /// the TSC read, which would make the start late and the rate low by several percent.
    public func measureTSC(pitTicks: UInt32, cycles: () -> UInt64 = { arch_rdtsc() }) -> UInt64? {
        program(PITControl.channel0LoHiMode2, count: 0xFFFF)
        var warmUps = 2                             // the thrown-away sample, then the start
        var last: UInt16 = 0
        var start: UInt64 = 0
        var elapsed: UInt32 = 0
        var reads: UInt32 = 0
        while true {
            let now = readCount()
            let tsc = cycles()
            if warmUps > 0 {
                warmUps -= 1
                last = now
                start = tsc
                continue
            }
            elapsed &+= UInt32(last &- now)         // the count wraps from 0 to 65535
            last = now
            if elapsed >= pitTicks {
                guard elapsed > 0 else { return nil }   // pitTicks 0: nothing measured
                return (tsc &- start) &* Self.inputHz / UInt64(elapsed)
            }
            if reads > Self.stuckReadLimit && elapsed == 0 { return nil }
            reads &+= 1
        }
    }
}
