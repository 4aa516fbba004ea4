// One virtio-vsock stream connection, seen from one side: a state machine with no I/O
// (virtio 1.2 §5.10.6.3 "Buffer Space Management", §5.10.6.5 "Stream Sockets").
//
// Protocol primer
// ---------------
// A connection is the tuple (src_cid, src_port, dst_cid, dst_port) (§5.10.6.2).
//
//   handshake   A ──REQUEST──▶ B      B listens on dst_port: B ──RESPONSE──▶ A, established.
//                                     Nobody listens (or no resources): B ──RST──▶ A.
//               There is no third leg: the RESPONSE's sender is connected once it sends it.
//   data        ──RW(len, payload)──▶ stream bytes, in order, no boundaries.
//   credit      Every header carries the sender's buf_alloc (receive buffer size) and fwd_cnt
//               (bytes its service consumed so far, free-running u32). The sender of data
//               keeps tx_cnt and may only send
//                   peer_free = peer_buf_alloc - (tx_cnt - peer_fwd_cnt)
//               more bytes (VsockCredit.swift holds the arithmetic and the rules for a peer
//               that lies). CREDIT_REQUEST asks for a CREDIT_UPDATE (a header that carries
//               only the pair); an update may also be sent unasked whenever space frees up.
//   shutdown    SHUTDOWN flags: bit 0 "I will receive no more", bit 1 "I will send no more";
//               sticky. Clean disconnect: SHUTDOWN with both bits, answered by RST.
//   reset       RST aborts a connect or tears a connection down at once. Never answered.
//
// States here: `.responding` (made from a peer's REQUEST, waiting for the service to
// `accept` or `close`), `.connecting` (our REQUEST is out), `.connected`, `.closing` (a
// SHUTDOWN went one way or the other; some direction is finished), `.closed` (RST sent or
// received; bytes already buffered stay readable).
//
// Everything unexpected is answered with an RST and closes the connection: an op the state
// does not allow, RW beyond the space we advertised (never buffered), a lying fwd_cnt, data
// after the peer said it would send no more, a payload whose size is not `len`.
//
// `close()` sends SHUTDOWN(both) then RST at once rather than waiting for the peer's RST:
// this machine has no timers, everything `write` accepted was already handed out in order
// before the SHUTDOWN, and the spec lets either side end with an RST (§5.10.6.5). Linux
// peers read what was buffered, then see end-of-stream.
//
// Rules for callers (the guest driver):
//   * Route by tuple: a packet no connection owns gets `VsockHeader.reset(replyingTo:)`; a
//     REQUEST on a listening port makes `VsockConnection(request:)` (nil: answer with RST).
//   * Send every returned action, in order: its header, then for RW `payload` (a range of
//     the buffer given to `write`). Actions carry our current buf_alloc/fwd_cnt already.
//   * One thread at a time per connection (the driver's lock); the object never blocks.
//   * Drop the connection once `.closed` and drained; `handle` keeps answering RSTs till then.
import Core
import Drivers
import Wire

/// Where a connection is in its life (see the primer above).
public enum VsockState: Equatable, Sendable {
    /// Made from the peer's REQUEST; `accept()` sends RESPONSE, `close()` refuses with RST.
    case responding
    /// Our REQUEST is out; waiting for RESPONSE (or RST: refused).
    case connecting
    /// Established; data flows both ways under credit.
    case connected
    /// Established, but a SHUTDOWN has been sent or received: some direction is finished.
    case closing
    /// RST sent or received. Buffered bytes remain readable.
    case closed
}

/// How the peer broke the protocol (we answered with an RST).
public enum VsockViolation: Equatable, Sendable {
    /// An op this state does not allow (REQUEST while connected, RW while connecting, ...).
    case unexpectedOperation(VsockOp)
    /// RW payload beyond the free space we advertised.
    case receiveOverflow
    /// fwd_cnt went backwards or past what we sent.
    case credit(VsockCreditLie)
    /// RW after the peer's SHUTDOWN(SEND) or our SHUTDOWN(RECEIVE).
    case dataAfterShutdown
    /// The payload given to `handle` is not `len` bytes long.
    case lengthMismatch
}

/// Why a connection reached `.closed`.
public enum VsockCloseReason: Equatable, Sendable {
    /// The peer answered our REQUEST with RST: nobody listens there.
    case refused
    /// The peer sent RST on a connection past the handshake, or the transport was reset.
    case reset
    /// The peer shut down both directions and we answered RST (clean disconnect).
    case peerClosed
    /// Our own `close()` (or a `shutdown` of both directions).
    case localClose
    /// The peer broke the protocol and we sent RST.
    case violation(VsockViolation)
    /// The receive buffer could not grow (memory short); we sent RST.
    case noMemory
}

/// A packet to send: `header`, then (RW only) the bytes `payload` of the buffer that was
/// given to `write`. Other packets have an empty `payload`.
public struct VsockAction: Equatable, Sendable {
    public var header: VsockHeader
    public var payload: Range<Int>
    public init(header: VsockHeader, payload: Range<Int> = 0 ..< 0) { self.header = header; self.payload = payload }
}

public final class VsockConnection {
    /// Receive buffer (our buf_alloc) unless the caller chooses: 64 KiB.
    public static let defaultReceiveCapacity = 64 * 1024
    /// Largest RW payload `write` puts in one packet unless the caller chooses: 64 KiB,
    /// Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE.
    public static let defaultMaximumPacketPayload = 64 * 1024

    public let local: VsockAddress
    public let peer: VsockAddress
    public private(set) var state: VsockState
    /// Set when `state` becomes `.closed`.
    public private(set) var closeReason: VsockCloseReason?
    public private(set) var credit: VsockCredit
    /// Sticky SHUTDOWN flags the peer sent.
    public private(set) var peerShutdown: VsockShutdown = []
    /// Sticky SHUTDOWN flags we sent.
    public private(set) var localShutdown: VsockShutdown = []
    public let maximumPacketPayload: Int
    private var ring: VsockReceiveRing
    /// A CREDIT_REQUEST is out and no header has answered it yet (send at most one).
    private var creditRequested = false

    init(local: VsockAddress, peer: VsockAddress, state: VsockState, receiveCapacity: Int,
         maximumPacketPayload: Int, txStart: UInt32, rxStart: UInt32) {
        precondition(receiveCapacity > 0 && receiveCapacity <= Int(VsockCredit.maximumWindow), "vsock receive capacity")
        precondition(maximumPacketPayload > 0, "vsock packet payload")
        self.local = local
        self.peer = peer
        self.state = state
        self.maximumPacketPayload = maximumPacketPayload
        credit = VsockCredit(bufAlloc: UInt32(receiveCapacity), txStart: txStart, rxStart: rxStart)
        ring = VsockReceiveRing(capacity: receiveCapacity)
    }

    /// A connection we open: returns it in `.connecting` with the REQUEST to send.
    public static func connect(from local: VsockAddress, to peer: VsockAddress,
                               receiveCapacity: Int = defaultReceiveCapacity,
                               maximumPacketPayload: Int = defaultMaximumPacketPayload) -> (connection: VsockConnection, request: VsockAction) {
        connect(from: local, to: peer, receiveCapacity: receiveCapacity, maximumPacketPayload: maximumPacketPayload,
                txStart: 0, rxStart: 0)
    }

    static func connect(from local: VsockAddress, to peer: VsockAddress, receiveCapacity: Int, maximumPacketPayload: Int,
                        txStart: UInt32, rxStart: UInt32) -> (connection: VsockConnection, request: VsockAction) {
        let connection = VsockConnection(local: local, peer: peer, state: .connecting, receiveCapacity: receiveCapacity,
                                         maximumPacketPayload: maximumPacketPayload, txStart: txStart, rxStart: rxStart)
        return (connection, connection.control(.request))
    }

    /// A connection the peer opens: `request` arrived for a listening port. The connection
    /// waits in `.responding` for the service's `accept()` or `close()`. Nil when `request`
    /// is not a REQUEST or carries a lying fwd_cnt (a new peer has consumed nothing): answer
    /// those with `VsockHeader.reset(replyingTo:)`.
    public convenience init?(request: VsockHeader, receiveCapacity: Int = VsockConnection.defaultReceiveCapacity,
                             maximumPacketPayload: Int = VsockConnection.defaultMaximumPacketPayload) {
        self.init(request: request, receiveCapacity: receiveCapacity, maximumPacketPayload: maximumPacketPayload,
                  txStart: 0, rxStart: 0)
    }

    init?(request: VsockHeader, receiveCapacity: Int, maximumPacketPayload: Int, txStart: UInt32, rxStart: UInt32) {
        guard request.op == .request else { return nil }
        local = request.destination
        peer = request.source
        state = .responding
        self.maximumPacketPayload = maximumPacketPayload
        precondition(receiveCapacity > 0 && receiveCapacity <= Int(VsockCredit.maximumWindow), "vsock receive capacity")
        precondition(maximumPacketPayload > 0, "vsock packet payload")
        credit = VsockCredit(bufAlloc: UInt32(receiveCapacity), txStart: txStart, rxStart: rxStart)
        ring = VsockReceiveRing(capacity: receiveCapacity)
        if credit.applyPeer(bufAlloc: request.bufAlloc, fwdCnt: request.fwdCnt) != nil { return nil }
    }

    // MARK: What the service and the driver ask

    /// Bytes waiting in the receive buffer.
    public var readable: Int { ring.count }

    /// Bytes the receive buffer holds allocated now (it grows only when used).
    public var receiveBufferBytes: Int { ring.allocated }

    /// True while `write` can send: established, and neither our SHUTDOWN(SEND) nor the
    /// peer's SHUTDOWN(RECEIVE) has happened.
    public var isSendOpen: Bool {
        (state == .connected || state == .closing)
            && !localShutdown.contains(.send) && !peerShutdown.contains(.receive)
    }

    /// Bytes `write` would accept now (0 when sending is over or the peer gave no credit).
    public var writable: Int { isSendOpen ? Int(credit.peerFree) : 0 }

    /// True when no more bytes will ever arrive (the peer shut down sending, or the
    /// connection is closed). What is buffered stays readable: end of stream is
    /// `isReceiveFinished && readable == 0`.
    public var isReceiveFinished: Bool {
        state == .closed || peerShutdown.contains(.send) || localShutdown.contains(.receive)
    }

    // MARK: Events

    /// Takes one packet the peer sent on this connection; `payload` is its `len` bytes.
    /// Returns the packets to send in reply.
    public func handle(_ header: VsockHeader, payload: UnsafeRawBufferPointer) -> [VsockAction] {
        guard header.source == peer && header.destination == local else {
            // Not ours (a routing bug or a spoof): answer as if no socket, change nothing.
            return reply(VsockHeader.reset(replyingTo: header))
        }
        if state == .closed { return reply(VsockHeader.reset(replyingTo: header)) }
        guard payload.count == Int(header.length) else { return abort(.lengthMismatch) }
        if header.op == .rst {
            finish(state == .connecting ? .refused : .reset)
            return []
        }
        switch state {
        case .responding:
            // Until the RESPONSE goes out the peer may only give up (RST, above).
            return abort(.unexpectedOperation(header.op))
        case .connecting:
            guard header.op == .response else { return abort(.unexpectedOperation(header.op)) }
            if let lie = credit.applyPeer(bufAlloc: header.bufAlloc, fwdCnt: header.fwdCnt) { return abort(.credit(lie)) }
            state = .connected
            return []
        case .connected, .closing:
            return handleEstablished(header, payload: payload)
        case .closed:
            return []
        }
    }

    private func handleEstablished(_ header: VsockHeader, payload: UnsafeRawBufferPointer) -> [VsockAction] {
        if let lie = credit.applyPeer(bufAlloc: header.bufAlloc, fwdCnt: header.fwdCnt) { return abort(.credit(lie)) }
        creditRequested = false
        switch header.op {
        case .rw:
            if peerShutdown.contains(.send) || localShutdown.contains(.receive) { return abort(.dataAfterShutdown) }
            guard credit.recordReceived(header.length) else { return abort(.receiveOverflow) }
            guard ring.write(payload) else {
                // Memory is short (MemoryBudget refused the buffer's growth): reset this
                // connection rather than drop bytes the peer was promised room for.
                finish(.noMemory)
                return [control(.rst)]
            }
            return []
        case .creditUpdate:
            return []
        case .creditRequest:
            return [control(.creditUpdate)]
        case .shutdown:
            peerShutdown.formUnion(header.shutdown)
            if peerShutdown == .both {
                // The clean disconnect (§5.10.6.5): answer with RST; buffered bytes stay readable.
                finish(.peerClosed)
                return [control(.rst)]
            }
            if !peerShutdown.isEmpty { state = .closing }
            return []
        case .request, .response, .rst:
            return abort(.unexpectedOperation(header.op))
        }
    }

    // MARK: Service calls

    /// `.responding` only: sends the RESPONSE; the connection is established.
    public func accept() -> [VsockAction] {
        guard state == .responding else { return [] }
        state = .connected
        return [control(.response)]
    }

    /// Sends as much of `bytes` as the peer's credit allows, in RW packets of at most
    /// `maximumPacketPayload`: returns how many bytes were taken (a prefix of `bytes`) and
    /// the packets. With no credit it takes nothing and, once until the peer's next header,
    /// sends a CREDIT_REQUEST. Takes nothing when `isSendOpen` is false.
    public func write(_ bytes: UnsafeRawBufferPointer) -> (accepted: Int, actions: [VsockAction]) {
        guard isSendOpen, !bytes.isEmpty else { return (0, []) }
        let allowed = min(bytes.count, Int(credit.peerFree))
        if allowed == 0 {
            if creditRequested { return (0, []) }
            creditRequested = true
            return (0, [control(.creditRequest)])
        }
        var actions: [VsockAction] = []
        var offset = 0
        while offset < allowed {
            let count = min(allowed - offset, maximumPacketPayload)
            var header = VsockHeader(source: local, destination: peer, op: .rw, length: UInt32(count))
            credit.stamp(&header)
            credit.recordSent(UInt32(count))
            actions.append(VsockAction(header: header, payload: offset ..< offset + count))
            offset += count
        }
        return (allowed, actions)
    }

    /// Moves up to `buffer.count` received bytes into `buffer`. Consuming advances our
    /// fwd_cnt; when the peer's view of our free space has fallen to half the buffer or
    /// less, a CREDIT_UPDATE is returned to send.
    public func read(into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, actions: [VsockAction]) {
        let count = ring.read(into: buffer)
        if count == 0 { return (0, []) }
        credit.recordConsumed(UInt32(count))
        guard state == .connected || state == .closing, !isReceiveFinished, credit.wantsCreditUpdate else {
            return (count, [])
        }
        return (count, [control(.creditUpdate)])
    }

    /// Half-close: announces we will send (`.send`) and/or receive (`.receive`) no more.
    /// Both directions is `close()`.
    public func shutdown(_ how: VsockShutdown) -> [VsockAction] {
        guard state == .connected || state == .closing else { return [] }
        let flags = localShutdown.union(how)
        if flags == .both { return close() }
        if flags == localShutdown { return [] }
        localShutdown = flags
        state = .closing
        return [control(.shutdown, flags: flags.rawValue)]
    }

    /// Ends the connection: SHUTDOWN(both) + RST when established, RST when responding
    /// (refuses the REQUEST) or connecting, nothing when already closed.
    public func close() -> [VsockAction] {
        switch state {
        case .closed:
            return []
        case .responding, .connecting:
            finish(.localClose)
            return [control(.rst)]
        case .connected, .closing:
            localShutdown = .both
            finish(.localClose)
            return [control(.shutdown, flags: VsockShutdown.both.rawValue), control(.rst)]
        }
    }

    /// The device reported VIRTIO_VSOCK_EVENT_TRANSPORT_RESET: existing connections MUST be
    /// shut down (§5.10.6, "Device Events"). Closes with `.reset` and sends nothing (the peer is gone).
    public func transportReset() {
        if state != .closed { finish(.reset) }
    }

    /// Puts our current buf_alloc and fwd_cnt in `header`, a packet of this connection
    /// about to enter the ring (the driver calls it then, so that packets stamped earlier
    /// but sent later cannot carry an older fwd_cnt than one already sent).
    public func restamp(_ header: inout VsockHeader) {
        credit.stamp(&header)
    }

    // MARK: Helpers

    private func finish(_ reason: VsockCloseReason) {
        state = .closed
        closeReason = reason
        creditRequested = false
    }

    /// The peer broke the protocol: close and answer with RST.
    private func abort(_ violation: VsockViolation) -> [VsockAction] {
        finish(.violation(violation))
        return [control(.rst)]
    }

    /// A packet without payload from us to the peer, stamped with our credit.
    private func control(_ op: VsockOp, flags: UInt32 = 0) -> VsockAction {
        var header = VsockHeader(source: local, destination: peer, op: op, flags: flags)
        credit.stamp(&header)
        return VsockAction(header: header)
    }

    private func reply(_ header: VsockHeader?) -> [VsockAction] {
        guard let header else { return [] }
        return [VsockAction(header: header)]
    }
}
