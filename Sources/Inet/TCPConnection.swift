// One TCP connection (RFC 9293): its state, sequence variables, buffers, timers, and the
// segments it sends. The state machine follows RFC 9293 §3.10 ("Event Processing") with:
//   * the acceptability test of §3.10.7.4 and trimming of what lies outside the window;
//   * RFC 5961's answers to blind RSTs and SYNs (an RST not exactly at RCV.NXT and any SYN
//     in a synchronized state get a "challenge ACK"; only an exact RST resets);
//   * several segments in flight within min(peer's window, congestion window), with
//     slow start, congestion avoidance, fast retransmit and NewReno recovery (RFC 5681,
//     RFC 6582), RFC 6298 retransmission timeouts with Karn's rule and backoff;
//   * the MSS option both ways, delayed ACKs (every second full segment, else 40 ms),
//     receiver and sender silly-window avoidance, persist probes on a zero window;
//   * out-of-order segments kept within the window (TCPReceiveBuffer bounds their runs).
//
// This file holds the state and what services call; the segments from the peer are
// TCPConnectionReceive.swift, the timers TCPConnectionTimers.swift, and everything sent
// TCPConnectionSend.swift.
//
// It is pure: no clock, no thread, no lock. Callers hand it `now` (monotonic nanoseconds);
// it sends through `output` and calls `onChange` when something a waiting service cares
// about moved (bytes to read, room to write, the state). The stack (TCPStack.swift) routes
// segments to it and runs `tick` when `deadline` passes.
import Core
import Wire

public enum TCPState: Equatable, Sendable {
    case synSent, synReceived, established, finWait1, finWait2, closeWait, closing, lastAck, timeWait, closed

    /// The states after the handshake (RFC 9293 "synchronized").
    var isSynchronized: Bool {
        switch self {
        case .synSent, .synReceived, .closed: return false
        default: return true
        }
    }
}

/// Why a connection reached CLOSED.
public enum TCPCloseReason: Equatable, Sendable {
    /// Still open.
    case none
    /// Both sides finished in order.
    case finished
    /// The peer sent RST.
    case reset
    /// Our SYN was answered with RST: nobody listens there.
    case refused
    /// Retransmissions ran out: the peer (or the path) is gone.
    case timedOut
    /// We sent RST: the service aborted, or data arrived after it closed.
    case aborted
}

/// An address and port.
public struct TCPEndpoint: Equatable, Hashable, Sendable {
    public var address: IPv4Address
    public var port: UInt16
    public init(_ address: IPv4Address, _ port: UInt16) {
        self.address = address
        self.port = port
    }
}

/// A segment as the connection sees it: the header and its data, checksum verified.
public struct TCPSegment {
    public var header: TCPHeader
    public var data: UnsafeRawBufferPointer
    public init(header: TCPHeader, data: UnsafeRawBufferPointer) {
        self.header = header
        self.data = data
    }
    var sequence: SequenceNumber { SequenceNumber(header.sequenceNumber) }
    var acknowledgment: SequenceNumber { SequenceNumber(header.acknowledgmentNumber) }
    /// SEG.LEN: data, plus one for SYN and one for FIN.
    var length: Int {
        data.count + (header.flags.contains(.syn) ? 1 : 0) + (header.flags.contains(.fin) ? 1 : 0)
    }
}

/// Counters of one connection (for tests and the stack's totals).
public struct TCPConnectionCounters: Equatable, Sendable {
    public var segmentsSent = 0
    public var retransmissions = 0
    public var fastRetransmits = 0
    public var timeouts = 0
    public var persistProbes = 0
    public var duplicateSegments = 0
    public var outOfOrderSegments = 0
    public var droppedSegments = 0
    public var challengeAcks = 0
    public var sendRefused = 0
}

public final class TCPConnection {
    public let local: TCPEndpoint
    public let remote: TCPEndpoint
    let output: any IPv4Output
    public internal(set) var state: TCPState
    public internal(set) var closeReason: TCPCloseReason = .none
    /// Called when bytes became readable, room became writable, or the state changed.
    public var onChange: (() -> Void)?
    public internal(set) var counters = TCPConnectionCounters()

    // Send sequence space (RFC 9293 §3.3.1).
    let iss: SequenceNumber
    public internal(set) var sndUna: SequenceNumber
    public internal(set) var sndNxt: SequenceNumber
    /// The highest sequence number sent (SND.NXT goes back on a timeout; this does not).
    internal(set) var sndMax: SequenceNumber
    public internal(set) var sndWnd = 0
    var sndWl1 = SequenceNumber(0)
    var sndWl2 = SequenceNumber(0)
    /// The peer's MSS (what our segments carry at most).
    public internal(set) var sendSegment = TCPLimits.defaultPeerSegment
    var sendBuffer: TCPSendBuffer
    /// The service finished sending: a FIN follows the data.
    public internal(set) var finQueued = false
    /// The sequence number our FIN takes: the end of the data, fixed when the service
    /// finishes sending (nothing can be written after that).
    var finSequence = SequenceNumber(0)
    /// Our SYN is not acknowledged yet (it takes the sequence number ISS).
    var synOutstanding: Bool { sndUna == iss }

    // Receive sequence space.
    public internal(set) var irs = SequenceNumber(0)
    public internal(set) var rcvNxt = SequenceNumber(0)
    var receiveBuffer: TCPReceiveBuffer
    /// The peer's FIN, when it arrived ahead of data still missing.
    var pendingFin: SequenceNumber?
    /// The peer finished sending and every byte before its FIN arrived.
    public internal(set) var peerFinished = false
    /// The window last advertised (for window updates after reads).
    var advertisedWindow = 0

    // Congestion control (RFC 5681, RFC 6582).
    public internal(set) var congestionWindow: Int
    public internal(set) var slowStartThreshold = 65535
    var duplicateAcks = 0
    var recover = SequenceNumber(0)
    var inRecovery = false

    // Timers: 0 is off.
    public internal(set) var rto = RetransmissionTimeout()
    var retransmitAt: UInt64 = 0
    var persistAt: UInt64 = 0
    var persistInterval: UInt64 = 0
    var delayedAckAt: UInt64 = 0
    var timeWaitUntil: UInt64 = 0
    /// Consecutive timeouts of the same data.
    var retransmissionCount = 0
    /// The one segment being timed (Karn), and when it left.
    var timedSequence: SequenceNumber?
    var timedAt: UInt64 = 0
    /// Full-sized segments received since our last ACK.
    var unacknowledgedSegments = 0
    /// The service closed the socket: it will read nothing more.
    public internal(set) var serviceClosed = false
    /// The peer has sent at least one byte of data.
    public internal(set) var dataReceived = false
    /// When the connection last received anything from the peer.
    public internal(set) var lastReceived: UInt64

    /// The state every open starts from: ISS chosen, nothing sent yet.
    init(local: TCPEndpoint, remote: TCPEndpoint, iss: UInt32, output: any IPv4Output, state: TCPState,
                 peerSegment: Int, now: UInt64) {
        self.local = local
        self.remote = remote
        self.output = output
        self.iss = SequenceNumber(iss)
        sndUna = self.iss
        sndNxt = self.iss
        sndMax = self.iss
        self.state = state
        sendBuffer = TCPSendBuffer(capacity: TCPLimits.sendCapacity)
        receiveBuffer = TCPReceiveBuffer(capacity: TCPLimits.receiveCapacity)
        sendSegment = peerSegment
        congestionWindow = Self.initialWindow(peerSegment)
        lastReceived = now
    }

    /// An active open: sends SYN (RFC 9293 §3.10.1, "OPEN call, CLOSED state").
    public convenience init(connectFrom local: TCPEndpoint, to remote: TCPEndpoint, iss: UInt32, output: any IPv4Output,
                            now: UInt64) {
        self.init(local: local, remote: remote, iss: iss, output: output, state: .synSent,
                  peerSegment: TCPLimits.defaultPeerSegment, now: now)
        sendSyn(now: now)
    }

    /// A passive open: a SYN reached a listening port; answers SYN-ACK (§3.10.7.2).
    public convenience init(accepting syn: TCPSegment, local: TCPEndpoint, remote: TCPEndpoint, iss: UInt32,
                            output: any IPv4Output, now: UInt64) {
        self.init(local: local, remote: remote, iss: iss, output: output, state: .synReceived,
                  peerSegment: Self.peerSegment(syn.header.maximumSegmentSize), now: now)
        irs = syn.sequence
        rcvNxt = irs + 1
        sndWnd = Int(syn.header.window)
        sndWl1 = syn.sequence
        sndWl2 = self.iss
        sendSyn(now: now)
    }

    /// RFC 5681 §3.1's initial window for an MSS.
    static func initialWindow(_ mss: Int) -> Int {
        mss > 2190 ? 2 * mss : mss > 1095 ? 3 * mss : 4 * mss
    }

    static func peerSegment(_ option: UInt16?) -> Int {
        guard let option else { return TCPLimits.defaultPeerSegment }
        return min(max(Int(option), TCPLimits.minimumPeerSegment), TCPLimits.maximumSegment)
    }

    // MARK: What services see

    /// Bytes the service can read now.
    public var readable: Int { receiveBuffer.readable }
    /// Bytes the service can write now without waiting.
    public var writable: Int {
        switch state {
        case .established, .closeWait: return finQueued ? 0 : sendBuffer.free
        default: return 0
        }
    }
    /// Nothing more will ever be readable (end of stream, or the connection is gone).
    public var isReceiveFinished: Bool { peerFinished || state == .closed }
    /// Whether `write` can take bytes in this state (ignoring the buffer's room).
    public var isSendOpen: Bool { (state == .established || state == .closeWait) && !finQueued }
    /// Bytes written and not yet acknowledged.
    public var unacknowledged: Int { sendBuffer.count }
    /// Bytes of buffer storage held now.
    public var bufferBytes: Int { sendBuffer.allocated + receiveBuffer.allocated }

    /// Moves in-order bytes to `buffer`; may send a window update.
    public func read(into buffer: UnsafeMutableRawBufferPointer, now: UInt64) -> Int {
        let n = receiveBuffer.read(into: buffer)
        if n > 0 && state.isSynchronized && state != .timeWait {
            // Receiver SWS avoidance (RFC 9293 §3.8.6.2.2): announce the larger window once
            // it has grown by a segment or half the buffer.
            let window = receiveBuffer.window
            if window - advertisedWindow >= min(TCPLimits.receiveCapacity / 2, TCPLimits.maximumSegment) {
                sendAck(now: now)
            }
        }
        return n
    }

    /// Takes as much of `bytes` as the send buffer holds, and sends what the windows allow.
    public func write(_ bytes: UnsafeRawBufferPointer, now: UInt64) -> Int {
        guard isSendOpen else { return 0 }
        let n = sendBuffer.append(bytes)
        if n > 0 { transmitQueued(now: now) }
        return n
    }

    /// The service is done sending (RFC 9293 "CLOSE call"): a FIN follows the data.
    public func shutdownSending(now: UInt64) {
        if !finQueued && state != .synSent {
            finSequence = sndUna + sendBuffer.count + (synOutstanding ? 1 : 0)
        }
        switch state {
        case .synSent:
            finish(.aborted)
        case .synReceived, .established:
            finQueued = true
            state = .finWait1
            transmitQueued(now: now)
        case .closeWait:
            finQueued = true
            state = .lastAck
            transmitQueued(now: now)
        default:
            break
        }
    }

    /// The service closed the socket: FIN after the data. Bytes arriving later are data
    /// nobody will read, which aborts the connection (as Linux does).
    public func close(now: UInt64) {
        serviceClosed = true
        if state == .synSent { finish(.aborted); return }
        shutdownSending(now: now)
        if state == .finWait2 && timeWaitUntil == 0 { timeWaitUntil = now &+ TCPLimits.finWait2 }
        // Unread bytes are dropped now; their memory goes back with the storage.
        if receiveBuffer.readable > 0 || !receiveBuffer.intervals.isEmpty {
            receiveBuffer.release()
        }
    }

    /// Sends RST and drops the connection (the service's abort, or an idle timeout).
    public func abort(now: UInt64) {
        guard state != .closed && state != .timeWait else { return }
        if state != .synSent {
            _ = transmit(sequence: sndNxt, flags: [.rst, .ack], now: now)
        }
        finish(.aborted)
    }
}
