// The kernel log: text to the platform console, boot milestones with timestamps, and
// the panic path.
//
// Rules for callers: `Log` writes synchronously and allocates nothing, so it works
// before the heap exists and inside the exception handler. `panic` never returns and
// prints its message even in -O builds, where a Swift trap would print nothing.

// The writers are @inline(never): they are called from hundreds of places, and inlining
// them multiplies the image size for no gain on a serial console.
public enum Log {
    /// Where log bytes go; installed by the platform as its first act.
    nonisolated(unsafe) public static var console: (any Console)?

    /// Writes `text` as-is.
    @inline(never)
    public static func write(_ text: StaticString) {
        text.withUTF8Buffer { for byte in $0 { put(byte) } }
    }

    /// Writes a Swift string (allocates only if `text` itself does).
    @inline(never)
    public static func write(_ text: String) {
        var text = text
        text.withUTF8 { for byte in $0 { put(byte) } }
    }

    @inline(never)
    public static func put(_ byte: UInt8) {
        guard let console else { return }
        if byte == 10 { console.write(13) }
        console.write(byte)
    }

    @inline(never)
    public static func decimal(_ value: UInt64) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var v = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(truncatingIfNeeded: v % 10) + 48
                count += 1
                v /= 10
            } while v > 0
            while count > 0 { count -= 1; put(buffer[count]) }
        }
    }

    @inline(never)
    public static func decimal(_ value: Int) {
        if value < 0 { put(45); decimal(UInt64(0 &- value)) } else { decimal(UInt64(value)) }
    }

    /// Writes `0x` and `value` in hexadecimal, zero-padded to `digits` digits.
    @inline(never)
    public static func hex(_ value: UInt64, digits: Int = 16) {
        write("0x")
        var shift = (digits - 1) * 4
        while shift >= 0 {
            let nibble = UInt8(truncatingIfNeeded: (value >> UInt64(shift)) & 0xF)
            put(nibble < 10 ? 48 + nibble : 87 + nibble)
            shift -= 4
        }
    }

    /// `[seconds.micros] ` from the platform's monotonic clock.
    @inline(never)
    public static func timestamp() {
        let ns = Clock.monotonicNanoseconds()
        let micros = ns / 1000
        put(91)
        let seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if seconds < 100 { put(32) }
        if seconds < 10 { put(32) }
        decimal(seconds)
        put(46)
        var divisor: UInt64 = 100_000
        while divisor > 0 { put(UInt8(fraction / divisor) + 48); fraction %= divisor; divisor /= 10 }
        write("] ")
    }

    /// A timestamped boot milestone: `[   0.001234] boot: <text>`.
    @inline(never)
    public static func milestone(_ text: StaticString) {
        timestamp()
        write(text)
        put(10)
    }
}

/// Stops the kernel with a message: prints `panic: <message>` and exits with
/// `ExitStatus.panic`. For kernel invariants and unrecoverable boot data only.
public func panic(_ message: StaticString) -> Never {
    Log.write("\npanic: ")
    Log.write(message)
    Log.put(10)
    guard let cpu = Kernel.cpu else {
        while true {}
    }
    cpu.exit(.panic)
}
