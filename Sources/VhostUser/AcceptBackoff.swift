// What a listener does when `accept` fails for want of resources (EMFILE: this process is
// out of descriptors; ENFILE: the system is; ENOBUFS, ENOMEM): the pending connection stays
// queued, so the listener stays readable and polling it again at once would spin at 100%
// CPU until a descriptor frees. Instead the listener is left out of the poll set for a
// pause that doubles from `minimum` to `maximum` while the failures go on and resets on
// the next successful accept. The failure is logged through BackendLog.limited.
//
// Rules for callers: after `accept` returns nil, pass errno to `failed`; a true result
// means "stop accepting now". Leave the listener out of the poll set while `isPaused(now)`
// and put `resumeAt` among the poll deadlines. Call `succeeded()` after an accept works.
import Glibc

public struct AcceptBackoff {
    public let minimum: Double
    public let maximum: Double
    /// When polling the listener resumes (monotonic seconds); nil when not paused.
    public private(set) var resumeAt: Double?
    var pause: Double

    public init(minimum: Double = 0.05, maximum: Double = 1) {
        self.minimum = minimum
        self.maximum = maximum
        pause = minimum
    }

    /// Whether `code` (an accept errno) means a shortage that waiting may cure.
    public static func isShortage(_ code: Int32) -> Bool {
        code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM
    }

    public func isPaused(_ now: Double) -> Bool {
        guard let resumeAt else { return false }
        return now < resumeAt
    }

    /// Records an accept failure with errno `code`; true when it starts a pause.
    public mutating func failed(_ code: Int32, now: Double, listener: String) -> Bool {
        guard AcceptBackoff.isShortage(code) else { return false }
        resumeAt = now + pause
        BackendLog.limited("accept", "accept on \(listener): \(String(cString: strerror(code))); not accepting for \(Int(pause * 1000)) ms",
                           now: now)
        pause = min(pause * 2, maximum)
        return true
    }

    /// An accept worked: the next shortage starts again from the shortest pause.
    public mutating func succeeded() {
        resumeAt = nil
        pause = minimum
    }

    /// Clears a pause that has run out (the listener is polled again).
    public mutating func expire(_ now: Double) {
        if let resumeAt, now >= resumeAt { self.resumeAt = nil }
    }
}
