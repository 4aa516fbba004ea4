// Per-CPU wake-ups from each CPU's LAPIC one-shot timer (microvm; on the legacy PC the
// PIT ticks instead). `ticksPerSecond` is measured once on the BSP against the TSC; QEMU
// gives every CPU the same APIC timer frequency.
import Arch
import Core

public struct APICTimer {
    public let lapic: LocalAPIC
    public let ticksPerSecond: UInt64

    public init(lapic: LocalAPIC, tscHz: UInt64) {
        self.lapic = lapic
        ticksPerSecond = max(lapic.calibrateTimer(tscHz: tscHz), 1)
    }

    /// Fires the timer vector at `deadline` (monotonic ns), or very soon if it has passed.
    public func arm(deadline: UInt64, now: UInt64) {
        let delta = deadline > now ? deadline - now : 0
        // ticks = delta * ticksPerSecond / 1e9, split to avoid overflow.
        let ticks = (delta / 1_000_000) * (ticksPerSecond / 1000) + (delta % 1_000_000) * ticksPerSecond / 1_000_000_000
        lapic.startOneShot(vector: InterruptVector.timer, ticks: UInt32(min(ticks + 1, UInt64(UInt32.max))))
    }
}
