// One vsock stream connection bridged to a host socket (a Unix or TCP stream), with both
// directions' buffers and the credit counters (virtio 1.2 §5.10.6.3, Wire's VsockCredit).
//
// Guest → host: RW payloads are queued in `toHost` and written to the socket as it takes
// them; `fwd_cnt` counts bytes written. We advertise `bufferSize` as buf_alloc, so `toHost`
// never holds more than that (the credit rules refuse a peer that sends beyond it).
// Host → guest: bytes are read from the socket into `toGuest` only while the guest's free
// credit (`peerFree`) exceeds what is already waiting, so nothing is ever sent beyond it.
// Shutdown (§5.10.6.5): host EOF becomes SHUTDOWN(SEND) once `toGuest` is empty; guest
// SHUTDOWN(SEND) becomes shutdown(SHUT_WR) once `toHost` is written; SHUTDOWN with both
// flags is answered by an RST and the socket is closed.
import Wire
import Glibc

/// (host-side port, guest port): what identifies a connection between CID 2 and the guest.
public struct ConnectionKey: Hashable, Sendable, CustomStringConvertible {
    public var localPort: UInt32
    public var guestPort: UInt32
    public init(localPort: UInt32, guestPort: UInt32) {
        self.localPort = localPort
        self.guestPort = guestPort
    }
    public var description: String { "host:\(localPort)<->guest:\(guestPort)" }
}

final class BridgedConnection {
    enum Origin: Equatable {
        /// A client of the hybrid socket: answered `OK <port>\n` when the guest accepts.
        case hybridClient
        /// A TCP client of a `--forward` listener.
        case forward(hostPort: UInt16)
        /// The guest connected to `<uds>_<port>`.
        case guest
    }

    enum State: Equatable {
        /// REQUEST sent to the guest; RESPONSE awaited until the deadline (seconds, monotonic).
        case connecting(deadline: Double)
        case established
    }

    /// buf_alloc we advertise: bytes of guest data we buffer for the host socket.
    static let bufferSize: UInt32 = 256 * 1024
    /// Bytes read from the host socket and waiting for guest rx buffers.
    static let toGuestLimit = 64 * 1024

    let key: ConnectionKey
    let fd: Int32
    let origin: Origin
    var state: State
    var credit = VsockCredit(bufAlloc: BridgedConnection.bufferSize)

    /// Bytes for the host socket; the first `preamble` of them are ours (`OK <port>\n`),
    /// the rest the guest's (counted by fwd_cnt when written).
    var toHost: [UInt8] = []
    var toHostStart = 0
    var preamble = 0
    var toGuest: [UInt8] = []
    var toGuestStart = 0

    /// The host side sent EOF: no more reads.
    var hostEOF = false
    /// SHUTDOWN(SEND) went to the guest.
    var shutdownSent = false
    /// The guest's SHUTDOWN flags so far (they only accumulate).
    var guestShutdown: VsockShutdown = []
    /// shutdown(SHUT_WR) done on the host socket.
    var hostWriteClosed = false
    /// A CREDIT_UPDATE is queued for this connection.
    var creditUpdateQueued = false
    /// Asked the guest for credit (CREDIT_REQUEST) and not yet heard back.
    var creditRequested = false

    init(key: ConnectionKey, fd: Int32, origin: Origin, state: State) {
        self.key = key
        self.fd = fd
        self.origin = origin
        self.state = state
    }

    var pendingToHost: Int { toHost.count - toHostStart }
    var pendingToGuest: Int { toGuest.count - toGuestStart }

    /// How many bytes may be read from the host socket now.
    var readBudget: Int {
        guard state == .established, !hostEOF, !guestShutdown.contains(.receive) else { return 0 }
        let credit = Int(self.credit.peerFree) - pendingToGuest
        return max(0, min(credit, BridgedConnection.toGuestLimit - pendingToGuest))
    }

    /// Whether an rx packet is due: data the guest has credit for, or the SHUTDOWN that
    /// follows the host's EOF once all data went out.
    var hasGuestWork: Bool {
        guard state == .established else { return false }
        if pendingToGuest > 0 { return credit.peerFree > 0 }
        return hostEOF && !shutdownSent
    }

    /// Queues `bytes` for the host socket that are not guest data.
    func queuePreamble(_ bytes: [UInt8]) {
        toHost.insert(contentsOf: bytes, at: toHostStart)
        preamble += bytes.count
    }

    /// Queues guest payload for the host (the caller has counted it with `recordReceived`).
    func queueToHost(_ bytes: UnsafeRawBufferPointer) {
        toHost.append(contentsOf: bytes)
    }

    /// Writes what the socket takes. Returns false on a hard error (the connection is dead).
    func flushToHost() -> Bool {
        while pendingToHost > 0 {
            guard let n = Posix.writeSome(fd, toHost[toHostStart...]) else { return false }
            if n == 0 { break }
            toHostStart += n
            let ours = min(n, preamble)
            preamble -= ours
            if n > ours { credit.recordConsumed(UInt32(n - ours)) }
        }
        if toHostStart == toHost.count {
            toHost.removeAll(keepingCapacity: true)
            toHostStart = 0
        } else if toHostStart > 64 * 1024 {
            toHost.removeFirst(toHostStart)
            toHostStart = 0
        }
        if pendingToHost == 0, guestShutdown.contains(.send), !hostWriteClosed {
            hostWriteClosed = true
            shutdown(fd, Int32(SHUT_WR))
        }
        return true
    }

    /// Takes up to `limit` bytes of `toGuest` for an RW packet.
    func takeToGuest(_ limit: Int) -> ArraySlice<UInt8> {
        let count = min(limit, pendingToGuest)
        let slice = toGuest[toGuestStart ..< toGuestStart + count]
        toGuestStart += count
        if toGuestStart == toGuest.count {
            toGuest.removeAll(keepingCapacity: true)
            toGuestStart = 0
        }
        return slice
    }

    /// A header from this connection's host side to the guest, stamped with our credit
    /// (`stamp: false` for a queued packet: it is stamped when it goes into an rx buffer,
    /// because only then does the guest learn our fwd_cnt).
    func header(_ op: VsockOp, guestCID: UInt64, length: UInt32 = 0, flags: UInt32 = 0,
                stamp: Bool = true) -> VsockHeader {
        var header = VsockHeader(source: VsockAddress(cid: VsockAddress.hostCID, port: key.localPort),
                                 destination: VsockAddress(cid: guestCID, port: key.guestPort),
                                 op: op, length: length, flags: flags)
        if stamp { credit.stamp(&header) }
        return header
    }
}
