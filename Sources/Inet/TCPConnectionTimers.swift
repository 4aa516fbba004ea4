// TCPConnection's timers: retransmission (RFC 6298), persist probes, delayed ACK, TIME-WAIT
// and FIN-WAIT-2, and the end of a connection.
//
// Part of TCPConnection (TCPConnection.swift has the state and the rules).
import Core
import Wire

extension TCPConnection {
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
    func retransmissionTimeout(now: UInt64) {
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
    func persistProbe(now: UInt64) {
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

    func enterTimeWait(now: UInt64) {
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
    func finish(_ reason: TCPCloseReason) {
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

    func changed() { onChange?() }
}
