// The vsock device's host side: the hybrid Unix socket (Firecracker docs/vsock.md
// "Host-Initiated Connections": `CONNECT <port>\n`, answered `OK <local-port>\n`), the
// `--forward` TCP listeners, and the bridged sockets' readiness (poll events in, reads and
// writes out). A host-initiated connection is a REQUEST to the guest (virtio 1.2
// §5.10.6.4) from an ephemeral host port (2^30 upwards); the guest's RESPONSE establishes
// it, its RST or silence (`connectTimeout`) closes the host client without a word.
//
// Listeners: each readiness accepts at most `acceptBurst` clients (a flood cannot hold the
// loop); a client beyond `maxConnections` is closed as soon as it is accepted; an accept
// that fails for want of descriptors pauses every listener (AcceptBackoff) rather than
// polling a readable listener in a busy loop.
import Glibc

extension VsockDevice {
    /// Seconds on the monotonic clock (`Posix.monotonicNow()`).
    public static func now() -> Double { Posix.monotonicNow() }

    /// Listens on `udsPath` for hybrid clients.
    public func listenHybrid() throws(SystemError) {
        guard let udsPath else { return }
        hybridListener = try Posix.listenUnix(path: udsPath)
    }

    /// Listens on 127.0.0.1:`forward.hostPort` and bridges each client to `forward.guestPort`.
    public func listenForward(_ forward: VsockForward) throws(SystemError) {
        forwardListeners.append((try Posix.listenTCP(port: forward.hostPort), forward))
    }

    /// Starts a host-initiated connection over the accepted socket `fd`: a REQUEST to
    /// guest port `guestPort`. `initial` is data the client sent early (sent once established).
    func connectToGuest(fd: Int32, guestPort: UInt32, origin: BridgedConnection.Origin,
                        initial: [UInt8] = [], now: Double = VsockDevice.now()) {
        var port = nextLocalPort
        while connections[ConnectionKey(localPort: port, guestPort: guestPort)] != nil {
            port = port == UInt32.max - 1 ? 1 << 30 : port + 1
        }
        nextLocalPort = port == UInt32.max - 1 ? 1 << 30 : port + 1
        let key = ConnectionKey(localPort: port, guestPort: guestPort)
        let connection = BridgedConnection(key: key, fd: fd, origin: origin,
                                           state: .connecting(deadline: now + connectTimeout))
        connection.toGuest = initial
        add(connection)
        BackendLog.debug("\(key): connecting (\(origin))")
        queueControl(connection.header(.request, guestCID: guestCID, stamp: false), key: key)
        fillRX()
    }

    /// Clients accepted per listener readiness, at most.
    static let acceptBurst = 64

    /// Accepts one client of `listener`, or nil when none is waiting, a shortage starts an
    /// accept pause, or this readiness's burst is spent. A client beyond `maxConnections`
    /// is closed at once (it sees the connection end) and the next one is tried.
    func acceptClient(_ listener: Int32, name: String, accepted: inout Int, now: Double) -> Int32? {
        while accepted < VsockDevice.acceptBurst {
            guard let client = Posix.accept(listener) else {
                _ = acceptBackoff.failed(errno, now: now, listener: name)
                return nil
            }
            acceptBackoff.succeeded()
            accepted += 1
            guard liveCount < maxConnections else {
                close(client)
                BackendLog.limited("host-cap", "\(name): client closed: \(maxConnections) connections (--max-connections) are open", now: now)
                continue
            }
            return client
        }
        return nil
    }

    /// The descriptors to poll and for what (no listener while accepts are paused).
    public func pollEntries() -> [pollfd] {
        var entries: [pollfd] = []
        let input = Int16(POLLIN)
        if !acceptBackoff.isPaused(VsockDevice.now()) {
            if hybridListener >= 0 { entries.append(pollfd(fd: hybridListener, events: input, revents: 0)) }
            for listener in forwardListeners { entries.append(pollfd(fd: listener.fd, events: input, revents: 0)) }
        }
        for fd in handshakes.keys { entries.append(pollfd(fd: fd, events: input, revents: 0)) }
        for connection in connections.values {
            var events: Int16 = 0
            if connection.readBudget > 0 { events |= input }
            if connection.pendingToHost > 0 { events |= Int16(POLLOUT) }
            if events != 0 { entries.append(pollfd(fd: connection.fd, events: events, revents: 0)) }
        }
        return entries
    }

    /// Acts on `revents` for `fd` (one of `pollEntries`).
    public func handleEvent(fd: Int32, revents: Int16, now: Double = VsockDevice.now()) {
        var accepted = 0
        if fd == hybridListener {
            while let client = acceptClient(fd, name: "the hybrid socket", accepted: &accepted, now: now) {
                handshakes[client] = ([], now + connectTimeout)
            }
        } else if let listener = forwardListeners.first(where: { $0.fd == fd }) {
            let name = "127.0.0.1:\(listener.forward.hostPort)"
            while let client = acceptClient(fd, name: name, accepted: &accepted, now: now) {
                Posix.setNoDelay(client)
                connectToGuest(fd: client, guestPort: listener.forward.guestPort,
                               origin: .forward(hostPort: listener.forward.hostPort), now: now)
            }
        } else if handshakes[fd] != nil {
            readHandshake(fd)
        } else if let key = keyByFD[fd], let connection = connections[key] {
            connectionEvent(connection, revents: revents)
        }
        fillRX()
    }

    func readHandshake(_ fd: Int32) {
        guard var handshake = handshakes[fd] else { return }
        switch Posix.readSome(fd, limit: HybridHandshake.maximumLine + 1 - handshake.bytes.count) {
        case .wouldBlock: return
        case .endOfStream, .failed:
            handshakes[fd] = nil
            close(fd)
            return
        case .data(let bytes):
            handshake.bytes += bytes
        }
        switch HybridHandshake.parse(handshake.bytes) {
        case .incomplete:
            handshakes[fd] = handshake
        case .invalid(let reason):
            BackendLog.limited("hybrid-invalid", "hybrid client dropped: \(reason)")
            handshakes[fd] = nil
            close(fd)
        case .connect(let port, let rest):
            handshakes[fd] = nil
            connectToGuest(fd: fd, guestPort: port, origin: .hybridClient, initial: rest)
        }
    }

    func connectionEvent(_ connection: BridgedConnection, revents: Int16) {
        if revents & Int16(POLLERR) != 0 {
            BackendLog.debug("\(connection.key): host socket error; resetting")
            closeConnection(connection, sendReset: true)
            return
        }
        if revents & Int16(POLLOUT) != 0 || connection.pendingToHost > 0 {
            guard connection.flushToHost() else {
                BackendLog.debug("\(connection.key): host socket write failed; resetting")
                closeConnection(connection, sendReset: true)
                return
            }
            if connection.guestShutdown == .both && connection.pendingToHost == 0 {
                closeConnection(connection, sendReset: true)
                return
            }
        }
        if revents & Int16(POLLIN | POLLHUP) != 0 {
            let budget = connection.readBudget
            if budget > 0 {
                switch Posix.readSome(connection.fd, limit: budget) {
                case .data(let bytes):
                    connection.toGuest += bytes
                case .endOfStream:
                    connection.hostEOF = true
                case .failed:
                    BackendLog.debug("\(connection.key): host socket read failed; resetting")
                    closeConnection(connection, sendReset: true)
                    return
                case .wouldBlock:
                    break
                }
            }
        }
        afterProgress(connection)
    }

    /// Closes handshakes and host-initiated connections the guest has not answered in time.
    public func expire(now: Double = VsockDevice.now()) {
        acceptBackoff.expire(now)
        for (fd, handshake) in handshakes where handshake.deadline <= now {
            BackendLog.limited("hybrid-timeout", "hybrid client dropped: no CONNECT line in \(Int(connectTimeout)) s")
            handshakes[fd] = nil
            close(fd)
        }
        for connection in Array(connections.values) {
            if case .connecting(let deadline) = connection.state, deadline <= now {
                BackendLog.limited("guest-silent", "\(connection.key): the guest did not answer in \(Int(connectTimeout)) s; closing the client")
                closeConnection(connection, sendReset: true)
            }
        }
        fillRX()
    }

    /// The earliest deadline (an accept pause's end included), for the poll timeout.
    public var nextDeadline: Double? {
        var deadlines = handshakes.values.map(\.deadline)
        if let resume = acceptBackoff.resumeAt { deadlines.append(resume) }
        for connection in connections.values {
            if case .connecting(let deadline) = connection.state { deadlines.append(deadline) }
        }
        return deadlines.min()
    }
}
