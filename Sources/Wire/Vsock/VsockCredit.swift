// Credit-based flow control for one vsock stream connection, both directions
// (virtio 1.2 §5.10.6.3 "Buffer Space Management").
//
// Each side owns a receive buffer of `buf_alloc` bytes and counts, free-running and
// wrapping at 2^32, the payload bytes its service has consumed (`fwd_cnt`). Every header
// carries the sender's current pair. The other side keeps `tx_cnt`, the payload bytes it
// has sent, and may send at most
//
//     peer_free = peer_buf_alloc - (tx_cnt - peer_fwd_cnt)        (u32, wrapping)
//
// more: `tx_cnt - peer_fwd_cnt` is what is in flight or still buffered over there.
// "VIRTIO_VSOCK_OP_RW data packets MUST only be transmitted when the peer has sufficient
// free buffer space for the payload" (§5.10.6.3, driver and device normative).
//
// The peer is hostile. Its numbers are checked on every header, and the rules are:
//
//   1. fwd_cnt may only move forward, and never past what we sent: its advance since the
//      last header must be <= the bytes we had in flight (`txCount - peerFwdCnt`). Going
//      backwards or claiming bytes we never sent is a lie: `applyPeer` reports it and the
//      connection answers with an RST (a free-running counter cannot do either honestly).
//   2. buf_alloc is believed up to `maximumWindow` (2^31) and clamped there. Half the
//      counter space keeps "ahead" and "behind" distinguishable in rule 1 (serial number
//      arithmetic, RFC 1982) and bounds what we may ever have in flight.
//   3. buf_alloc below what is already in flight (the peer shrank its buffer, as Linux
//      allows with SO_VM_SOCKETS_BUFFER_SIZE) is not a lie: `peerFree` is 0, never the
//      wrapped difference, until the peer forwards enough.
//   4. What the peer sends us must fit the space we advertised: a payload larger than
//      `bufAlloc - (rxCount - advertisedFwdCnt)` (the most the peer can have been told)
//      is refused by `recordReceived`; the connection sends an RST and never buffers it.
//      Since our ring holds `bufAlloc` bytes and `fwdCnt` only grows past
//      `advertisedFwdCnt`, an accepted payload always fits the ring.
//
// Counters start at 0 on a new connection (Linux does the same); the initial values are
// parameters only so tests can start them next to 2^32 and exercise the wrap.

/// Why the peer's credit information was rejected (rule 1 above).
public enum VsockCreditLie: Equatable, Sendable {
    /// fwd_cnt went backwards.
    case fwdCntBackwards
    /// fwd_cnt counts bytes we never sent.
    case fwdCntBeyondSent
}

/// Both directions' credit counters for one connection. Pure arithmetic, no I/O.
public struct VsockCredit: Equatable, Sendable {
    /// The largest peer buf_alloc we believe (rule 2): 2^31 bytes.
    public static let maximumWindow: UInt32 = 1 << 31

    // Transmit direction: what the peer lets us send.

    /// Payload bytes we have sent (tx_cnt). Written by `recordSent`.
    public private(set) var txCount: UInt32
    /// The peer's buf_alloc, clamped to `maximumWindow`. Written by `applyPeer`.
    public private(set) var peerBufAlloc: UInt32 = 0
    /// The peer's fwd_cnt: always within [previous value, txCount]. Written by `applyPeer`.
    public private(set) var peerFwdCnt: UInt32

    // Receive direction: what we let the peer send.

    /// Our buf_alloc: the receive ring's capacity, in 1 ... maximumWindow.
    public let bufAlloc: UInt32
    /// Payload bytes received and buffered or consumed. Written by `recordReceived`.
    public private(set) var rxCount: UInt32
    /// Our fwd_cnt: payload bytes the service has consumed. Written by `recordConsumed`.
    public private(set) var fwdCnt: UInt32
    /// The fwd_cnt we last put in a header: the peer can know nothing newer. Written by `stamp`.
    public private(set) var advertisedFwdCnt: UInt32

    public init(bufAlloc: UInt32, txStart: UInt32 = 0, rxStart: UInt32 = 0) {
        precondition(bufAlloc > 0 && bufAlloc <= VsockCredit.maximumWindow, "vsock buf_alloc out of range")
        self.bufAlloc = bufAlloc
        txCount = txStart
        peerFwdCnt = txStart
        rxCount = rxStart
        fwdCnt = rxStart
        advertisedFwdCnt = rxStart
    }

    // MARK: Transmit

    /// Bytes sent and not yet consumed by the peer's service (<= maximumWindow).
    public var inFlight: UInt32 { txCount &- peerFwdCnt }

    /// How many more payload bytes we may send now (rule 3: never negative, never wrapped).
    public var peerFree: UInt32 { inFlight >= peerBufAlloc ? 0 : peerBufAlloc - inFlight }

    /// Takes the buf_alloc/fwd_cnt of a header the peer sent on this connection. Returns the
    /// lie (and changes nothing) when fwd_cnt breaks rule 1.
    public mutating func applyPeer(bufAlloc: UInt32, fwdCnt: UInt32) -> VsockCreditLie? {
        let advance = fwdCnt &- peerFwdCnt
        if advance > inFlight {
            // Outside [peerFwdCnt, txCount]: decide which side it is nearer to.
            let behind = peerFwdCnt &- fwdCnt
            let beyond = fwdCnt &- txCount
            return behind <= beyond ? .fwdCntBackwards : .fwdCntBeyondSent
        }
        peerFwdCnt = fwdCnt
        peerBufAlloc = min(bufAlloc, VsockCredit.maximumWindow)
        return nil
    }

    /// Counts `count` payload bytes sent; the caller sent no more than `peerFree`.
    public mutating func recordSent(_ count: UInt32) {
        precondition(count <= peerFree, "vsock send beyond peer credit")
        txCount &+= count
    }

    // MARK: Receive

    /// Payload bytes received and not yet consumed (what the ring holds).
    public var buffered: UInt32 { rxCount &- fwdCnt }

    /// What the peer may still send according to the newest fwd_cnt we advertised.
    public var advertisedFree: UInt32 { bufAlloc - (rxCount &- advertisedFwdCnt) }

    /// Counts `count` received payload bytes, or returns false (counting nothing) when they
    /// exceed `advertisedFree` (rule 4).
    public mutating func recordReceived(_ count: UInt32) -> Bool {
        guard count <= advertisedFree else { return false }
        rxCount &+= count
        return true
    }

    /// Counts `count` bytes the service consumed from the ring.
    public mutating func recordConsumed(_ count: UInt32) {
        precondition(count <= buffered, "vsock consumed more than buffered")
        fwdCnt &+= count
    }

    /// Fills a header we are about to send with our buf_alloc and fwd_cnt (§5.10.6.3: every
    /// packet of a stream carries valid values) and remembers what the peer will know.
    public mutating func stamp(_ header: inout VsockHeader) {
        header.bufAlloc = bufAlloc
        header.fwdCnt = fwdCnt
        advertisedFwdCnt = fwdCnt
    }

    /// True when the peer's view of our free space is at most half the buffer while we have
    /// consumed bytes it has not heard of: time for a CREDIT_UPDATE. (Linux sends one when
    /// the peer's view drops below 64 KiB, a quarter of its default 256 KiB buffer.)
    public var wantsCreditUpdate: Bool {
        fwdCnt != advertisedFwdCnt && bufAlloc - advertisedFree > bufAlloc / 2
    }
}
