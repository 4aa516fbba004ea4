// A service transcript: what a service observably did, with everything that may
// legitimately differ between platforms taken out, so that two platforms' runs can be
// compared line by line (`toro compare`, the differential tests, Compat/*/expected).
//
// Normalisation: start at the kernel's first log line (firmware may print before it);
// drop `\r`; drop kernel log lines (they start with a timestamp and report boot details
// that differ by design); write the platform's name (`microvm`, `legacy`) as
// `<platform>`; end with a line `exit status: N` (toro's status for the run).

public enum Transcript {
    public static let platformPlaceholder = "<platform>"

    /// The transcript lines of one run's console `output` that ended with `status`.
    public static func normalise(_ output: String, status: Int32) -> [String] {
        var text = Substring(output)
        if let start = KernelLog.firstTimestamp(in: output) { text = output[start...] }
        var lines = String(text).consoleLines()
        if lines.last == "" { lines.removeLast() }
        var result: [String] = []
        for line in lines where !KernelLog.isLogLine(line) {
            var normalised = line
            for platform in GuestPlatform.allCases {
                normalised = normalised.replacingAll(platform.rawValue, with: platformPlaceholder)
            }
            result.append(normalised)
        }
        result.append("exit status: \(status)")
        return result
    }

    /// Lines of a transcript file (one per line; a final newline is optional; `\r` dropped).
    public static func parse(_ text: String) -> [String] {
        var lines = text.consoleLines()
        if lines.last == "" { lines.removeLast() }
        return lines
    }

    /// The text of a transcript file.
    public static func render(_ lines: [String]) -> String { lines.map { $0 + "\n" }.joined() }
}

extension String {
    /// The text split at each "\n", with every "\r" removed. (Splitting Characters would
    /// not work: in Swift "\r\n" is a single Character, not a "\r" and a "\n".)
    func consoleLines() -> [String] {
        var scalars = unicodeScalars
        scalars.removeAll { $0 == "\r" }
        return String(scalars).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// Every occurrence of `target` replaced (without Foundation).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty, contains(target) else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
