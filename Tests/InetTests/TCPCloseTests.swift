import Inet
import Wire
import XCTest

/// RST and FIN in every state, simultaneous close, TIME-WAIT.
final class TCPCloseTests: XCTestCase {
    /// Drives an established connection into `state`.
    private func connection(in state: TCPState) -> Established {
        var e = Established()
        switch state {
        case .established:
            break
        case .finWait1:
            e.connection.close(now: e.now)
        case .finWait2:
            e.connection.close(now: e.now)
            e.peer.send(e.stack, flags: [.ack], ack: e.toroSequence &+ 1, now: e.now)
        case .closeWait:
            e.peer.send(e.stack, flags: [.fin, .ack], ack: e.toroSequence, now: e.now)
        case .lastAck:
            e.peer.send(e.stack, flags: [.fin, .ack], ack: e.toroSequence, now: e.now)
            e.connection.close(now: e.now)
        case .closing:
            e.connection.close(now: e.now)
            e.peer.send(e.stack, flags: [.fin, .ack], ack: e.toroSequence, now: e.now)   // our FIN not acknowledged
        case .timeWait:
            e.connection.close(now: e.now)
            e.peer.send(e.stack, flags: [.fin, .ack], ack: e.toroSequence &+ 1, now: e.now)
        default:
            XCTFail("not a synchronized state: \(state)")
        }
        XCTAssertEqual(e.connection.state, state)
        _ = e.capture.take()
        return e
    }

    private let synchronized: [TCPState] = [.established, .finWait1, .finWait2, .closeWait, .closing, .lastAck, .timeWait]

    func testAnExactRSTResetsInEveryState() {
        for state in synchronized {
            var e = connection(in: state)
            e.peer.send(e.stack, flags: [.rst], at: e.peer.sequence, now: e.now)
            XCTAssertEqual(e.connection.state, .closed, "\(state)")
            XCTAssertEqual(e.connection.closeReason, .reset, "\(state)")
            XCTAssertTrue(e.capture.take().isEmpty, "\(state): an RST is never answered")
            XCTAssertEqual(e.stack.connectionCount, 0, "\(state)")
        }
    }

    func testAnInWindowRSTNotAtRcvNxtGetsAChallengeAckInEveryState() {
        for state in synchronized where state != .timeWait {
            var e = connection(in: state)
            e.peer.send(e.stack, flags: [.rst], at: e.peer.sequence &+ 100, now: e.now)
            XCTAssertEqual(e.connection.state, state, "\(state): a blind RST does not reset (RFC 5961)")
            let sent = e.capture.take()
            XCTAssertEqual(sent.map(\.flags), [[.ack]], "\(state)")
            XCTAssertEqual(sent.first?.acknowledgment, e.peer.sequence, "\(state)")
        }
    }

    func testAnRSTOutsideTheWindowIsIgnored() {
        var e = connection(in: .established)
        e.peer.send(e.stack, flags: [.rst], at: e.peer.sequence &- 100_000, now: e.now)
        XCTAssertEqual(e.connection.state, .established)
        XCTAssertTrue(e.capture.take().isEmpty)
    }

    func testASynInASynchronizedStateGetsAChallengeAck() {
        for state in synchronized where state != .timeWait {
            var e = connection(in: state)
            e.peer.send(e.stack, flags: [.syn], at: e.peer.sequence, now: e.now)
            XCTAssertEqual(e.connection.state, state, "\(state)")
            XCTAssertEqual(e.capture.take().map(\.flags), [[.ack]], "\(state)")
        }
    }

    func testRSTInSynReceivedAndSynSent() {
        // SYN-RECEIVED: the half-open connection goes, the listener stays.
        let capture = TCPCapture(ScriptedPeer.toroAddress)
        let stack = TCPStack(output: capture, secret: 1)
        let passive = stack.listen(port: 80, maximumHalfOpen: 4)!
        var peer = ScriptedPeer()
        peer.send(stack, flags: [.syn], now: 0)
        _ = capture.take()
        peer.send(stack, flags: [.rst], now: 1)
        XCTAssertEqual(stack.connectionCount, 0)
        XCTAssertNil(passive.takeEstablished())
        // SYN-SENT: refused (testRefusedConnectIsReported has the unacceptable-ACK case).
        let connection = stack.connect(to: TCPEndpoint(ScriptedPeer.peerAddress, 7), now: 2)!
        let syn = capture.take()[0]
        var remote = ScriptedPeer(port: 7, toroPort: connection.local.port, sequence: 0)
        remote.send(stack, flags: [.rst, .ack], ack: syn.sequence &+ 1, now: 3)
        XCTAssertEqual(connection.closeReason, .refused)
    }

    func testFinInEveryState() {
        let expected: [TCPState: TCPState] = [.established: .closeWait, .finWait1: .closing, .finWait2: .timeWait]
        for (before, after) in expected {
            var e = connection(in: before)
            e.peer.send(e.stack, flags: [.fin, .ack], ack: before == .finWait2 ? e.toroSequence &+ 1 : e.toroSequence, now: e.now)
            XCTAssertEqual(e.connection.state, after, "FIN in \(before)")
            XCTAssertTrue(e.connection.isReceiveFinished, "\(before): end of stream")
            let ack = e.capture.take().last
            XCTAssertEqual(ack?.acknowledgment, e.peer.sequence, "\(before): the FIN is acknowledged at once")
        }
        // A FIN that arrives again in the states after one (a retransmission): ACKed again.
        for state in [TCPState.closeWait, .closing, .lastAck, .timeWait] {
            var e = connection(in: state)
            e.peer.send(e.stack, flags: [.fin, .ack], ack: e.toroSequence, at: e.peer.sequence &- 1, now: e.now)
            XCTAssertEqual(e.connection.state, state, "\(state)")
            XCTAssertEqual(e.capture.take().map(\.acknowledgment), [e.peer.sequence], "\(state)")
        }
    }

    func testFinAheadOfMissingDataWaitsForIt() {
        var e = connection(in: .established)
        let base = e.peer.sequence
        e.peer.send(e.stack, flags: [.fin, .ack], ack: e.toroSequence, data: [4, 5], at: base &+ 3, now: e.now)
        XCTAssertEqual(e.connection.state, .established, "the FIN waits for bytes 0-2")
        e.peer.send(e.stack, flags: [.ack], ack: e.toroSequence, data: [1, 2, 3], at: base, now: e.now)
        XCTAssertEqual(e.connection.state, .closeWait)
        XCTAssertEqual(e.readAll(), [1, 2, 3, 4, 5])
        XCTAssertTrue(e.connection.isReceiveFinished)
    }

    func testOrderlyCloseFromThePeerThenUs() {
        var e = connection(in: .closeWait)
        XCTAssertEqual(e.write(Array("bye".utf8)), 3)
        e.connection.close(now: e.now)
        XCTAssertEqual(e.connection.state, .lastAck)
        let sent = e.capture.take()
        XCTAssertEqual(sent.flatMap(\.data), Array("bye".utf8))
        XCTAssertTrue(sent.last!.flags.contains(.fin), "the FIN rides on the data")
        e.peer.send(e.stack, flags: [.ack], ack: e.toroSequence &+ 4, now: e.now)
        XCTAssertEqual(e.connection.state, .closed)
        XCTAssertEqual(e.connection.closeReason, .finished)
        XCTAssertEqual(e.stack.connectionCount, 0)
    }

    func testOurFinIsRetransmittedUntilAcknowledged() {
        var e = connection(in: .finWait1)
        e.advance(TCPLimits.minimumRTO + 10_000_000)
        let again = e.capture.take()
        XCTAssertEqual(again.map(\.flags), [[.fin, .ack]])
        XCTAssertEqual(again.first?.sequence, e.toroSequence)
    }

    func testSimultaneousCloseGoesThroughClosingToTimeWait() {
        var e = connection(in: .established)
        e.connection.close(now: e.now)                                // our FIN leaves...
        XCTAssertEqual(e.capture.take().map(\.flags), [[.fin, .ack]])
        // ...and crosses theirs, which does not acknowledge ours.
        e.peer.send(e.stack, flags: [.fin, .ack], ack: e.toroSequence, now: e.now)
        XCTAssertEqual(e.connection.state, .closing)
        e.peer.send(e.stack, flags: [.ack], ack: e.toroSequence &+ 1, now: e.now)
        XCTAssertEqual(e.connection.state, .timeWait)
    }

    func testTimeWaitEndsAfterTwoMSLAndARetransmittedFinRestartsIt() {
        var e = connection(in: .timeWait)
        e.advance(TCPLimits.timeWait / 2)
        e.peer.send(e.stack, flags: [.fin, .ack], ack: e.toroSequence &+ 1, at: e.peer.sequence &- 1, now: e.now)
        XCTAssertEqual(e.capture.take().count, 1, "the lost last ACK is sent again")
        e.advance(TCPLimits.timeWait / 2 + 1_000_000)
        XCTAssertEqual(e.connection.state, .timeWait, "the retransmitted FIN restarted the wait")
        e.advance(TCPLimits.timeWait / 2)
        XCTAssertEqual(e.connection.state, .closed)
        XCTAssertEqual(e.stack.connectionCount, 0)
    }

    func testTimeWaitConnectionsAreCapped() {
        let capture = TCPCapture(ScriptedPeer.toroAddress)
        let stack = TCPStack(output: capture, secret: 3, maximumTimeWait: 10)
        let passive = stack.listen(port: 80, maximumHalfOpen: 64)!
        for i in 0 ..< 50 {
            var peer = ScriptedPeer(port: UInt16(2000 + i))
            peer.send(stack, flags: [.syn], now: 0)
            let iss = capture.take()[0].sequence
            peer.send(stack, flags: [.ack], ack: iss &+ 1, now: 0)
            let connection = passive.takeEstablished()!
            connection.close(now: 0)
            peer.send(stack, flags: [.fin, .ack], ack: iss &+ 2, now: 0)
            XCTAssertEqual(connection.state, .timeWait)
            _ = capture.take()
        }
        stack.tick(now: 1)
        XCTAssertEqual(stack.connectionCount, 10)
        XCTAssertEqual(stack.counters.timeWaitCut, 40)
    }

    func testFinWait2EndsIfThePeerNeverCloses() {
        var e = connection(in: .finWait2)
        e.advance(TCPLimits.finWait2 + 1_000_000)
        XCTAssertEqual(e.connection.state, .closed)
        XCTAssertEqual(e.stack.connectionCount, 0)
    }

    func testDataAfterTheServiceClosedAbortsWithRST() {
        var e = connection(in: .finWait2)
        e.peer.send(e.stack, flags: [.ack], ack: e.toroSequence &+ 1, data: [1, 2, 3], now: e.now)
        XCTAssertEqual(e.connection.state, .closed)
        XCTAssertEqual(e.connection.closeReason, .aborted)
        XCTAssertTrue(e.capture.take().contains { $0.flags.contains(.rst) })
    }

    func testAbortSendsRST() {
        var e = connection(in: .established)
        _ = e.write(pattern(10))
        _ = e.capture.take()
        e.connection.abort(now: e.now)
        let sent = e.capture.take()
        XCTAssertEqual(sent.map(\.flags), [[.rst, .ack]])
        XCTAssertEqual(e.connection.closeReason, .aborted)
        e.advance(1_000_000_000)
        XCTAssertTrue(e.capture.take().isEmpty, "nothing retransmitted after an abort")
    }
}
