// What bounds the connections of one listener, and the decision made for each new one.
//
// Each listening port has:
//   * a limit on live connections (`max-conns=N`; default: a quarter of memory divided by
//     what an idle connection costs, its thread's stack and first buffers, 8...1024);
//   * an accept backlog (`backlog=N`; default 64, never above the limit): connections the
//     device has set up and the service has not yet accepted;
//   * an idle timeout (`idle-timeout=SECONDS`; default 60, 0 = never): a connection whose
//     peer sent nothing and took nothing for that long is closed, and so is a write that
//     waits that long for the peer's credit (a reader that never reads).
//
// A new connection is refused at once (the peer sees it reset, never a hang) when the
// backlog is full, when memory would fall into the reserve (MemoryBudget), or when the
// listener is at its limit and no connection can make room. At the limit, a newcomer takes
// the slot of the oldest connection whose peer has sent no byte in the 2 s or more it has
// been open (what an idle flood holds; `muteGrace`), or else of the one silent longest if
// it has been silent for `evictAfter` (10 s, or the idle timeout if shorter): an idle-connection flood cannot lock well-behaved clients out, and a
// client that talks is never pushed out by newcomers within 10 s of its last word.
// Only a connection whose service waits for the peer (`isAwaitingPeer`) can be chosen: a
// client whose request we are still answering never is.
//
// This file is pure (no clock, no memory, no log): the defaults that depend on the machine
// are in ConnectionDefaults.swift.
//
// Rules for callers (socket providers: vsock on microvm, TCP on legacy): ask `decide`
// for every connection a peer opens, `add` what you admit, `remove` what the service
// closed or you evicted; keep `lastActivity` of each connection current (nanoseconds on
// the monotonic clock) whenever bytes or credit move either way.

public struct ConnectionLimits: Equatable, Sendable {
    public var maximumConnections: Int
    public var backlog: Int
    /// Nanoseconds; 0 means connections are never closed for silence.
    public var idleTimeout: UInt64

    public static let defaultBacklog = 64
    public static let defaultIdleSeconds = 60
    public static let maximumConnectionsCap = 1024

    public init(maximumConnections: Int, backlog: Int, idleTimeout: UInt64) {
        self.maximumConnections = max(1, maximumConnections)
        self.backlog = max(1, min(backlog, self.maximumConnections))
        self.idleTimeout = idleTimeout
    }

    /// How long a connection that has talked must have been silent before a newcomer may
    /// take its slot: 10 s, or the idle timeout if shorter. Long against the guest's own
    /// lag: under a flood, a client's next request can wait a second or more in the
    /// device's receive ring, and that is not the client's silence.
    public var evictAfter: UInt64 {
        idleTimeout == 0 ? 10_000_000_000 : min(10_000_000_000, idleTimeout)
    }
}

/// A connection a listener tracks: the time anything last moved on it, and whether the
/// service is waiting for the peer (blocked reading, nothing unread). Only such a
/// connection can be silent: one whose request is unread or still being answered is
/// waiting for us, however long that takes.
public protocol IdleTracked: AnyObject {
    var lastActivity: UInt64 { get }
    var isAwaitingPeer: Bool { get }
    /// The peer has sent at least one byte of data.
    var peerHasSpoken: Bool { get }
}

/// Why a new connection was refused.
public enum ConnectionRefusal: Equatable, Sendable {
    /// The service has not accepted `backlog` connections yet.
    case backlogFull
    /// At the limit, and every live connection has been active recently.
    case connectionLimit
    /// Memory would fall into the kernel's reserve.
    case memory
}

public enum AdmissionDecision<Connection: AnyObject> {
    /// Admit the newcomer.
    case admit
    /// Close this silent connection (already removed from the table), then admit.
    case evict(Connection)
    case refuse(ConnectionRefusal)
}

/// The live connections of one listener and the admission rule above.
public struct ConnectionTable<Connection: IdleTracked> {
    public let limits: ConnectionLimits
    public private(set) var live: [Connection] = []
    public private(set) var refusals = RefusalBurst()
    public private(set) var evictions = 0
    /// Evicted connections whose memory has not come back yet (their service has not
    /// closed them): `released()` counts one down.
    public private(set) var draining = 0
    /// When memory is short, evict to admit only while fewer than this many evictions are
    /// still draining: each admission takes memory before its victim gives any back, and
    /// the reserve must not pay for a whole burst of them.
    public static var maximumDraining: Int { 4 }

    public init(limits: ConnectionLimits) {
        self.limits = limits
    }

    /// Decides for a newcomer. `pending`: admitted connections not yet accepted;
    /// `memoryAdmits`: whether MemoryBudget admits one more connection. A refusal is
    /// recorded; `refusalOpensBurst` then says whether to log it.
    public mutating func decide(pending: Int, now: UInt64, memoryAdmits: Bool) -> AdmissionDecision<Connection> {
        if pending >= limits.backlog { return refuse(.backlogFull, now: now) }
        if live.count < limits.maximumConnections && memoryAdmits {
            endedBurst = refusals.admitted(now: now)
            return .admit
        }
        // Full (or short of memory): the connection silent longest makes room, if it has
        // been silent long enough; its memory comes back when its thread ends.
        // First choice: the oldest connection whose peer never sent a byte (what a flood
        // holds); then the one silent longest, if for at least `evictAfter`.
        var mute: Int? = nil
        var oldest: Int? = nil
        for index in live.indices where live[index].isAwaitingPeer && now >= live[index].lastActivity {
            let connection = live[index]
            if !connection.peerHasSpoken {
                guard now &- connection.lastActivity >= Self.muteGrace else { continue }
                if mute.map({ connection.lastActivity < live[$0].lastActivity }) ?? true { mute = index }
            } else if now &- connection.lastActivity >= limits.evictAfter {
                if oldest.map({ connection.lastActivity < live[$0].lastActivity }) ?? true { oldest = index }
            }
        }
        guard let oldest = mute ?? oldest, memoryAdmits || draining < Self.maximumDraining else {
            return refuse(memoryAdmits ? .connectionLimit : .memory, now: now)
        }
        evictions += 1
        draining += 1
        return .evict(live.remove(at: oldest))
    }

    /// How long a connection whose peer has not sent a byte yet is safe from newcomers:
    /// 2 s. Under a flood, a new client's first request can wait behind hundreds of
    /// REQUESTs in the device's receive ring; it must not be taken for an idle one meanwhile.
    public static var muteGrace: UInt64 { 2_000_000_000 }

    /// An evicted connection has been closed by its service: its memory is back.
    public mutating func released() {
        if draining > 0 { draining -= 1 }
    }

    /// True when the last `decide` refusal opened a burst (log one line for it).
    public private(set) var refusalOpensBurst = false
    /// Set by an admission that closed a burst of refusals: how many it refused (log it).
    public private(set) var endedBurst: Int? = nil

    private mutating func refuse(_ reason: ConnectionRefusal, now: UInt64) -> AdmissionDecision<Connection> {
        refusalOpensBurst = refusals.refuse(now: now)
        return .refuse(reason)
    }

    public mutating func add(_ connection: Connection) {
        live.append(connection)
    }

    /// Forgets `connection` (no-op when it is not live, e.g. evicted before).
    public mutating func remove(_ connection: Connection) {
        if let index = live.firstIndex(where: { $0 === connection }) { live.remove(at: index) }
        if live.isEmpty { live = [] }
    }
}
