// Counting refusals and logging them once per burst, not once per event.
//
// When a hostile client floods a service, every refused connection or request would
// otherwise print a line: the log itself becomes the denial of service (a serial console
// under TCG writes a few hundred lines a second). A burst starts with the first refusal
// after a quiet period and ends at the first admission that comes at least `quiet`
// nanoseconds after its last refusal; the caller logs one line when a burst starts and
// one summary (how many were refused) when it ends.
//
// Rules for callers: a value type with no I/O and no clock of its own: pass the time.
// Not thread-safe; keep one per listener or per budget, touched from one CPU.

public struct RefusalBurst {
    /// A burst is over once nothing was refused for this long: 1 s.
    public static let quiet: UInt64 = 1_000_000_000

    /// Every refusal ever recorded.
    public private(set) var total = 0
    /// Refusals in the burst that is open (0: none is).
    public private(set) var current = 0
    private var lastRefusal: UInt64 = 0

    public init() {}

    /// Records a refusal at `now`. True when it opens a burst: log one line then.
    public mutating func refuse(now: UInt64) -> Bool {
        total += 1
        let opens = current == 0 || now &- lastRefusal >= RefusalBurst.quiet
        if opens { current = 0 }
        current += 1
        lastRefusal = now
        return opens
    }

    /// Records an admission at `now`. When a burst is open and has been quiet for
    /// `quiet`, closes it and returns how many it refused (log a summary); nil otherwise.
    public mutating func admitted(now: UInt64) -> Int? {
        guard current > 0, now &- lastRefusal >= RefusalBurst.quiet else { return nil }
        let count = current
        current = 0
        return count
    }
}
