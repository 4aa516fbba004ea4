// Rate-limited log lines for what a hostile peer can repeat at will (a bad guest packet, a
// refused name, a failed accept): at most one line per kind per `interval` seconds, and the
// next line of that kind says how many were suppressed in between, so a guest flooding bad
// packets costs a line a second, not a line a packet.
//
// Rules for callers: `kind` is a short constant naming the event class ("bad-cid",
// "accept"), never text from the peer (the table would grow with what the peer sends);
// `text` is built only when the line is printed. Not thread-safe (the back-ends are one
// thread). `BackendLog.limited` uses one shared limiter; tests make their own with a clock.

public struct LogLimiter {
    /// Seconds between two lines of one kind.
    public let interval: Double
    /// Per kind: when its last line was printed and how many were suppressed since.
    var kinds: [String: (printed: Double, suppressed: Int)] = [:]

    public init(interval: Double = 1) { self.interval = interval }

    /// Whether a line of `kind` may be printed at `now`: nil when it is suppressed, else
    /// the number suppressed since the last one printed.
    public mutating func admit(_ kind: String, now: Double) -> Int? {
        guard let last = kinds[kind] else {
            kinds[kind] = (now, 0)
            return 0
        }
        guard now - last.printed >= interval else {
            kinds[kind] = (last.printed, last.suppressed + 1)
            return nil
        }
        kinds[kind] = (now, 0)
        return last.suppressed
    }

    /// Takes the counts of kinds whose interval has passed with lines suppressed (for a
    /// closing "N more" line when a burst ends without a further line of its kind).
    public mutating func takeFinished(now: Double) -> [(kind: String, suppressed: Int)] {
        var finished: [(kind: String, suppressed: Int)] = []
        for (kind, last) in kinds where last.suppressed > 0 && now - last.printed >= interval {
            finished.append((kind, last.suppressed))
            kinds[kind] = (last.printed, 0)
        }
        return finished.sorted { $0.kind < $1.kind }
    }
}

extension BackendLog {
    nonisolated(unsafe) static var limiter = LogLimiter()

    /// Logs `text` unless a line of `kind` was logged less than a second ago; a printed
    /// line ends with the count of lines of its kind suppressed before it.
    public static func limited(_ kind: String, _ text: @autoclosure () -> String, now: Double = Posix.monotonicNow()) {
        guard let suppressed = limiter.admit(kind, now: now) else { return }
        line(suppressed == 0 ? text() : text() + " (\(suppressed) more like it suppressed)")
    }

    /// Ends bursts: one line per kind whose suppressed lines were not yet reported. The
    /// event loops call it once a turn.
    public static func flushSuppressed(now: Double = Posix.monotonicNow()) {
        for (kind, count) in limiter.takeFinished(now: now) {
            line("\(count) more '\(kind)' lines suppressed")
        }
    }
}
