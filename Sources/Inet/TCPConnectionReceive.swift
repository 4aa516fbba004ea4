// TCPConnection's segment processing (RFC 9293 §3.10.7): SYN-SENT, the acceptability test
// and trimming, RST and SYN answers (RFC 5961), ACK processing with congestion control,
// and the data and FIN of an acceptable segment.
//
// Part of TCPConnection (TCPConnection.swift has the state and the rules).
import Core
import Wire

extension TCPConnection {
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
    func handleInSynSent(_ segment: TCPSegment, now: UInt64) {
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
    func handleSynchronizedOrSynReceived(_ segment: TCPSegment, now: UInt64) {
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
    func acceptable(_ segment: TCPSegment) -> TCPSegment? {
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
    func processAck(_ segment: TCPSegment, now: UInt64) -> Bool {
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
    func acknowledge(upTo ack: SequenceNumber, now: UInt64) {
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
    func duplicateAck(now: UInt64) {
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
    func processData(_ segment: TCPSegment, now: UInt64) {
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
}
