// Core's socket API over Toro's TCP: the provider, its listeners and its streams. Services
// written against SocketProvider run unchanged on it (legacy) and on vsock (microvm).
//
// Addresses: `connect(cid:port:)` takes vsock's (cid, port). CID 2, vsock's "host", is the
// host here too: the gateway (under QEMU's user networking 10.0.2.2, which slirp maps to
// the host's loopback). Any other CID from 3 to 0xFFFF_FFFF is an IPv4 address written as
// one number (10.0.3.1 is 0x0A000301). Ports are 1-65535.
//
// Rules: as for vsock, every socket object lives on CPU 0 with the network thread, which
// runs the stack (NetInterface → TCPStack → TCPConnection) and, through each connection's
// `onChange`, wakes the service threads blocked on it. Every wait is bounded: a read or a
// write waiting for its peer gives up after the listener's idle timeout (the sweep after
// each tick closes such connections with an RST), and `connect` after 10 s. A connection
// a listener refuses (ListenerAdmission: limit, backlog, memory) is answered with RST.
import Core
import Wire

public final class TCPSockets: SocketProvider {
    public let stack: TCPStack
    /// The address CID 2 stands for.
    public let host: IPv4Address
    var listeners: [TCPListener] = []
    /// Every stream a service holds (for the idle sweep and a device failure).
    var streams: [TCPStream] = []
    public private(set) var failed = false
    private var lastSweep: UInt64 = 0

    /// How long `connect` waits for the handshake.
    static let connectTimeout: UInt64 = 10_000_000_000
    /// How often the idle sweep runs.
    static let sweepInterval: UInt64 = 500_000_000

    public init(stack: TCPStack, host: IPv4Address) {
        self.stack = stack
        self.host = host
        stack.afterTick = { [unowned(unsafe) self] now in self.sweep(now: now) }
    }

    public func listen(port: UInt32, limits: ConnectionLimits) throws(SocketError) -> any Listener {
        if failed { throw .deviceFailed }
        guard port >= 1 && port <= 65535 else { throw .invalidArgument }
        guard let passive = stack.listen(port: UInt16(port), maximumHalfOpen: limits.backlog) else { throw .addressInUse }
        let listener = TCPListener(passive: passive, sockets: self, limits: limits)
        passive.admit = { [unowned(unsafe) listener] connection, now in listener.admit(connection, now: now) }
        listeners.append(listener)
        return listener
    }

    public func connect(cid: UInt64, port: UInt32) throws(SocketError) -> any StreamSocket {
        if failed { throw .deviceFailed }
        guard port >= 1 && port <= 65535, cid >= 2 && cid <= 0xFFFF_FFFF else { throw .invalidArgument }
        let address = cid == 2 ? host : IPv4Address(rawValue: UInt32(cid))
        let now = Clock.monotonicNanoseconds()
        guard let connection = stack.connect(to: TCPEndpoint(address, UInt16(port)), now: now) else { throw .noSpace }
        let stream = TCPStream(connection: connection, sockets: self,
                               idleTimeout: UInt64(ConnectionLimits.defaultIdleSeconds) * 1_000_000_000)
        let deadline = now &+ TCPSockets.connectTimeout
        while connection.state == .synSent && !failed && Clock.monotonicNanoseconds() < deadline {
            stream.changed.reset()
            stream.changed.wait(deadline: deadline)
        }
        if failed { stream.abandon(); throw .deviceFailed }
        switch connection.state {
        case .synSent:
            stream.abandon()
            throw .timedOut
        case .closed:
            stream.abandon()
            throw connection.closeReason == .timedOut ? .timedOut : .connectionRefused
        default:
            streams.append(stream)
            return stream
        }
    }

    /// The NIC failed: every call from now on throws `.deviceFailed`, and waiting threads
    /// wake to see it.
    public func deviceFailed() {
        failed = true
        for stream in streams { stream.changed.signal() }
        for listener in listeners { listener.queue.wake() }
    }

    func forget(_ stream: TCPStream) {
        streams.removeAll { $0 === stream }
        if streams.isEmpty { streams = [] }
    }

    func removeListener(_ listener: TCPListener) {
        listeners.removeAll { $0 === listener }
    }

    /// After every tick, twice a second: closes each stream whose service has waited for
    /// its peer longer than the idle timeout.
    func sweep(now: UInt64) {
        guard now &- lastSweep >= TCPSockets.sweepInterval else { return }
        lastSweep = now
        var expired: [TCPStream] = []
        for stream in streams where stream.idleTimeout > 0 && stream.isAwaitingPeer
            && now &- stream.lastActivity >= stream.idleTimeout {
            expired.append(stream)
        }
        for stream in expired { stream.expireForSilence(now: now) }
    }
}

/// A listening port: the connections admitted and not yet accepted.
final class TCPListener: Listener {
    let passive: TCPPassivePort
    unowned(unsafe) let sockets: TCPSockets
    var admission: ListenerAdmission<TCPStream>
    let queue = AcceptQueue<TCPStream>()
    var closed: Bool { queue.closed }

    init(passive: TCPPassivePort, sockets: TCPSockets, limits: ConnectionLimits) {
        self.passive = passive
        self.sockets = sockets
        admission = ListenerAdmission(port: UInt32(passive.port), limits: limits)
    }

    var limits: ConnectionLimits { admission.limits }

    func accept() throws(SocketError) -> any StreamSocket {
        try queue.next { sockets.failed }
    }

    func close() {
        guard !closed else { return }
        for stream in queue.close() { stream.close() }
        sockets.stack.stopListening(passive, now: Clock.monotonicNanoseconds())
        sockets.removeListener(self)
    }

    /// A handshake on this port completed (network thread): admit it as a stream, or not
    /// (the stack then resets it).
    func admit(_ connection: TCPConnection, now: UInt64) -> Bool {
        guard !closed else { return false }
        switch admission.decide(pending: queue.pending.count, now: now) {
        case .refuse:
            return false
        case .evict(let victim):
            victim.evicted = true
            if queue.remove(victim) {
                victim.close()
                victim.connection.abort(now: now)
            } else {
                victim.closeForSilence(now: now)
            }
        case .admit:
            break
        }
        let stream = TCPStream(connection: connection, sockets: sockets, idleTimeout: limits.idleTimeout)
        stream.listener = self
        admission.table.add(stream)
        sockets.streams.append(stream)
        queue.push(stream)
        return true
    }

    /// The service closed `stream`.
    func remove(_ stream: TCPStream) {
        if stream.evicted { admission.table.released() } else { admission.table.remove(stream) }
        stream.listener = nil
    }
}

/// One connection as a service sees it.
final class TCPStream: StreamSocket, IdleTracked {
    let connection: TCPConnection
    unowned(unsafe) let sockets: TCPSockets
    var listener: TCPListener?
    let changed = Event()
    var closedBySelf = false
    var closedForSilence = false
    var evicted = false
    /// When the service last moved bytes.
    var serviceActivity: UInt64
    let idleTimeout: UInt64
    var awaitingPeer = false

    init(connection: TCPConnection, sockets: TCPSockets, idleTimeout: UInt64) {
        self.connection = connection
        self.sockets = sockets
        self.idleTimeout = idleTimeout
        serviceActivity = Clock.monotonicNanoseconds()
        connection.onChange = { [unowned(unsafe) self] in self.changed.signal() }
    }

    var lastActivity: UInt64 { max(serviceActivity, connection.lastReceived) }
    var isAwaitingPeer: Bool { awaitingPeer && connection.readable == 0 }
    var peerHasSpoken: Bool { connection.dataReceived }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        while true {
            if closedBySelf { throw .closed }
            if connection.readable > 0 {
                let now = Clock.monotonicNanoseconds()
                let count = connection.read(into: buffer, now: now)
                serviceActivity = now
                return count
            }
            if closedForSilence { throw .timedOut }
            if connection.isReceiveFinished {
                if let failure = brokenError { throw failure }
                return 0
            }
            if sockets.failed { throw .deviceFailed }
            changed.reset()
            try waitForPeer()
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        while true {
            if closedBySelf { throw .closed }
            if closedForSilence { throw .timedOut }
            if sockets.failed { throw .deviceFailed }
            guard connection.isSendOpen else { throw brokenError ?? .closed }
            if bytes.isEmpty { return 0 }
            let now = Clock.monotonicNanoseconds()
            let accepted = connection.write(bytes, now: now)
            if accepted > 0 {
                serviceActivity = now
                return accepted
            }
            changed.reset()
            try waitForPeer()
        }
    }

    func close() {
        guard !closedBySelf else { return }
        closedBySelf = true
        connection.onChange = nil
        connection.close(now: Clock.monotonicNanoseconds())
        listener?.remove(self)
        sockets.forget(self)
    }

    /// Forgets a stream whose `connect` failed (nobody holds it).
    func abandon() {
        closedBySelf = true
        connection.onChange = nil
        connection.abort(now: Clock.monotonicNanoseconds())
    }

    private func waitForPeer() throws(SocketError) {
        if idleTimeout > 0 && Clock.monotonicNanoseconds() &- lastActivity >= idleTimeout {
            expireForSilence(now: Clock.monotonicNanoseconds())
            throw .timedOut
        }
        awaitingPeer = true
        changed.wait()
        awaitingPeer = false
    }

    func expireForSilence(now: UInt64) {
        guard !closedForSilence, !closedBySelf else { return }
        closeForSilence(now: now)
        listener?.admission.noteIdleClose(now: now)
    }

    /// Resets the connection for silence (timeout or eviction); the service's next call
    /// throws `.timedOut`, and its `close` forgets the stream.
    func closeForSilence(now: UInt64) {
        guard !closedForSilence, !closedBySelf else { return }
        closedForSilence = true
        connection.abort(now: now)
        changed.signal()
    }

    /// What a broken connection's calls throw (nil: it ended in order).
    var brokenError: SocketError? {
        switch connection.closeReason {
        case .reset, .aborted, .refused: return .connectionReset
        case .timedOut: return .timedOut
        case .none, .finished: return nil
        }
    }
}
