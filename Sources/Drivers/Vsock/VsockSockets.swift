// Core's socket API over the vsock driver: the provider, and the routing of every
// received packet to its connection (virtio 1.2 §5.10.6). The connection logic itself
// is `VsockConnection`'s; the driver is reached through `VsockPacketPort`; streams (VsockStream.swift) block threads on events, and
// listeners (VsockListener.swift) admit or refuse each new connection.
//
// Rules: all socket objects live on CPU 0 with the driver (services run their socket
// threads there); `deliver` runs on the driver thread; a blocked read, write, accept or
// connect wakes on its connection's event. When the device fails, every call throws
// `deviceFailed` and waiting threads are woken. A connection a listener refuses is
// answered with RST at once: the host's client sees it closed, never a hang.
//
// The tables are arrays, not dictionaries: a Dictionary per key type costs the image
// about 3 KiB of specialised hashing and storage code (and the hasher itself, 2 KiB).
// `streams` is kept sorted by key and searched by halves, so routing a packet stays
// cheap with a thousand connections; listeners are a handful, searched in order.
import Core
import Drivers
import Wire

public final class VsockSockets: SocketProvider {
    struct Key: Equatable {
        var localPort: UInt32
        var peerCID: UInt64
        var peerPort: UInt32

        /// The order `streams` is sorted in.
        func precedes(_ other: Key) -> Bool {
            if localPort != other.localPort { return localPort < other.localPort }
            if peerPort != other.peerPort { return peerPort < other.peerPort }
            return peerCID < other.peerCID
        }
    }

    /// How long `connect` waits for the peer's RESPONSE.
    static let connectTimeout: UInt64 = 10_000_000_000

    let driver: any VsockPacketPort
    /// One per listening port.
    var listeners: [VsockListener] = []
    /// Every connection, sorted by `key(of:)`.
    var streams: [VsockStream] = []
    var nextEphemeralPort: UInt32 = 49152

    public convenience init<Transport, Memory>(driver: VsockDriver<Transport, Memory>) {
        self.init(port: driver)
    }

    init(port driver: any VsockPacketPort) {
        self.driver = driver
        driver.deliver = { header, payload in self.deliver(header, payload) }
        driver.onFailure = { self.wakeEveryone() }
    }

    var local: VsockAddress { VsockAddress(cid: driver.guestCID, port: 0) }

    public func listen(port: UInt32, limits: ConnectionLimits) throws(SocketError) -> any Listener {
        if driver.failed { throw .deviceFailed }
        guard listener(port) == nil else { throw .addressInUse }
        let listener = VsockListener(port: port, sockets: self, limits: limits)
        listeners.append(listener)
        return listener
    }

    public func connect(cid: UInt64, port: UInt32) throws(SocketError) -> any StreamSocket {
        let stream = try request(cid: cid, port: port)
        let connection = stream.connection
        let deadline = Clock.monotonicNanoseconds() &+ VsockSockets.connectTimeout
        while connection.state == .connecting && !driver.failed && Clock.monotonicNanoseconds() < deadline {
            stream.changed.reset()
            stream.changed.wait(deadline: deadline)
        }
        return try settle(stream)
    }

    /// The first half of `connect`: a stream in `.connecting`, its REQUEST sent from the
    /// next ephemeral port.
    func request(cid: UInt64, port: UInt32) throws(SocketError) -> VsockStream {
        if driver.failed { throw .deviceFailed }
        let localPort = nextEphemeralPort
        nextEphemeralPort = nextEphemeralPort == UInt32.max ? 49152 : nextEphemeralPort + 1
        let (connection, request) = VsockConnection.connect(
            from: VsockAddress(cid: driver.guestCID, port: localPort), to: VsockAddress(cid: cid, port: port),
            maximumPacketPayload: Int(VsockDriverLimits.maximumPayload))
        let stream = VsockStream(connection: connection, sockets: self,
                                 idleTimeout: UInt64(ConnectionLimits.defaultIdleSeconds) * 1_000_000_000)
        insert(stream)
        send([request], payload: nil, of: connection)
        return stream
    }

    /// The second half, once the wait is over: the stream if the peer answered RESPONSE;
    /// `deviceFailed`, `timedOut` (no answer: the stream is closed, so a late RESPONSE is
    /// reset) or `connectionRefused` (the peer's RST).
    func settle(_ stream: VsockStream) throws(SocketError) -> VsockStream {
        if driver.failed { throw .deviceFailed }
        if stream.connection.state == .connecting {
            stream.close()
            throw .timedOut
        }
        guard stream.connection.state == .connected else {
            forget(stream)
            throw .connectionRefused
        }
        return stream
    }

    /// Sends every action of `connection`; RW payloads are ranges of `payload`. Each
    /// header gets the connection's credit as it is when the packet enters the ring: a
    /// sender that waited for a TX buffer must not overtake, with an older fwd_cnt, a
    /// packet another thread stamped later (the peer would see fwd_cnt go backwards).
    func send(_ actions: [VsockAction], payload: UnsafeRawBufferPointer?, of connection: VsockConnection) {
        for action in actions {
            if action.payload.isEmpty {
                _ = driver.send(action.header, restamp: connection)
            } else if let payload {
                _ = driver.send(action.header, payload: UnsafeRawBufferPointer(rebasing: payload[action.payload]),
                                restamp: connection)
            }
        }
    }

    func forget(_ stream: VsockStream) {
        let index = position(of: VsockSockets.key(of: stream))
        if index < streams.count && streams[index] === stream { streams.remove(at: index) }
        stream.listener?.remove(stream)
        // Arrays keep their capacity: release it when the last connection goes, so a
        // server's memory returns to its idle figure.
        if streams.isEmpty { streams = [] }
    }

    /// The listener on `port`, if any.
    func listener(_ port: UInt32) -> VsockListener? {
        listeners.first { $0.port == port }
    }

    /// Stops routing new connections to `listener`.
    func removeListener(_ listener: VsockListener) {
        listeners.removeAll { $0 === listener }
    }

    static func key(of stream: VsockStream) -> Key {
        let c = stream.connection
        return Key(localPort: c.local.port, peerCID: c.peer.cid, peerPort: c.peer.port)
    }

    /// Where `key` is in `streams`, or where it would go.
    func position(of key: Key) -> Int {
        var low = 0
        var high = streams.count
        while low < high {
            let middle = (low + high) / 2
            if VsockSockets.key(of: streams[middle]).precedes(key) { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The connection with `key`, if any.
    func stream(_ key: Key) -> VsockStream? {
        let index = position(of: key)
        return index < streams.count && VsockSockets.key(of: streams[index]) == key ? streams[index] : nil
    }

    /// Adds a connection; one already there with the same key is no longer routed to.
    func insert(_ stream: VsockStream) {
        let key = VsockSockets.key(of: stream)
        let index = position(of: key)
        if index < streams.count && VsockSockets.key(of: streams[index]) == key {
            streams[index] = stream
        } else {
            streams.insert(stream, at: index)
        }
    }

    /// Routes one packet from the device (driver thread).
    func deliver(_ header: VsockHeader, _ payload: UnsafeRawBufferPointer) {
        let key = Key(localPort: header.destination.port, peerCID: header.source.cid, peerPort: header.source.port)
        if let stream = stream(key) {
            stream.lastActivity = Clock.monotonicNanoseconds()
            if header.op == .rw && header.length > 0 { stream.peerHasSpoken = true }
            send(stream.connection.handle(header, payload: payload), payload: nil, of: stream.connection)
            stream.changed.signal()
            return
        }
        if header.op == .request, let listener = listener(header.destination.port), !listener.closed,
           let connection = VsockConnection(request: header, maximumPacketPayload: Int(VsockDriverLimits.maximumPayload)),
           listener.admit(now: Clock.monotonicNanoseconds()) {
            let stream = VsockStream(connection: connection, sockets: self, idleTimeout: listener.limits.idleTimeout)
            insert(stream)
            send(connection.accept(), payload: nil, of: connection)
            listener.add(stream)
            return
        }
        if let reset = VsockHeader.reset(replyingTo: header) { _ = driver.send(reset) }
    }

    /// How often the sweeper looks for connections silent past their idle timeout.
    static let sweepInterval: UInt64 = 500_000_000

    /// The sweeper's loop (a thread of its own on CPU 0, started with the driver): every
    /// half second, closes each connection whose service has waited for its peer longer
    /// than the connection's idle timeout. One pass over the streams replaces a timer per
    /// blocked read; a timeout fires within half a second of its due time.
    public func sweepSilent() {
        var expired: [VsockStream] = []
        while !driver.failed {
            Scheduler.sleep(nanoseconds: VsockSockets.sweepInterval)
            let now = Clock.monotonicNanoseconds()
            for stream in streams where stream.idleTimeout > 0 && stream.isAwaitingPeer
                && now &- stream.lastActivity >= stream.idleTimeout {
                expired.append(stream)
            }
            // Closing sends packets (and may block for a TX buffer): not while iterating.
            for stream in expired { stream.expireForSilence() }
            expired = []
        }
    }

    func wakeEveryone() {
        for stream in streams { stream.changed.signal() }
        for listener in listeners { listener.queue.wake() }
    }
}
