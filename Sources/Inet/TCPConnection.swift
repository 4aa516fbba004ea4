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
    public private(set) var state: TCPState
    public private(set) var closeReason: TCPCloseReason = .none
    /// Called when bytes became readable, room became writable, or the state changed.
    public var onChange: (() -> Void)?
    public private(set) var counters = TCPConnectionCounters()

    // Send sequence space (RFC 9293 §3.3.1).
    let iss: SequenceNumber
    public private(set) var sndUna: SequenceNumber
    public private(set) var sndNxt: SequenceNumber
    /// The highest sequence number sent (SND.NXT goes back on a timeout; this does not).
    private(set) var sndMax: SequenceNumber
    public private(set) var sndWnd = 0
    private var sndWl1 = SequenceNumber(0)
    private var sndWl2 = SequenceNumber(0)
    /// The peer's MSS (what our segments carry at most).
    public private(set) var sendSegment = TCPLimits.defaultPeerSegment
    var sendBuffer: TCPSendBuffer
    /// The service finished sending: a FIN follows the data.
    public private(set) var finQueued = false
    /// The sequence number our FIN takes: the end of the data, fixed when the service
    /// finishes sending (nothing can be written after that).
    private var finSequence = SequenceNumber(0)
    /// Our SYN is not acknowledged yet (it takes the sequence number ISS).
    private var synOutstanding: Bool { sndUna == iss }

    // Receive sequence space.
    public private(set) var irs = SequenceNumber(0)
    public private(set) var rcvNxt = SequenceNumber(0)
    var receiveBuffer: TCPReceiveBuffer
    /// The peer's FIN, when it arrived ahead of data still missing.
    private var pendingFin: SequenceNumber?
    /// The peer finished sending and every byte before its FIN arrived.
    public private(set) var peerFinished = false
    /// The window last advertised (for window updates after reads).
    private var advertisedWindow = 0

    // Congestion control (RFC 5681, RFC 6582).
    public private(set) var congestionWindow: Int
    public private(set) var slowStartThreshold = 65535
    private var duplicateAcks = 0
    private var recover = SequenceNumber(0)
    private var inRecovery = false

    // Timers: 0 is off.
    public private(set) var rto = RetransmissionTimeout()
    private var retransmitAt: UInt64 = 0
    private var persistAt: UInt64 = 0
    private var persistInterval: UInt64 = 0
    private var delayedAckAt: UInt64 = 0
    private var timeWaitUntil: UInt64 = 0
    /// Consecutive timeouts of the same data.
    private var retransmissionCount = 0
    /// The one segment being timed (Karn), and when it left.
    private var timedSequence: SequenceNumber?
    private var timedAt: UInt64 = 0
    /// Full-sized segments received since our last ACK.
    private var unacknowledgedSegments = 0
    /// The service closed the socket: it will read nothing more.
    public private(set) var serviceClosed = false
    /// The peer has sent at least one byte of data.
    public private(set) var dataReceived = false
    /// When the connection last received anything from the peer.
    public private(set) var lastReceived: UInt64

    /// The state every open starts from: ISS chosen, nothing sent yet.
    private init(local: TCPEndpoint, remote: TCPEndpoint, iss: UInt32, output: any IPv4Output, state: TCPState,
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

    // MARK: Segments from the peer

    /// Processes one segment addressed to this connection.
    public func handle(_ segment: TCPSegment, now: UInt64) {
        lastReceived = now
        switch state {
        case .closed:
            return
        case .synSent:
            handleInSynSent(segment, now: now)
        default:
            handleSynchronizedOrSynReceived(segment, now: now)
        }
    }

    /// RFC 9293 §3.10.7.3.
    private func handleInSynSent(_ segment: TCPSegment, now: UInt64) {
        let flags = segment.header.flags
        var ackAcceptable = false
        if flags.contains(.ack) {
            let ack = segment.acknowledgment
            if ack <= iss || ack > sndMax {
                if !flags.contains(.rst) {
                    _ = transmit(sequence: ack, flags: [.rst], acknowledge: false, now: now)
                }
                return
            }
            ackAcceptable = true
        }
        if flags.contains(.rst) {
            if ackAcceptable { finish(.refused) }
            return
        }
        guard flags.contains(.syn) else { return }
        irs = segment.sequence
        rcvNxt = irs + 1
        sendSegment = Self.peerSegment(segment.header.maximumSegmentSize)
        congestionWindow = Self.initialWindow(sendSegment)
        if ackAcceptable {
            acknowledge(upTo: segment.acknowledgment, now: now)
            sndWnd = Int(segment.header.window)
            sndWl1 = segment.sequence
            sndWl2 = segment.acknowledgment
            state = .established
            sendAck(now: now)
            changed()
            // Data or FIN on the SYN-ACK: handled as in ESTABLISHED.
            if !segment.data.isEmpty || flags.contains(.fin) {
                var rest = segment
                rest.header.sequenceNumber = rcvNxt.rawValue
                rest.header.flags.remove(.syn)
                processData(rest, now: now)
            }
        } else {
            // Simultaneous open: SYN-RECEIVED, our SYN resent with an ACK.
            state = .synReceived
            sndWnd = Int(segment.header.window)
            sndWl1 = segment.sequence
            sendSyn(now: now)
        }
    }

    /// RFC 9293 §3.10.7.4, for SYN-RECEIVED and the synchronized states.
    private func handleSynchronizedOrSynReceived(_ segment: TCPSegment, now: UInt64) {
        let flags = segment.header.flags
        // A retransmitted SYN while we are in SYN-RECEIVED: our SYN-ACK was lost.
        if state == .synReceived && flags.contains(.syn) && !flags.contains(.ack) && segment.sequence == irs {
            sendSyn(now: now)
            return
        }
        // First: the acceptability test, trimming to the window.
        guard var trimmed = acceptable(segment) else {
            counters.duplicateSegments += 1
            if !flags.contains(.rst) {
                if state == .timeWait && flags.contains(.fin) { timeWaitUntil = now &+ TCPLimits.timeWait }
                sendAck(now: now)
            }
            return
        }
        // Second: RST (RFC 5961 §3.2).
        if flags.contains(.rst) {
            if segment.sequence == rcvNxt {
                finish(state == .synReceived ? .refused : .reset)
            } else {
                challengeAck(now: now)
            }
            return
        }
        // Fourth: a SYN in the window (RFC 5961 §4.2): challenge ACK.
        if flags.contains(.syn) {
            challengeAck(now: now)
            return
        }
        // Fifth: ACK.
        guard flags.contains(.ack) else { return }
        let ack = segment.acknowledgment
        if state == .synReceived {
            guard sndUna < ack && ack <= sndMax else {
                _ = transmit(sequence: ack, flags: [.rst], acknowledge: false, now: now)
                return
            }
            acknowledge(upTo: ack, now: now)
            sndWnd = Int(segment.header.window)
            sndWl1 = segment.sequence
            sndWl2 = ack
            state = finQueued ? .finWait1 : .established
            changed()
        } else if !processAck(segment, now: now) {
            return
        }
        if state == .closed || state == .timeWait && !flags.contains(.fin) { return }
        trimmed.header.flags.remove(.syn)
        processData(trimmed, now: now)
        // Data that found no room (a zero window: a probe) is answered with our window.
        if !segment.data.isEmpty && trimmed.data.isEmpty && state != .closed { sendAck(now: now) }
        transmitQueued(now: now)
    }

    /// The segment cut to the receive window, or nil when nothing of it is acceptable
    /// (RFC 9293 §3.10.7.4, "first, check sequence number").
    private func acceptable(_ segment: TCPSegment) -> TCPSegment? {
        let window = receiveBuffer.window
        let length = segment.length
        let sequence = segment.sequence
        let windowEnd = rcvNxt + window
        if length == 0 {
            if window == 0 { return sequence == rcvNxt ? segment : nil }
            return sequence.isWithin(rcvNxt, windowEnd) ? segment : nil
        }
        if window == 0 {
            // Only the control part of a segment can be taken (ACK, RST; a FIN needs no
            // room, so one that carries no data is taken too).
            guard sequence == rcvNxt else { return nil }
            var bare = segment
            if !bare.data.isEmpty { bare.header.flags.remove(.fin) }
            bare.data = UnsafeRawBufferPointer(start: nil, count: 0)
            return bare
        }
        let last = sequence + (length - 1)
        guard sequence.isWithin(rcvNxt, windowEnd) || last.isWithin(rcvNxt, windowEnd) else { return nil }
        // Trim what lies before RCV.NXT (a SYN first, then data) and after the window.
        var trimmed = segment
        var start = sequence
        if trimmed.header.flags.contains(.syn) && start < rcvNxt {
            trimmed.header.flags.remove(.syn)
            start = start + 1
        }
        var data = segment.data
        if start < rcvNxt {
            let skip = min(rcvNxt - start, data.count)
            data = UnsafeRawBufferPointer(rebasing: data[skip...])
            start = start + skip
        }
        let room = windowEnd - start
        if data.count > room {
            data = UnsafeRawBufferPointer(rebasing: data[0 ..< max(room, 0)])
            trimmed.header.flags.remove(.fin)
        }
        trimmed.data = data
        trimmed.header.sequenceNumber = start.rawValue
        return trimmed
    }

    /// The ACK field in a synchronized state (§3.10.7.4 "fifth"); false when the segment
    /// must be dropped.
    private func processAck(_ segment: TCPSegment, now: UInt64) -> Bool {
        let ack = segment.acknowledgment
        if ack > sndMax {
            // Acknowledges something never sent: ACK and drop.
            sendAck(now: now)
            return false
        }
        let window = Int(segment.header.window)
        if ack > sndUna {
            if ack > sndNxt { sndNxt = ack }
            acknowledge(upTo: ack, now: now)
        } else if ack == sndUna && segment.data.isEmpty && !segment.header.flags.contains(.fin)
                    && window == sndWnd && window > 0 && sndMax > sndUna {
            duplicateAck(now: now)
        }
        // The window (RFC 9293 §3.10.7.4: SND.WL1/WL2 keep an old segment from reopening it).
        if sndWl1 < segment.sequence || (sndWl1 == segment.sequence && sndWl2 <= ack) {
            let opened = sndWnd == 0 && window > 0
            sndWnd = window
            sndWl1 = segment.sequence
            sndWl2 = ack
            if opened {
                persistAt = 0
                persistInterval = 0
                changed()
            }
        }
        // Our FIN acknowledged?
        if finQueued && sndUna == finSequence + 1 {
            switch state {
            case .finWait1:
                state = .finWait2
                if serviceClosed { timeWaitUntil = now &+ TCPLimits.finWait2 }
                changed()
            case .closing:
                enterTimeWait(now: now)
            case .lastAck:
                finish(.finished)
                return false
            default:
                break
            }
        }
        return true
    }

    /// New data acknowledged: release it, time it, grow the congestion window.
    private func acknowledge(upTo ack: SequenceNumber, now: UInt64) {
        var acked = ack - sndUna
        if synOutstanding { acked -= 1 }        // the SYN's number
        let dataAcked = min(max(acked, 0), sendBuffer.count)
        sendBuffer.drop(dataAcked)
        sndUna = ack
        if sndNxt < sndUna { sndNxt = sndUna }
        if let timed = timedSequence, ack > timed {
            rto.sample(now &- timedAt)
            timedSequence = nil
        }
        rto.acknowledged()
        retransmissionCount = 0
        // Congestion control.
        if inRecovery {
            if ack >= recover {
                // Full acknowledgment: deflate (RFC 6582 §3.2 step 3).
                inRecovery = false
                congestionWindow = min(slowStartThreshold, max(sndMax - sndUna, 0) + sendSegment)
            } else {
                // Partial: retransmit the next hole, deflate by what was acknowledged.
                _ = transmitData(from: sndUna, maximum: sendSegment, now: now)
                counters.retransmissions += 1
                congestionWindow = max(congestionWindow - dataAcked + sendSegment, sendSegment)
            }
        } else if congestionWindow < slowStartThreshold {
            congestionWindow += min(dataAcked, sendSegment)
        } else if congestionWindow > 0 {
            congestionWindow += max(1, sendSegment * sendSegment / congestionWindow)
        }
        congestionWindow = min(congestionWindow, 1 << 20)
        duplicateAcks = 0
        retransmitAt = sndMax > sndUna ? now &+ rto.current : 0
        if dataAcked > 0 { changed() }
    }

    /// RFC 5681 §3.2 / RFC 6582: the third duplicate retransmits, later ones inflate.
    private func duplicateAck(now: UInt64) {
        duplicateAcks += 1
        if inRecovery {
            congestionWindow += sendSegment
            transmitQueued(now: now)
            return
        }
        guard duplicateAcks == 3 else { return }
        let flight = sndMax - sndUna
        slowStartThreshold = max(flight / 2, 2 * sendSegment)
        recover = sndMax
        inRecovery = true
        timedSequence = nil
        if transmitData(from: sndUna, maximum: sendSegment, now: now) {
            counters.fastRetransmits += 1
        }
        congestionWindow = slowStartThreshold + 3 * sendSegment
        retransmitAt = now &+ rto.current
    }

    /// The data and FIN of an acceptable segment (§3.10.7.4 "seventh" and "eighth").
    private func processData(_ segment: TCPSegment, now: UInt64) {
        let flags = segment.header.flags
        let takesData = state == .established || state == .finWait1 || state == .finWait2
        if !segment.data.isEmpty && takesData {
            if serviceClosed {
                // Nobody will read it: tell the peer its data was lost (RFC 9293 §3.10.4).
                abort(now: now)
                return
            }
            let offset = segment.sequence - rcvNxt
            dataReceived = true
            if let advanced = receiveBuffer.store(segment.data, at: offset) {
                if advanced > 0 {
                    let filledGap = offset == 0 && advanced > segment.data.count
                    rcvNxt = rcvNxt + advanced
                    unacknowledgedSegments += 1
                    // An ACK at once when a gap closed (RFC 5681 §4.2) or for every second
                    // full segment; otherwise within the delayed-ACK time.
                    if filledGap || unacknowledgedSegments >= 2 || receiveBuffer.intervals.count > 0 {
                        sendAck(now: now)
                    } else if delayedAckAt == 0 {
                        delayedAckAt = now &+ TCPLimits.delayedAck
                    }
                    changed()
                } else {
                    counters.outOfOrderSegments += 1
                    sendAck(now: now)          // a duplicate ACK tells the sender of the gap
                }
            } else {
                counters.droppedSegments += 1
                sendAck(now: now)
            }
        }
        if flags.contains(.fin) {
            pendingFin = segment.sequence + segment.data.count
        }
        if let fin = pendingFin, fin == rcvNxt, !peerFinished {
            pendingFin = nil
            rcvNxt = rcvNxt + 1
            peerFinished = true
            switch state {
            case .synReceived, .established:
                state = .closeWait
            case .finWait1:
                // Our FIN not yet acknowledged (else processAck moved us to FIN-WAIT-2).
                state = .closing
            case .finWait2:
                enterTimeWait(now: now)
            default:
                break
            }
            sendAck(now: now)
            changed()
        }
    }

    // MARK: Timers

    /// The earliest time `tick` has work (nil: no timer running).
    public var deadline: UInt64? {
        var earliest = UInt64.max
        for t in [retransmitAt, persistAt, delayedAckAt, timeWaitUntil] where t != 0 { earliest = min(earliest, t) }
        return earliest == .max ? nil : earliest
    }

    /// Runs the timers due at `now`.
    public func tick(now: UInt64) {
        if state == .closed { return }
        if timeWaitUntil != 0 && now >= timeWaitUntil {
            finish(.finished)
            return
        }
        if delayedAckAt != 0 && now >= delayedAckAt {
            sendAck(now: now)
        }
        if retransmitAt != 0 && now >= retransmitAt {
            retransmissionTimeout(now: now)
        }
        if persistAt != 0 && now >= persistAt {
            persistProbe(now: now)
        }
        // Whatever the transmit ring refused earlier goes now, within the windows.
        if state != .closed { transmitQueued(now: now) }
    }

    /// RFC 6298 §5.4-5.7 and RFC 5681 §3.1 (loss: one segment of window, go back to SND.UNA).
    private func retransmissionTimeout(now: UInt64) {
        retransmitAt = 0
        retransmissionCount += 1
        counters.timeouts += 1
        let limit = state.isSynchronized ? TCPLimits.maximumRetransmissions : TCPLimits.maximumSynRetransmissions
        if retransmissionCount > limit {
            if state.isSynchronized || state == .synReceived {
                _ = transmit(sequence: sndNxt, flags: [.rst, .ack], now: now)
            }
            finish(.timedOut)
            return
        }
        rto.timedOut()
        timedSequence = nil
        if state == .synSent || state == .synReceived {
            sendSyn(now: now)
            return
        }
        let flight = sndMax - sndUna
        slowStartThreshold = max(flight / 2, 2 * sendSegment)
        congestionWindow = sendSegment
        inRecovery = false
        duplicateAcks = 0
        sndNxt = sndUna
        counters.retransmissions += 1
        transmitQueued(now: now)
        if retransmitAt == 0 && sndMax > sndUna { retransmitAt = now &+ rto.current }
    }

    /// A zero window with data waiting: send one byte past it, which the peer acknowledges
    /// with its current window (RFC 9293 §3.8.6.1).
    private func persistProbe(now: UInt64) {
        persistAt = 0
        let offset = sndNxt - sndUna - (synOutstanding ? 1 : 0)
        guard sndWnd == 0, sndNxt == sndUna, sendBuffer.count > offset else { return }
        // The probe does not move SND.NXT or start the retransmission timer: a peer that
        // keeps answering with a zero window is alive, however long it stays shut. Only
        // SND.MAX covers it, so the peer's acknowledgment of it is acceptable.
        if transmit(sequence: sndNxt, flags: [.ack], data: offset, length: 1, now: now) {
            counters.persistProbes += 1
            if sndMax < sndNxt + 1 { sndMax = sndNxt + 1 }
        }
        persistInterval = min(max(persistInterval * 2, rto.current), TCPLimits.maximumPersist)
        persistAt = now &+ persistInterval
    }

    private func enterTimeWait(now: UInt64) {
        state = .timeWait
        retransmitAt = 0
        persistAt = 0
        delayedAckAt = 0
        timeWaitUntil = now &+ TCPLimits.timeWait
        sendBuffer.release()
        // Nothing more can arrive; unread bytes stay only for a service still holding it.
        if serviceClosed { receiveBuffer.release() }
        changed()
    }

    /// The connection is over: timers off, buffers kept only for what the service may
    /// still read (after an orderly finish) .
    private func finish(_ reason: TCPCloseReason) {
        guard state != .closed else { return }
        state = .closed
        closeReason = reason
        retransmitAt = 0
        persistAt = 0
        delayedAckAt = 0
        timeWaitUntil = 0
        sendBuffer.release()
        if reason != .finished || serviceClosed { receiveBuffer.release() }
        changed()
    }

    /// Ends a TIME-WAIT early (the stack's cap on waiting connections).
    public func forgetTimeWait() {
        if state == .timeWait { finish(.finished) }
    }

    private func changed() { onChange?() }

    // MARK: Sending

    /// Sends SYN (active) or SYN-ACK (passive), and times it.
    private func sendSyn(now: UInt64) {
        let flags: TCPFlags = state == .synSent ? [.syn] : [.syn, .ack]
        if transmit(sequence: iss, flags: flags, acknowledge: state != .synSent, now: now) {
            if sndNxt == iss { sndNxt = iss + 1 }
            if sndMax < sndNxt { sndMax = sndNxt }
        }
        if retransmissionCount == 0 && timedSequence == nil {
            timedSequence = iss
            timedAt = now
        }
        retransmitAt = now &+ rto.current
    }

    /// Sends what the windows allow of the data and FIN not yet sent.
    private func transmitQueued(now: UInt64) {
        switch state {
        case .established, .closeWait, .finWait1, .closing, .lastAck:
            break
        default:
            return
        }
        while true {
            let offset = sndNxt - sndUna - (synOutstanding ? 1 : 0)
            let available = sendBuffer.count - offset
            let finDue = finQueued && available <= 0 && sndNxt == finSequence
            if available <= 0 && !finDue { break }
            let flight = sndNxt - sndUna
            let window = min(sndWnd, congestionWindow)
            let usable = window - flight
            if available > 0 && usable <= 0 {
                // Zero window with nothing in flight: probe it (§3.8.6.1).
                if sndWnd == 0 && flight == 0 && persistAt == 0 {
                    persistInterval = rto.current
                    persistAt = now &+ persistInterval
                }
                break
            }
            if available > 0 {
                let length = min(available, usable, sendSegment)
                // Sender SWS avoidance: a short segment only when it empties the buffer or
                // nothing is in flight (RFC 9293 §3.8.6.2.1, Nagle without the delay).
                if length < sendSegment && length < available && flight > 0 { break }
                guard transmitData(from: sndNxt, maximum: length, now: now) else { break }
            } else {
                guard transmit(sequence: sndNxt, flags: [.fin, .ack], now: now) else { break }
                sndNxt = sndNxt + 1
                if sndMax < sndNxt { sndMax = sndNxt }
                if retransmitAt == 0 { retransmitAt = now &+ rto.current }
                break
            }
        }
    }

    /// Sends up to `maximum` bytes of data starting at `sequence` (with the FIN if they end
    /// the data and the service has closed); advances SND.NXT when sending from it.
    private func transmitData(from sequence: SequenceNumber, maximum: Int, now: UInt64) -> Bool {
        let offset = sequence - sndUna - (synOutstanding ? 1 : 0)
        let length = min(maximum, sendBuffer.count - offset)
        guard length > 0 else { return false }
        let endsData = offset + length == sendBuffer.count
        var flags: TCPFlags = endsData ? [.ack, .psh] : [.ack]
        let withFin = endsData && finQueued
        if withFin { flags.insert(.fin) }
        guard transmit(sequence: sequence, flags: flags, data: offset, length: length, now: now) else { return false }
        let end = sequence + length + (withFin ? 1 : 0)
        if sequence == sndNxt { sndNxt = end }
        if sndMax < end {
            // New data (not a retransmission): time it if nothing else is timed.
            if timedSequence == nil && sequence >= sndMax {
                timedSequence = sequence
                timedAt = now
            }
            sndMax = end
        } else if let timed = timedSequence, timed >= sequence && timed < end {
            timedSequence = nil      // Karn: a retransmitted segment gives no sample
        }
        if retransmitAt == 0 { retransmitAt = now &+ rto.current }
        return true
    }

    /// An ACK now (it also carries the window).
    private func sendAck(now: UInt64) {
        _ = transmit(sequence: sndNxt, flags: [.ack], now: now)
    }

    /// RFC 5961 §3.2: ACK with our current numbers; the peer's real stack resends.
    private func challengeAck(now: UInt64) {
        counters.challengeAcks += 1
        sendAck(now: now)
    }

    /// The window field to send: what the receive buffer has room for, at most 65,535.
    private var windowToAdvertise: Int { min(receiveBuffer.window, 65535) }

    /// Sends one segment; data is `length` bytes from send-buffer offset `data`.
    @discardableResult
    private func transmit(sequence: SequenceNumber, flags: TCPFlags, acknowledge: Bool = true, data: Int = 0,
                          length: Int = 0, now: UInt64) -> Bool {
        var flags = flags
        if acknowledge && state != .synSent { flags.insert(.ack) } else if !acknowledge { flags.remove(.ack) }
        let window = flags.contains(.rst) ? 0 : windowToAdvertise
        let header = TCPHeader(sourcePort: local.port, destinationPort: remote.port, sequenceNumber: sequence.rawValue,
                               acknowledgmentNumber: flags.contains(.ack) ? rcvNxt.rawValue : 0, flags: flags,
                               window: UInt16(window),
                               maximumSegmentSize: flags.contains(.syn) ? UInt16(TCPLimits.maximumSegment) : nil)
        let headerLength = header.encodedHeaderLength
        let buffer = sendBuffer
        let (source, destination) = (local.address, remote.address)
        let sent = output.sendIPv4(to: destination, protocol: .tcp, payloadLength: headerLength + length, now: now) { segment in
            if length > 0 {
                buffer.copy(from: data, into: UnsafeMutableRawBufferPointer(rebasing: segment[headerLength ..< headerLength + length]))
            }
            header.encode(into: segment, source: source, destination: destination)
        }
        guard sent else {
            counters.sendRefused += 1
            return false
        }
        counters.segmentsSent += 1
        if flags.contains(.ack) {
            advertisedWindow = window
            delayedAckAt = 0
            unacknowledgedSegments = 0
        }
        return true
    }
}
