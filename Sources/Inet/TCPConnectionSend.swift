// TCPConnection's sending: SYN and SYN-ACK, data within the windows (sender silly-window
// avoidance), ACKs, challenge ACKs, and the one function that builds every segment.
//
// Part of TCPConnection (TCPConnection.swift has the state and the rules).
import Core
import Wire

extension TCPConnection {
    /// Sends SYN (active) or SYN-ACK (passive), and times it.
    func sendSyn(now: UInt64) {
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
    func transmitQueued(now: UInt64) {
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
    func transmitData(from sequence: SequenceNumber, maximum: Int, now: UInt64) -> Bool {
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
    func sendAck(now: UInt64) {
        _ = transmit(sequence: sndNxt, flags: [.ack], now: now)
    }

    /// RFC 5961 §3.2: ACK with our current numbers; the peer's real stack resends.
    func challengeAck(now: UInt64) {
        counters.challengeAcks += 1
        sendAck(now: now)
    }

    /// The window field to send: what the receive buffer has room for, at most 65,535.
    var windowToAdvertise: Int { min(receiveBuffer.window, 65535) }

    /// Sends one segment; data is `length` bytes from send-buffer offset `data`.
    @discardableResult
    func transmit(sequence: SequenceNumber, flags: TCPFlags, acknowledge: Bool = true, data: Int = 0,
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
