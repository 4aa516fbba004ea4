// The back-end's log: one line per event on stderr, prefixed `toro-vsock: `. Tests
// capture the lines instead (`BackendLog.capture`).
import Glibc

public enum BackendLog {
    /// The prefix of every line.
    nonisolated(unsafe) public static var prefix = "toro-vsock: "
    /// When set, lines go here instead of stderr.
    nonisolated(unsafe) public static var capture: ((String) -> Void)?
    /// Per-packet chatter (off unless `--verbose`).
    nonisolated(unsafe) public static var verbose = false

    public static func line(_ text: String) {
        if let capture { capture(text); return }
        let whole = prefix + text + "\n"
        var bytes = Array(whole.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }

    public static func debug(_ text: @autoclosure () -> String) {
        if verbose { line(text()) }
    }
}
