// Per-CPU wake-ups from each CPU's LAPIC one-shot timer (microvm; on the legacy PC the
// PIT ticks instead). The timer's rate is measured against the TSC once, by the first CPU
// that needs a wake-up, not at boot: a service that never sleeps does not pay the 1 ms
// measurement. QEMU gives every CPU the same APIC timer frequency. The register writes
// are `LocalAPICChip.calibrateTimer` and `startOneShot(vector:nanoseconds:ticksPerSecond:)`,
// whose sequences Tests/PCTests asserts.
import X86Asm
import Core
import Synchronization

public final class APICTimer {
    public let lapic: LocalAPIC
    let tscHz: UInt64
    /// 0: not measured, 1: a CPU is measuring, 2: `measured` holds the rate.
    private let state = Atomic<Int>(0)
    private let measured = Atomic<UInt64>(0)

    public init(lapic: LocalAPIC, tscHz: UInt64) {
        self.lapic = lapic
        self.tscHz = tscHz
    }

    /// APIC timer ticks per second (divide by 16); measured on first use.
    public var ticksPerSecond: UInt64 {
        if state.load(ordering: .acquiring) == 2 { return measured.load(ordering: .relaxed) }
        if state.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            measured.store(max(lapic.calibrateTimer(tscHz: tscHz), 1), ordering: .relaxed)
            state.store(2, ordering: .releasing)
        }
        while state.load(ordering: .acquiring) != 2 { arch_pause() }
        return measured.load(ordering: .relaxed)
    }

    /// Whether the rate has been measured yet (for the boot log).
    public var isMeasured: Bool { state.load(ordering: .acquiring) == 2 }

    /// Fires the timer vector at `deadline` (monotonic ns), or very soon if it has passed.
    public func arm(deadline: UInt64, now: UInt64) {
        let rate = ticksPerSecond
        lapic.startOneShot(vector: InterruptVector.timer, nanoseconds: deadline > now ? deadline - now : 0,
                           ticksPerSecond: rate)
    }
}
