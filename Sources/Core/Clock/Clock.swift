// The clock API services use: monotonic nanoseconds and wall-clock time.
//
// Monotonic time comes from the platform (KVM clock, or the TSC calibrated at boot).
// Wall time is the platform's reading at boot (KVM clock's wall clock, or the RTC) plus
// the monotonic time elapsed since; nil when the platform has no wall clock.

public enum Clock {
    /// The platform's clocks, handed over by `Kernel.start` before anything logs.
    nonisolated(unsafe) static var source: (any Clocks)?

    public static func monotonicNanoseconds() -> UInt64 {
        source?.monotonicNanoseconds() ?? 0
    }

    /// Unix time in nanoseconds, or nil without a wall clock.
    public static func wallClockNanoseconds() -> Int64? {
        guard let source, let boot = source.wallClockAtBoot else { return nil }
        let elapsed = source.monotonicNanoseconds() &- boot.monotonic
        return boot.seconds &* 1_000_000_000 &+ Int64(truncatingIfNeeded: elapsed)
    }
}
