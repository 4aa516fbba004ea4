// How the host recognises the kernel's own log lines on the serial console.
//
// A kernel log line starts with a timestamp, `^\[ *[0-9]+\.[0-9]{6}\] ` (seconds since
// boot, microsecond digits), e.g. `[   0.001234] boot: console ready`. Service output
// has no timestamp. Firmware may print before the kernel does (SeaBIOS on `-M pc`), so
// the guest's own output starts at the first timestamp.

public enum KernelLog {
    /// The text after the timestamp when `line` is a kernel log line, else nil.
    public static func stripTimestamp(_ line: Substring) -> Substring? {
        guard let end = timestampEnd(line.utf8, from: line.utf8.startIndex) else { return nil }
        return Substring(line.utf8[end...])
    }

    /// Whether `line` is a kernel log line.
    public static func isLogLine<S: StringProtocol>(_ line: S) -> Bool {
        stripTimestamp(Substring(line)) != nil
    }

    /// The index in `text` where the first timestamp starts, or nil when there is none.
    public static func firstTimestamp(in text: String) -> String.Index? {
        let utf8 = text.utf8
        var index = utf8.startIndex
        while index != utf8.endIndex {
            if utf8[index] == UInt8(ascii: "["), timestampEnd(utf8, from: index) != nil {
                return index
            }
            index = utf8.index(after: index)
        }
        return nil
    }

    /// Matches `[ *[0-9]+\.[0-9]{6}\] ` at `start`; returns the index after the match.
    static func timestampEnd<C: Collection>(_ bytes: C, from start: C.Index) -> C.Index?
    where C.Element == UInt8 {
        var i = start
        func next() -> UInt8? {
            guard i != bytes.endIndex else { return nil }
            defer { i = bytes.index(after: i) }
            return bytes[i]
        }
        func isDigit(_ b: UInt8?) -> Bool { b.map { $0 >= 48 && $0 <= 57 } ?? false }
        guard next() == UInt8(ascii: "[") else { return nil }
        var b = next()
        while b == UInt8(ascii: " ") { b = next() }
        guard isDigit(b) else { return nil }
        while isDigit(b) { b = next() }
        guard b == UInt8(ascii: ".") else { return nil }
        for _ in 0..<6 { guard isDigit(next()) else { return nil } }
        guard next() == UInt8(ascii: "]"), next() == UInt8(ascii: " ") else { return nil }
        return i
    }
}
