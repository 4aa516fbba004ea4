// The virtio-vsock device (virtio 1.2 §5.10) on the host: queues 0 rx (device → guest),
// 1 tx (guest → device), 2 event; config space { le64 guest_cid } (§5.10.4). Every guest
// stream connection is bridged to a host socket (BridgedConnection):
//   * guest → host (Firecracker docs/vsock.md "Guest-Initiated Connections"): a REQUEST to
//     CID 2 port P connects to the Unix socket `<uds>_P`; RESPONSE if it answers, else RST;
//   * host → guest: a hybrid client's `CONNECT <port>\n` or a `--forward` TCP client makes
//     a REQUEST (VsockDeviceHost.swift); the guest's RESPONSE establishes it.
// This file: the connection table and what each guest packet does (§5.10.6.4-6). The rings
// are in VsockDeviceRings.swift, the host sockets in VsockDeviceHost.swift.
//
// The guest is hostile: a packet from another CID, to another CID, or breaking the credit
// rules (Wire's VsockCredit) is logged (at most a line a second per kind: BackendLog.limited)
// and dropped or answered by an RST; never trusted. Bridged connections and hybrid
// handshakes together are capped at `maxConnections` (`--max-connections`): a guest REQUEST
// beyond it is answered by an RST, a host client beyond it is accepted and closed at once.
import Wire
import Glibc

public final class VsockDevice: VhostUserDevice {
    public static let rxQueue = 0
    public static let txQueue = 1
    public static let eventQueue = 2

    public let guestCID: UInt64
    public let udsPath: String?
    /// How long a host-initiated connection waits for the guest's RESPONSE.
    public var connectTimeout: Double = 5
    /// The default of `maxConnections` (`--max-connections`).
    public static let defaultMaxConnections = 1024
    /// Bridged connections plus hybrid clients still handshaking, at most (each holds a host
    /// descriptor).
    public var maxConnections = VsockDevice.defaultMaxConnections
    /// Accepts paused after a descriptor shortage (shared by every listener: the shortage
    /// is the process's).
    var acceptBackoff = AcceptBackoff()

    var rx: DeviceRing?
    var tx: DeviceRing?
    var connections: [ConnectionKey: BridgedConnection] = [:]
    var keyByFD: [Int32: ConnectionKey] = [:]
    /// Control packets waiting for rx buffers, oldest first; `key` names the connection
    /// whose credit is re-stamped at send time (nil for an RST to a closed one).
    var control: [(header: VsockHeader, key: ConnectionKey?)] = []
    /// Connections with data or a SHUTDOWN waiting for rx buffers, served round-robin.
    var ready: [ConnectionKey] = []
    var nextLocalPort: UInt32 = 1 << 30
    /// Hybrid-socket clients still sending their `CONNECT <port>` line.
    var handshakes: [Int32: (bytes: [UInt8], deadline: Double)] = [:]
    var hybridListener: Int32 = -1
    var forwardListeners: [(fd: Int32, forward: VsockForward)] = []
    static let controlLimit = 4096

    public init(guestCID: UInt64, udsPath: String?) {
        self.guestCID = guestCID
        self.udsPath = udsPath
    }

    deinit {
        for connection in connections.values { close(connection.fd) }
        for fd in handshakes.keys { close(fd) }
        if hybridListener >= 0 { close(hybridListener) }
        for listener in forwardListeners { close(listener.fd) }
    }

    // MARK: VhostUserDevice

    public var queueCount: Int { 3 }
    public var deviceFeatures: UInt64 { 0 }

    public func readConfig(offset: UInt32, size: UInt32) -> [UInt8] {
        var space: [UInt8] = []
        space.appendLE(guestCID)
        return (0..<Int(size)).map { Int(offset) + $0 < space.count ? space[Int(offset) + $0] : 0 }
    }

    public func attach(_ ring: DeviceRing?, index: Int) {
        switch index {
        case VsockDevice.rxQueue: rx = ring; fillRX()
        case VsockDevice.txQueue: tx = ring; processTX()
        default: break // The event queue only carries TRANSPORT_RESET, which is never sent.
        }
    }

    public func kicked(index: Int) {
        switch index {
        case VsockDevice.rxQueue: fillRX()
        case VsockDevice.txQueue: processTX()
        default: break
        }
    }

    public var connectionCount: Int { connections.count }
    /// What counts against `maxConnections`.
    public var liveCount: Int { connections.count + handshakes.count }

    // MARK: guest packets

    /// What one decoded packet from the guest does; `payload` holds its `length` bytes.
    func handleGuestPacket(_ header: VsockHeader, payload: UnsafeRawBufferPointer) {
        guard header.source.cid == guestCID else {
            BackendLog.limited("bad-source-cid", "dropping a packet from CID \(header.source.cid) (the guest is CID \(guestCID))")
            return
        }
        guard header.destination.cid == VsockAddress.hostCID else {
            BackendLog.limited("bad-destination-cid", "dropping a packet to CID \(header.destination.cid): only the host (CID 2) is reachable")
            return
        }
        let key = ConnectionKey(localPort: header.destination.port, guestPort: header.source.port)
        guard let connection = connections[key] else {
            if header.op == .request { connectFromGuest(header, key: key) }
            else if let reset = VsockHeader.reset(replyingTo: header) { queueControl(reset, key: nil) }
            return
        }
        if header.op == .rst {
            BackendLog.debug("\(key): reset by the guest")
            closeConnection(connection, sendReset: false)
            return
        }
        if let lie = connection.credit.applyPeer(bufAlloc: header.bufAlloc, fwdCnt: header.fwdCnt) {
            BackendLog.limited("bad-credit", "\(key): guest credit is inconsistent (\(lie)); resetting")
            closeConnection(connection, sendReset: true)
            return
        }
        connection.creditRequested = false
        switch header.op {
        case .request, .rst:
            BackendLog.limited("bad-request", "\(key): REQUEST for an open connection; resetting")
            closeConnection(connection, sendReset: true)
            return
        case .response:
            guard case .connecting = connection.state else {
                BackendLog.limited("bad-response", "\(key): RESPONSE on an established connection; resetting")
                closeConnection(connection, sendReset: true)
                return
            }
            connection.state = .established
            BackendLog.debug("\(key): established")
            if connection.origin == .hybridClient {
                connection.queuePreamble(HybridHandshake.okLine(localPort: key.localPort))
            }
        case .shutdown:
            connection.guestShutdown.formUnion(header.shutdown)
        case .rw:
            guard connection.state == .established, !connection.guestShutdown.contains(.send) else {
                BackendLog.limited("bad-data", "\(key): data before RESPONSE or after SHUTDOWN; resetting")
                closeConnection(connection, sendReset: true)
                return
            }
            guard connection.credit.recordReceived(header.length) else {
                BackendLog.limited("over-credit", "\(key): guest sent \(header.length) bytes beyond its credit; resetting")
                closeConnection(connection, sendReset: true)
                return
            }
            connection.queueToHost(UnsafeRawBufferPointer(rebasing: payload[0..<Int(header.length)]))
        case .creditUpdate:
            break
        case .creditRequest:
            queueCreditUpdate(connection)
        }
        guard connection.flushToHost() else {
            BackendLog.debug("\(key): host socket write failed; resetting")
            closeConnection(connection, sendReset: true)
            return
        }
        if connection.guestShutdown == .both && connection.pendingToHost == 0 {
            // §5.10.6.5: a clean disconnect is answered by an RST once our side is done.
            BackendLog.debug("\(key): shut down by the guest")
            closeConnection(connection, sendReset: true)
            return
        }
        afterProgress(connection)
    }

    /// A REQUEST for a connection we do not have: connect to `<uds>_<port>`.
    func connectFromGuest(_ header: VsockHeader, key: ConnectionKey) {
        guard let udsPath else {
            BackendLog.debug("guest connect to port \(key.localPort) refused: no --uds socket")
            if let reset = VsockHeader.reset(replyingTo: header) { queueControl(reset, key: nil) }
            return
        }
        guard liveCount < maxConnections else {
            BackendLog.limited("guest-cap", "guest connect to port \(key.localPort) refused: \(maxConnections) connections (--max-connections) are open")
            if let reset = VsockHeader.reset(replyingTo: header) { queueControl(reset, key: nil) }
            return
        }
        let path = "\(udsPath)_\(key.localPort)"
        guard let fd = Posix.connectUnix(path: path) else {
            BackendLog.debug("guest connect to port \(key.localPort) refused: \(path): \(String(cString: strerror(errno)))")
            if let reset = VsockHeader.reset(replyingTo: header) { queueControl(reset, key: nil) }
            return
        }
        let connection = BridgedConnection(key: key, fd: fd, origin: .guest, state: .established)
        guard connection.credit.applyPeer(bufAlloc: header.bufAlloc, fwdCnt: header.fwdCnt) == nil else {
            close(fd)
            if let reset = VsockHeader.reset(replyingTo: header) { queueControl(reset, key: nil) }
            return
        }
        add(connection)
        BackendLog.debug("\(key): guest connected to \(path)")
        queueControl(connection.header(.response, guestCID: guestCID, stamp: false), key: key)
    }

    func add(_ connection: BridgedConnection) {
        connections[connection.key] = connection
        keyByFD[connection.fd] = connection.key
    }

    /// Closes the host socket and forgets the connection, dropping its queued packets;
    /// with `sendReset`, tells the guest (unless it never heard of the connection).
    func closeConnection(_ connection: BridgedConnection, sendReset: Bool) {
        let key = connection.key
        let requestUnsent = control.contains { $0.key == key && $0.header.op == .request }
        control.removeAll { $0.key == key }
        ready.removeAll { $0 == key }
        connections[key] = nil
        keyByFD[connection.fd] = nil
        close(connection.fd)
        if sendReset && !requestUnsent {
            queueControl(VsockHeader(source: VsockAddress(cid: VsockAddress.hostCID, port: key.localPort),
                                     destination: VsockAddress(cid: guestCID, port: key.guestPort), op: .rst), key: nil)
        }
    }

    func queueControl(_ header: VsockHeader, key: ConnectionKey?) {
        guard control.count < VsockDevice.controlLimit else {
            BackendLog.limited("rx-backlog", "the guest is not taking rx packets; dropping a \(header.op) for port \(header.destination.port)")
            return
        }
        control.append((header, key))
    }

    func queueCreditUpdate(_ connection: BridgedConnection) {
        guard !connection.creditUpdateQueued else { return }
        connection.creditUpdateQueued = true
        queueControl(connection.header(.creditUpdate, guestCID: guestCID, stamp: false), key: connection.key)
    }

    /// After anything changed a connection: credit updates, and rx work to schedule.
    func afterProgress(_ connection: BridgedConnection) {
        if connection.credit.wantsCreditUpdate { queueCreditUpdate(connection) }
        if connection.hasGuestWork && !ready.contains(connection.key) { ready.append(connection.key) }
    }
}
