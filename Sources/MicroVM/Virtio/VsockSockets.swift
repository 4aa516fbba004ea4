// Core's socket API over the vsock driver: listeners, streams, and the routing of every
// received packet to its connection (virtio 1.2 §5.10.6). The connection logic itself
// is Core's `VsockConnection`; this file blocks threads on events and moves packets.
//
// Rules: all socket objects live on CPU 0 with the driver (services run their socket
// threads there); `deliver` runs on the driver thread; a blocked read, write, accept or
// connect wakes on its connection's event. When the device fails, every call throws
// `deviceFailed` and waiting threads are woken.
import Core

final class VsockStream: StreamSocket {
    let connection: VsockConnection
    unowned(unsafe) let sockets: VsockSockets
    let changed = Event()
    var closedBySelf = false

    init(connection: VsockConnection, sockets: VsockSockets) {
        self.connection = connection
        self.sockets = sockets
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        while true {
            if closedBySelf { throw .closed }
            if connection.readable > 0 {
                let (count, actions) = connection.read(into: buffer)
                sockets.send(actions, payload: nil)
                return count
            }
            if connection.isReceiveFinished {
                if connection.closeReason == .reset || isViolation { throw .connectionReset }
                return 0
            }
            if sockets.driver.failed { throw .deviceFailed }
            changed.reset()
            changed.wait()
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        while true {
            if closedBySelf { throw .closed }
            if sockets.driver.failed { throw .deviceFailed }
            guard connection.isSendOpen else {
                throw connection.closeReason == .reset || isViolation ? .connectionReset : .closed
            }
            let (accepted, actions) = connection.write(bytes)
            sockets.send(actions, payload: bytes)
            if accepted > 0 || bytes.isEmpty { return accepted }
            changed.reset()
            changed.wait()
        }
    }

    func close() {
        guard !closedBySelf else { return }
        closedBySelf = true
        sockets.send(connection.close(), payload: nil)
        sockets.forget(self)
    }

    var isViolation: Bool {
        if case .violation = connection.closeReason { return true }
        return false
    }
}

final class VsockListener: Listener {
    let port: UInt32
    unowned(unsafe) let sockets: VsockSockets
    var pending: [VsockStream] = []
    let arrived = Event()
    var closed = false

    init(port: UInt32, sockets: VsockSockets) {
        self.port = port
        self.sockets = sockets
    }

    func accept() throws(SocketError) -> any StreamSocket {
        while true {
            if closed { throw .closed }
            if sockets.driver.failed { throw .deviceFailed }
            if !pending.isEmpty {
                let stream = pending.removeFirst()
                if pending.isEmpty { pending = [] }
                return stream
            }
            arrived.reset()
            arrived.wait()
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        for stream in pending { stream.close() }
        pending.removeAll()
        sockets.listeners[port] = nil
        arrived.signal()
    }
}

final class VsockSockets: SocketProvider {
    struct Key: Hashable {
        var localPort: UInt32
        var peerCID: UInt64
        var peerPort: UInt32
    }

    let driver: VsockDriver
    var listeners: [UInt32: VsockListener] = [:]
    var streams: [Key: VsockStream] = [:]
    var nextEphemeralPort: UInt32 = 49152

    init(driver: VsockDriver) {
        self.driver = driver
        driver.deliver = { header, payload in self.deliver(header, payload) }
        driver.onFailure = { self.wakeEveryone() }
    }

    var local: VsockAddress { VsockAddress(cid: driver.guestCID, port: 0) }

    func listen(port: UInt32) throws(SocketError) -> any Listener {
        if driver.failed { throw .deviceFailed }
        guard listeners[port] == nil else { throw .addressInUse }
        let listener = VsockListener(port: port, sockets: self)
        listeners[port] = listener
        return listener
    }

    func connect(cid: UInt64, port: UInt32) throws(SocketError) -> any StreamSocket {
        if driver.failed { throw .deviceFailed }
        let localPort = nextEphemeralPort
        nextEphemeralPort = nextEphemeralPort == UInt32.max ? 49152 : nextEphemeralPort + 1
        let (connection, request) = VsockConnection.connect(
            from: VsockAddress(cid: driver.guestCID, port: localPort), to: VsockAddress(cid: cid, port: port),
            maximumPacketPayload: Int(VsockDriver.maximumPayload))
        let stream = VsockStream(connection: connection, sockets: self)
        streams[Key(localPort: localPort, peerCID: cid, peerPort: port)] = stream
        send([request], payload: nil)
        while connection.state == .connecting && !driver.failed {
            stream.changed.reset()
            stream.changed.wait()
        }
        if driver.failed { throw .deviceFailed }
        guard connection.state == .connected else {
            forget(stream)
            throw .connectionRefused
        }
        return stream
    }

    /// Sends every action; RW payloads are ranges of `payload`.
    func send(_ actions: [VsockAction], payload: UnsafeRawBufferPointer?) {
        for action in actions {
            if action.payload.isEmpty {
                _ = driver.send(action.header)
            } else if let payload {
                _ = driver.send(action.header, payload: UnsafeRawBufferPointer(rebasing: payload[action.payload]))
            }
        }
    }

    func forget(_ stream: VsockStream) {
        let c = stream.connection
        streams[Key(localPort: c.local.port, peerCID: c.peer.cid, peerPort: c.peer.port)] = nil
        // Dictionaries keep their capacity: release it when the last connection goes, so
        // a server's memory returns to its idle figure.
        if streams.isEmpty { streams = [:] }
    }

    /// Routes one packet from the device (driver thread).
    func deliver(_ header: VsockHeader, _ payload: UnsafeRawBufferPointer) {
        let key = Key(localPort: header.destination.port, peerCID: header.source.cid, peerPort: header.source.port)
        if let stream = streams[key] {
            send(stream.connection.handle(header, payload: payload), payload: nil)
            stream.changed.signal()
            return
        }
        if header.op == .request, let listener = listeners[header.destination.port], !listener.closed,
           let connection = VsockConnection(request: header, maximumPacketPayload: Int(VsockDriver.maximumPayload)) {
            let stream = VsockStream(connection: connection, sockets: self)
            streams[key] = stream
            send(connection.accept(), payload: nil)
            listener.pending.append(stream)
            listener.arrived.signal()
            return
        }
        if let reset = VsockHeader.reset(replyingTo: header) { _ = driver.send(reset) }
    }

    func wakeEveryone() {
        for (_, stream) in streams { stream.changed.signal() }
        for (_, listener) in listeners { listener.arrived.signal() }
    }
}
