import Inet
import Wire
import XCTest

final class TCPDataTests: XCTestCase {
    func testDataFromThePeerIsReadableAndAcknowledgedWithinTheDelayedAckTime() {
        var e = Established()
        e.peer.send(e.stack, flags: [.ack, .psh], ack: e.toroSequence, data: Array("GET".utf8), now: e.now)
        XCTAssertEqual(e.connection.readable, 3)
        XCTAssertTrue(e.capture.take().isEmpty, "one small segment: the ACK is delayed")
        e.advance(39_000_000)
        XCTAssertTrue(e.capture.take().isEmpty)
        e.advance(2_000_000)
        let ack = e.capture.take()
        XCTAssertEqual(ack.map(\.flags), [[.ack]])
        XCTAssertEqual(ack.first?.acknowledgment, e.peer.sequence)
        XCTAssertEqual(e.readAll(), Array("GET".utf8))
    }

    func testEverySecondSegmentIsAcknowledgedAtOnce() {
        var e = Established()
        e.peer.send(e.stack, flags: [.ack], ack: e.toroSequence, data: pattern(1460), now: e.now)
        XCTAssertTrue(e.capture.take().isEmpty)
        e.peer.send(e.stack, flags: [.ack], ack: e.toroSequence, data: pattern(1460), now: e.now)
        XCTAssertEqual(e.capture.take().map(\.acknowledgment), [e.peer.sequence])
    }

    func testWrittenDataGoesOutInMSSSegmentsWithinTheCongestionWindow() {
        var e = Established(peerMSS: 1000)
        let data = pattern(20_000)
        XCTAssertEqual(e.write(data), 20_000)
        var sent = e.capture.take()
        XCTAssertEqual(sent.count, 4, "the initial window: 4 segments of a 1000-byte MSS (RFC 5681)")
        XCTAssertTrue(sent.allSatisfy { $0.data.count == 1000 })
        XCTAssertEqual(sent.first?.sequence, e.toroSequence)
        // Each ACK grows the window in slow start: more segments per round.
        var received: [UInt8] = sent.flatMap(\.data)
        var rounds = 0
        while received.count < data.count && rounds < 20 {
            rounds += 1
            let acked = e.toroSequence &+ UInt32(received.count)
            e.peer.send(e.stack, flags: [.ack], ack: acked, now: e.now)
            sent = e.capture.take()
            received += sent.flatMap(\.data)
        }
        XCTAssertEqual(received, data)
        XCTAssertLessThan(rounds, 8, "slow start: the window doubles each round")
        XCTAssertTrue(sent.last?.flags.contains(.psh) ?? false, "the last segment pushes")
    }

    func testLostSegmentIsRetransmittedWithBackoffAndTheConnectionGivesUpInTheEnd() {
        var e = Established()
        _ = e.write(pattern(100))
        let first = e.capture.take()
        XCTAssertEqual(first.count, 1)
        var times: [UInt64] = []
        let start = e.now
        while e.connection.state == .established && e.now - start < 1_000_000_000_000 {
            e.advance(50_000_000)
            for segment in e.capture.take() where segment.data.count == 100 {
                XCTAssertEqual(segment.sequence, first[0].sequence, "the same bytes again")
                times.append(e.now - start)
            }
        }
        XCTAssertEqual(e.connection.closeReason, .timedOut)
        XCTAssertEqual(times.count, TCPLimits.maximumRetransmissions)
        // The handshake's instant round trip set the RTO to its floor; each timeout doubles it.
        XCTAssertEqual(Double(times[0]), 0.2e9, accuracy: 0.06e9, "the first RTO is the 200 ms floor")
        XCTAssertEqual(Double(times[1] - times[0]), 0.4e9, accuracy: 0.06e9, "then 400 ms")
        XCTAssertEqual(Double(times[2] - times[1]), 0.8e9, accuracy: 0.06e9, "then 800 ms")
        let gaps = zip(times, times.dropFirst()).map { $1 - $0 }
        XCTAssertLessThanOrEqual(gaps.max()!, TCPLimits.maximumRTO + 60_000_000, "never beyond the cap")
        XCTAssertEqual(e.stack.connectionCount, 0)
    }

    func testRoundTripSamplesSetTheTimeoutAndKarnsRuleSkipsRetransmissions() {
        var e = Established()
        _ = e.write(pattern(10))
        let first = e.capture.take()[0]
        e.now += 30_000_000                                          // a 30 ms round trip
        e.peer.send(e.stack, flags: [.ack], ack: first.sequence &+ 10, now: e.now)
        // After the handshake's 0 ms sample: SRTT = 7/8 × 0 + 1/8 × 30 ms.
        XCTAssertEqual(e.connection.rto.smoothed, 30_000_000 / 8)
        let smoothed = e.connection.rto.smoothed
        // A retransmitted segment gives no sample.
        _ = e.write(pattern(10))
        _ = e.capture.take()
        e.advance(TCPLimits.minimumRTO + 1_000_000)
        XCTAssertEqual(e.capture.take().count, 1, "retransmitted")
        e.now += 5_000_000_000
        e.peer.send(e.stack, flags: [.ack], ack: first.sequence &+ 20, now: e.now)
        XCTAssertEqual(e.connection.rto.smoothed, smoothed, "no 5 s sample from an ambiguous ACK")
    }

    func testThreeDuplicateAcksRetransmitBeforeTheTimeout() {
        var e = Established()
        _ = e.write(pattern(1460 * 3))
        let sent = e.capture.take()
        XCTAssertEqual(sent.count, 3, "the initial window of a 1460-byte MSS: 3 segments")
        // The first segment was lost: the peer acknowledges nothing new, three times.
        for _ in 0 ..< 3 {
            e.peer.send(e.stack, flags: [.ack], ack: sent[0].sequence, now: e.now)
        }
        let again = e.capture.take()
        XCTAssertEqual(again.first?.sequence, sent[0].sequence)
        XCTAssertEqual(again.first?.data.count, 1460)
        XCTAssertEqual(e.connection.counters.fastRetransmits, 1)
        XCTAssertEqual(e.connection.counters.timeouts, 0)
        // The hole filled: everything is acknowledged, recovery ends.
        e.peer.send(e.stack, flags: [.ack], ack: sent[0].sequence &+ 1460 * 3, now: e.now)
        XCTAssertEqual(e.connection.unacknowledged, 0)
        XCTAssertGreaterThanOrEqual(e.connection.congestionWindow, 1460)
    }

    func testOutOfOrderSegmentsAreKeptAndDuplicatesDropped() {
        var e = Established()
        let data = pattern(3000)
        let base = e.peer.sequence
        let ack = e.toroSequence
        // The second half first: kept, and answered with a duplicate ACK for the gap.
        e.peer.send(e.stack, flags: [.ack], ack: ack, data: Array(data[1500...]), at: base &+ 1500, now: e.now)
        XCTAssertEqual(e.connection.readable, 0)
        XCTAssertEqual(e.capture.take().map(\.acknowledgment), [base])
        XCTAssertEqual(e.connection.counters.outOfOrderSegments, 1)
        // The first half fills the gap: one ACK for all of it, at once.
        e.peer.send(e.stack, flags: [.ack], ack: ack, data: Array(data[0 ..< 1500]), at: base, now: e.now)
        XCTAssertEqual(e.capture.take().map(\.acknowledgment), [base &+ 3000])
        // A duplicate of bytes already taken, overlapping new ones: only the new ones count.
        e.peer.send(e.stack, flags: [.ack], ack: ack, data: Array(data[2000...]) + [1, 2, 3], at: base &+ 2000, now: e.now)
        XCTAssertEqual(e.readAll(), data + [1, 2, 3])
        // Entirely old bytes: an ACK, nothing stored.
        e.peer.send(e.stack, flags: [.ack], ack: ack, data: Array(data[0 ..< 100]), at: base, now: e.now)
        XCTAssertEqual(e.connection.readable, 0)
        XCTAssertEqual(e.connection.counters.duplicateSegments, 1)
    }

    func testOutOfOrderRunsAreBounded() {
        var e = Established()
        let base = e.peer.sequence
        // Ten separate runs with gaps: only `maximumIntervals` are kept.
        for i in 0 ..< 10 {
            e.peer.send(e.stack, flags: [.ack], ack: e.toroSequence, data: [UInt8(i)], at: base &+ UInt32(2 + 2 * i), now: e.now)
        }
        XCTAssertEqual(e.connection.counters.droppedSegments, 10 - 8)
        XCTAssertLessThanOrEqual(e.connection.bufferBytes, TCPLimits.receiveCapacity)
    }

    func testOurZeroWindowHoldsThePeerOffAndAReadReopensIt() {
        var e = Established()
        let chunk = pattern(1460)
        var sent = 0
        while sent < TCPLimits.receiveCapacity {
            let n = min(1460, TCPLimits.receiveCapacity - sent)
            e.peer.send(e.stack, flags: [.ack], ack: e.toroSequence, data: Array(chunk[0 ..< n]), now: e.now)
            sent += n
        }
        e.advance(TCPLimits.delayedAck)
        let last = e.capture.take().last!
        XCTAssertEqual(last.header.window, 0, "the buffer is full: window 0")
        // A byte beyond the window is not taken.
        e.peer.send(e.stack, flags: [.ack], ack: e.toroSequence, data: [9], at: e.peer.sequence, now: e.now)
        XCTAssertEqual(e.connection.readable, TCPLimits.receiveCapacity)
        XCTAssertEqual(e.capture.take().first?.header.window, 0)
        // The service reads: the window update goes out at once.
        XCTAssertEqual(e.readAll().count, TCPLimits.receiveCapacity)
        let update = e.capture.take()
        XCTAssertEqual(update.count, 1)
        XCTAssertEqual(Int(update[0].header.window), TCPLimits.receiveCapacity)
    }

    func testThePeersZeroWindowIsProbedForeverWhileItAnswers() {
        var e = Established(peerWindow: 0)
        XCTAssertEqual(e.write(pattern(5000)), 5000)
        XCTAssertTrue(e.capture.take().isEmpty, "nothing fits a zero window")
        var probes: [UInt64] = []
        let start = e.now
        while e.now - start < 400_000_000_000 {
            e.advance(100_000_000)
            for probe in e.capture.take() {
                XCTAssertEqual(probe.data.count, 1, "a probe carries one byte")
                XCTAssertEqual(probe.sequence, e.toroSequence)
                probes.append(e.now - start)
                e.peer.send(e.stack, flags: [.ack], ack: e.toroSequence, window: 0, now: e.now)
            }
        }
        XCTAssertEqual(e.connection.state, .established, "a peer that answers is alive, however long it stays shut")
        XCTAssertGreaterThan(probes.count, 5)
        XCTAssertEqual(Double(probes[1] - probes[0]) / Double(probes[0]), 2, accuracy: 0.2, "probes back off")
        let gaps = zip(probes, probes.dropFirst()).map { $1 - $0 }
        XCTAssertLessThanOrEqual(gaps.max()!, TCPLimits.maximumPersist + 100_000_000)
        // The window opens: data flows at once.
        e.peer.send(e.stack, flags: [.ack], ack: e.toroSequence, window: 65535, now: e.now)
        let flowing = e.capture.take()
        XCTAssertEqual(flowing.reduce(0) { $0 + $1.data.count }, 3 * 1460, "the congestion window's worth")
        XCTAssertEqual(flowing.first?.sequence, e.toroSequence)
    }

    func testAFullTransmitRingLosesNothing() {
        var e = Established()
        e.capture.refuse = true
        XCTAssertEqual(e.write(pattern(3000)), 3000)
        XCTAssertTrue(e.capture.take().isEmpty)
        e.capture.refuse = false
        e.advance(1_000_000)
        let sent = e.capture.take()
        XCTAssertEqual(sent.flatMap(\.data), pattern(3000), "sent once the ring has room")
        XCTAssertEqual(sent.first?.sequence, e.toroSequence)
    }

    func testSendBufferIsBoundedAndRefillsAsAcksArrive() {
        var e = Established()
        let big = pattern(200_000)
        let taken = e.write(big)
        XCTAssertEqual(taken, TCPLimits.sendCapacity)
        XCTAssertEqual(e.connection.writable, 0)
        let sent = e.capture.take()
        let bytes = sent.reduce(0) { $0 + $1.data.count }
        e.peer.send(e.stack, flags: [.ack], ack: e.toroSequence &+ UInt32(bytes), now: e.now)
        XCTAssertEqual(e.connection.writable, bytes)
    }
}
