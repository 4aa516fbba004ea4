// TCP's demultiplexer: every connection and listening port of this host, the segments
// from the IPv4 layer routed to them, the answers to segments nobody expects (RST, RFC
// 9293 §3.10.7.1), and the timers.
//
// What bounds it (DESIGN.md, "Robustness rules"):
//   * connections in all: `maximumConnections` (a SYN beyond it is dropped and counted);
//   * half-open connections per listening port: its `maximumHalfOpen` (the backlog). At
//     the bound a new SYN takes the place of the oldest half-open one, so a SYN flood
//     costs bounded memory and a real client still gets through (its retransmitted SYN
//     finds a slot);
//   * connections in TIME-WAIT: `maximumTimeWait`; beyond it the oldest ends early;
//   * a connection's buffers: TCPLimits (32 KiB received, 64 KiB to send), grown only
//     when used and only as the memory budget allows.
// Whether a finished handshake becomes a connection the service sees is the port's
// `admit` decision (the sockets layer's ConnectionTable: limit, backlog, memory); a
// refusal is answered with RST.
//
// Initial sequence numbers follow RFC 6528: a clock ticking every 4 µs plus a keyed mix
// of the connection's addresses and ports with a secret chosen at start-up.
//
// Pure, like TCPConnection: `now` comes from the caller, one thread at a time.
import Core
import Wire

/// A listening port as the stack sees it.
public final class TCPPassivePort {
    public let port: UInt16
    /// Half-open connections (SYN-RECEIVED) at most.
    public let maximumHalfOpen: Int
    /// Decides on each completed handshake; nil admits everything. A false answer resets
    /// the connection.
    public var admit: ((TCPConnection, UInt64) -> Bool)?
    /// Half-open connections, oldest first.
    var halfOpen: [TCPConnection] = []
    /// SYNs that displaced an older half-open connection.
    public internal(set) var halfOpenDisplaced = 0
    /// Handshakes the admission refused.
    public internal(set) var refused = 0
    /// Completed and admitted connections, waiting for `admit`'s caller to pick them up.
    public internal(set) var established: [TCPConnection] = []

    init(port: UInt16, maximumHalfOpen: Int) {
        self.port = port
        self.maximumHalfOpen = max(1, maximumHalfOpen)
    }

    /// Takes the oldest established connection (for tests and providers that poll).
    public func takeEstablished() -> TCPConnection? {
        established.isEmpty ? nil : established.removeFirst()
    }
}

/// The stack's counters.
public struct TCPStackCounters: Equatable, Sendable {
    public var segmentsReceived = 0
    /// Failed TCPHeader.decode (checksum, offsets, options).
    public var malformed = 0
    /// Resets sent for segments that reached no connection.
    public var resetsSent = 0
    /// SYNs dropped: the connection table was full.
    public var synsDropped = 0
    public var timeWaitCut = 0
}

public final class TCPStack: IPv4Transport {
    public let output: any IPv4Output
    public var maximumConnections: Int
    public var maximumTimeWait: Int
    public private(set) var counters = TCPStackCounters()
    /// Every connection the stack routes to, sorted by `Key`.
    private(set) var table: [TCPConnection] = []
    private var ports: [TCPPassivePort] = []
    private var nextEphemeral: UInt16 = 49152
    private let secret: UInt64
    /// Called at the end of every `tick` (the sockets layer's idle sweep).
    public var afterTick: ((UInt64) -> Void)?

    public static let defaultMaximumConnections = 2048
    public static let defaultMaximumTimeWait = 256

    public init(output: any IPv4Output, secret: UInt64, maximumConnections: Int = TCPStack.defaultMaximumConnections,
                maximumTimeWait: Int = TCPStack.defaultMaximumTimeWait) {
        self.output = output
        self.secret = secret
        self.maximumConnections = maximumConnections
        self.maximumTimeWait = maximumTimeWait
    }

    public var connectionCount: Int { table.count }

    // MARK: Opening

    /// Listens on `port`; nil when another listener has it.
    public func listen(port: UInt16, maximumHalfOpen: Int) -> TCPPassivePort? {
        guard !ports.contains(where: { $0.port == port }) else { return nil }
        let passive = TCPPassivePort(port: port, maximumHalfOpen: maximumHalfOpen)
        ports.append(passive)
        return passive
    }

    /// Stops listening; half-open connections are dropped (reset).
    public func stopListening(_ passive: TCPPassivePort, now: UInt64) {
        ports.removeAll { $0 === passive }
        for connection in passive.halfOpen { connection.abort(now: now) }
        passive.halfOpen = []
        removeClosed()
    }

    /// Opens a connection to `remote` from the next free ephemeral port (RFC 6335's range);
    /// nil when the table is full or no port is free.
    public func connect(to remote: TCPEndpoint, now: UInt64) -> TCPConnection? {
        guard table.count < maximumConnections else { return nil }
        var tries = 0
        while tries < 16384 {
            tries += 1
            let port = nextEphemeral
            nextEphemeral = nextEphemeral == 65535 ? 49152 : nextEphemeral + 1
            let local = TCPEndpoint(output.localAddress, port)
            guard find(Key(local: local, remote: remote)) == nil,
                  !ports.contains(where: { $0.port == port }) else { continue }
            let connection = TCPConnection(connectFrom: local, to: remote, iss: initialSequence(local, remote, now),
                                           output: output, now: now)
            insert(connection)
            return connection
        }
        return nil
    }

    // MARK: Segments in

    public func receive(from source: IPv4Address, to destination: IPv4Address, payload: UnsafeRawBufferPointer, now: UInt64) {
        counters.segmentsReceived += 1
        let header: TCPHeader
        do throws(TCPError) {
            header = try TCPHeader.decode(payload, source: source, destination: destination)
        } catch {
            counters.malformed += 1
            return
        }
        let segment = TCPSegment(header: header, data: UnsafeRawBufferPointer(rebasing: payload[header.headerLength...]))
        let local = TCPEndpoint(destination, header.destinationPort)
        let remote = TCPEndpoint(source, header.sourcePort)
        if let connection = find(Key(local: local, remote: remote)) {
            let wasHalfOpen = connection.state == .synReceived
            connection.handle(segment, now: now)
            if wasHalfOpen && connection.state != .synReceived { handshakeEnded(connection, now: now) }
            if connection.state == .closed { remove(connection) }
            return
        }
        let flags = header.flags
        if let passive = ports.first(where: { $0.port == header.destinationPort }), destination == output.localAddress {
            // RFC 9293 §3.10.7.2, LISTEN.
            if flags.contains(.rst) { return }
            if flags.contains(.ack) { reset(segment, local: local, remote: remote, now: now); return }
            guard flags.contains(.syn) else { return }
            openPassive(passive, segment, local: local, remote: remote, now: now)
            return
        }
        // CLOSED (§3.10.7.1): everything but an RST is answered with one.
        if !flags.contains(.rst) { reset(segment, local: local, remote: remote, now: now) }
    }

    private func openPassive(_ passive: TCPPassivePort, _ syn: TCPSegment, local: TCPEndpoint, remote: TCPEndpoint,
                             now: UInt64) {
        if passive.halfOpen.count >= passive.maximumHalfOpen {
            let oldest = passive.halfOpen.removeFirst()
            oldest.abort(now: now)
            remove(oldest)
            passive.halfOpenDisplaced += 1
        }
        if table.count >= maximumConnections && !cutTimeWait() {
            counters.synsDropped += 1
            return
        }
        let connection = TCPConnection(accepting: syn, local: local, remote: remote,
                                       iss: initialSequence(local, remote, now), output: output, now: now)
        insert(connection)
        passive.halfOpen.append(connection)
    }

    /// A half-open connection left SYN-RECEIVED: established (ask the port), or gone.
    private func handshakeEnded(_ connection: TCPConnection, now: UInt64) {
        guard let passive = ports.first(where: { port in port.halfOpen.contains { $0 === connection } }) else { return }
        passive.halfOpen.removeAll { $0 === connection }
        if passive.halfOpen.isEmpty { passive.halfOpen = [] }
        guard connection.state != .closed else { return }
        if let admit = passive.admit, !admit(connection, now) {
            passive.refused += 1
            connection.abort(now: now)
            return
        }
        if passive.admit == nil { passive.established.append(connection) }
    }

    /// RFC 9293 §3.10.7.1: RST with SEG.ACK as its sequence number when the segment had
    /// an ACK, else sequence 0 acknowledging the whole segment.
    private func reset(_ segment: TCPSegment, local: TCPEndpoint, remote: TCPEndpoint, now: UInt64) {
        let header: TCPHeader
        if segment.header.flags.contains(.ack) {
            header = TCPHeader(sourcePort: local.port, destinationPort: remote.port,
                               sequenceNumber: segment.header.acknowledgmentNumber, acknowledgmentNumber: 0,
                               flags: [.rst], window: 0)
        } else {
            header = TCPHeader(sourcePort: local.port, destinationPort: remote.port, sequenceNumber: 0,
                               acknowledgmentNumber: (segment.sequence + segment.length).rawValue,
                               flags: [.rst, .ack], window: 0)
        }
        let sent = output.sendIPv4(to: remote.address, protocol: .tcp, payloadLength: TCPHeader.minimumSize, now: now) {
            header.encode(into: $0, source: local.address, destination: remote.address)
        }
        if sent { counters.resetsSent += 1 }
    }

    // MARK: Timers

    public var nextDeadline: UInt64? {
        var earliest: UInt64? = nil
        for connection in table {
            if let deadline = connection.deadline, deadline < earliest ?? .max { earliest = deadline }
        }
        return earliest
    }

    public func tick(now: UInt64) {
        for connection in table where (connection.deadline ?? .max) <= now || connection.unacknowledged > 0 {
            let wasHalfOpen = connection.state == .synReceived
            connection.tick(now: now)
            if wasHalfOpen && connection.state != .synReceived { handshakeEnded(connection, now: now) }
        }
        removeClosed()
        var waiting = table.reduce(0) { $0 + ($1.state == .timeWait ? 1 : 0) }
        while waiting > maximumTimeWait, cutTimeWait() { waiting -= 1 }
        afterTick?(now)
    }

    /// Ends the TIME-WAIT closest to its end; false when none waits.
    @discardableResult
    private func cutTimeWait() -> Bool {
        var oldest: TCPConnection? = nil
        for connection in table where connection.state == .timeWait {
            if (connection.deadline ?? 0) < (oldest?.deadline ?? .max) { oldest = connection }
        }
        guard let oldest else { return false }
        oldest.forgetTimeWait()
        remove(oldest)
        counters.timeWaitCut += 1
        return true
    }

    // MARK: The table

    struct Key: Equatable {
        var local: TCPEndpoint
        var remote: TCPEndpoint

        init(local: TCPEndpoint, remote: TCPEndpoint) {
            self.local = local
            self.remote = remote
        }

        init(_ connection: TCPConnection) { self.init(local: connection.local, remote: connection.remote) }

        func precedes(_ other: Key) -> Bool {
            if local.port != other.local.port { return local.port < other.local.port }
            if remote.port != other.remote.port { return remote.port < other.remote.port }
            if remote.address.rawValue != other.remote.address.rawValue {
                return remote.address.rawValue < other.remote.address.rawValue
            }
            return local.address.rawValue < other.local.address.rawValue
        }
    }

    private func position(_ key: Key) -> Int {
        var low = 0, high = table.count
        while low < high {
            let middle = (low + high) / 2
            if Key(table[middle]).precedes(key) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    func find(_ key: Key) -> TCPConnection? {
        let index = position(key)
        return index < table.count && Key(table[index]) == key ? table[index] : nil
    }

    private func insert(_ connection: TCPConnection) {
        let key = Key(connection)
        let index = position(key)
        if index < table.count && Key(table[index]) == key {
            table[index] = connection
        } else {
            table.insert(connection, at: index)
        }
    }

    /// Stops routing to `connection` (a closed one, or one displaced).
    func remove(_ connection: TCPConnection) {
        let index = position(Key(connection))
        if index < table.count && table[index] === connection { table.remove(at: index) }
        for passive in ports where passive.halfOpen.contains(where: { $0 === connection }) {
            passive.halfOpen.removeAll { $0 === connection }
        }
        if table.isEmpty { table = [] }
    }

    private func removeClosed() {
        guard table.contains(where: { $0.state == .closed }) else { return }
        for passive in ports { passive.halfOpen.removeAll { $0.state == .closed } }
        table.removeAll { $0.state == .closed }
        if table.isEmpty { table = [] }
    }

    /// RFC 6528: ISN = M + F(local, remote, secret), M a 4 µs clock.
    private func initialSequence(_ local: TCPEndpoint, _ remote: TCPEndpoint, _ now: UInt64) -> UInt32 {
        var x = secret ^ UInt64(local.address.rawValue) << 32 ^ UInt64(remote.address.rawValue)
        x = Self.mix(x ^ (UInt64(local.port) << 16 | UInt64(remote.port)))
        x = Self.mix(x ^ secret.rotatedLeft(17))
        return UInt32(truncatingIfNeeded: x) &+ UInt32(truncatingIfNeeded: now / 4000)
    }

    /// A 64-bit finaliser (splitmix64's): every input bit affects every output bit.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension UInt64 {
    fileprivate func rotatedLeft(_ n: UInt64) -> UInt64 { self << n | self >> (64 - n) }
}
