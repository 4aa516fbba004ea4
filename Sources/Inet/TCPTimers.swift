// TCP's clocks: the retransmission timeout (RFC 6298) and the constants of every timer.
//
// RFC 6298: the first RTT sample R sets SRTT = R, RTTVAR = R/2; later ones
// RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|, SRTT = 7/8 SRTT + 1/8 R; RTO = SRTT + max(G, 4 RTTVAR),
// clamped. Karn's rule: a retransmitted segment gives no sample (the connection times one
// segment at a time and forgets it on a retransmission). Each timeout doubles the RTO
// (backoff) until a new acknowledgment; the retransmission count bounds how long a dead
// peer keeps a connection.
//
// The minimum is 200 ms, not RFC 6298's 1 s: RFC 6298 §2.4 allows less, Linux uses 200 ms,
// and under TCG with a local peer (slirp, a namespace) RTTs are a few milliseconds, so 1 s
// would make every loss cost a second.

public enum TCPLimits {
    /// The MSS Toro announces and the largest segment it sends (1500 - 20 - 20).
    public static let maximumSegment = 1460
    /// The MSS assumed when the peer announces none (RFC 9293 §3.7.1).
    public static let defaultPeerSegment = 536
    /// The least MSS accepted from a peer: a smaller one would make a segment per few bytes.
    public static let minimumPeerSegment = 64
    /// What a connection may hold unread (its window; no window scaling, so ≤ 65,535).
    public static let receiveCapacity = 32 * 1024
    /// What a connection may hold written and unacknowledged.
    public static let sendCapacity = 64 * 1024
    /// Nanoseconds.
    public static let initialRTO: UInt64 = 1_000_000_000
    public static let minimumRTO: UInt64 = 200_000_000
    public static let maximumRTO: UInt64 = 60_000_000_000
    /// Clock granularity G of RFC 6298 (the kernel's clock is finer; 1 ms keeps RTO sane).
    public static let granularity: UInt64 = 1_000_000
    /// Retransmissions of one segment before the connection is aborted (with backoff from
    /// 200 ms and a 60 s cap this is a couple of minutes of silence).
    public static let maximumRetransmissions = 10
    /// Retransmissions of a SYN or SYN-ACK before giving up (1 + 2 + 4 + 8 s).
    public static let maximumSynRetransmissions = 4
    /// Delayed ACK (RFC 9293 §3.8.6.3: under 0.5 s; Linux's 40 ms).
    public static let delayedAck: UInt64 = 40_000_000
    /// TIME-WAIT's 2 × MSL with an MSL of 2 s: a short MSL suits a unikernel's peers (a
    /// local host or LAN), and the stack also caps how many connections wait at once.
    public static let timeWait: UInt64 = 4_000_000_000
    /// How long a connection its service closed waits in FIN-WAIT-2 for the peer's FIN
    /// (Linux's tcp_fin_timeout): a peer that never closes cannot hold it forever.
    public static let finWait2: UInt64 = 60_000_000_000
    /// Persist probes: the first after the RTO, doubling up to this.
    public static let maximumPersist: UInt64 = 60_000_000_000
}

/// The RFC 6298 estimator of one connection.
public struct RetransmissionTimeout: Equatable, Sendable {
    public private(set) var smoothed: UInt64 = 0
    public private(set) var variation: UInt64 = 0
    public private(set) var hasSample = false
    /// The RTO without backoff.
    public private(set) var base: UInt64 = TCPLimits.initialRTO
    /// Consecutive timeouts since the last new acknowledgment (the backoff exponent).
    public private(set) var backoff = 0

    public init() {}

    /// The timeout now: the base doubled per backoff, within the limits.
    public var current: UInt64 {
        var value = base
        var i = 0
        while i < backoff && value < TCPLimits.maximumRTO { value *= 2; i += 1 }
        return min(max(value, TCPLimits.minimumRTO), TCPLimits.maximumRTO)
    }

    /// A round-trip sample (nanoseconds) of a segment sent once.
    public mutating func sample(_ rtt: UInt64) {
        if !hasSample {
            smoothed = rtt
            variation = rtt / 2
            hasSample = true
        } else {
            let difference = smoothed > rtt ? smoothed - rtt : rtt - smoothed
            variation = (3 * variation + difference) / 4
            smoothed = (7 * smoothed + rtt) / 8
        }
        base = min(max(smoothed + max(TCPLimits.granularity, 4 * variation), TCPLimits.minimumRTO), TCPLimits.maximumRTO)
    }

    /// The timer expired: double (RFC 6298 §5.5).
    public mutating func timedOut() { backoff += 1 }
    /// New data was acknowledged: the backoff ends (§5.7 keeps the doubled value only
    /// until then).
    public mutating func acknowledged() { backoff = 0 }
}
