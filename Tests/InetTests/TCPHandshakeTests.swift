import Inet
import Wire
import XCTest

final class TCPHandshakeTests: XCTestCase {
    func testPassiveOpenAnswersSynAckWithMSSAndCompletes() {
        let capture = TCPCapture(ScriptedPeer.toroAddress)
        let stack = TCPStack(output: capture, secret: 7)
        let passive = stack.listen(port: 80, maximumHalfOpen: 4)!
        var peer = ScriptedPeer()
        peer.send(stack, flags: [.syn], mss: 1000, now: 0)
        let sent = capture.take()
        XCTAssertEqual(sent.count, 1)
        XCTAssertEqual(sent[0].flags, [.syn, .ack])
        XCTAssertEqual(sent[0].acknowledgment, 1001)
        XCTAssertEqual(sent[0].header.maximumSegmentSize, 1460)
        XCTAssertNil(passive.takeEstablished(), "not established before the peer's ACK")
        peer.send(stack, flags: [.ack], ack: sent[0].sequence &+ 1, now: 1000)
        let connection = passive.takeEstablished()
        XCTAssertEqual(connection?.state, .established)
        XCTAssertEqual(connection?.sendSegment, 1000, "the peer's MSS is honoured")
        XCTAssertTrue(capture.take().isEmpty, "nothing to say after the handshake")
    }

    func testActiveOpenSendsSynAndEstablishesOnSynAck() {
        let capture = TCPCapture(ScriptedPeer.toroAddress)
        let stack = TCPStack(output: capture, secret: 7)
        let connection = stack.connect(to: TCPEndpoint(ScriptedPeer.peerAddress, 1234), now: 0)!
        let syn = capture.take()
        XCTAssertEqual(syn.count, 1)
        XCTAssertEqual(syn[0].flags, [.syn])
        XCTAssertEqual(syn[0].header.maximumSegmentSize, 1460)
        XCTAssertEqual(connection.state, .synSent)
        var peer = ScriptedPeer(port: 1234, toroPort: connection.local.port, sequence: 5000)
        peer.send(stack, flags: [.syn, .ack], ack: syn[0].sequence &+ 1, mss: 536, now: 10)
        XCTAssertEqual(connection.state, .established)
        let ack = capture.take()
        XCTAssertEqual(ack.count, 1)
        XCTAssertEqual(ack[0].flags, [.ack])
        XCTAssertEqual(ack[0].acknowledgment, 5001)
        XCTAssertEqual(connection.sendSegment, 536)
    }

    func testSynToAClosedPortIsReset() {
        let capture = TCPCapture(ScriptedPeer.toroAddress)
        let stack = TCPStack(output: capture, secret: 7)
        var peer = ScriptedPeer(toroPort: 81)
        peer.send(stack, flags: [.syn], now: 0)
        let sent = capture.take()
        XCTAssertEqual(sent.count, 1)
        XCTAssertEqual(sent[0].flags, [.rst, .ack])
        XCTAssertEqual(sent[0].sequence, 0)
        XCTAssertEqual(sent[0].acknowledgment, 1001)
        // An ACK to nothing: RST whose sequence is the ACK field.
        peer.send(stack, flags: [.ack], ack: 777, now: 0)
        let second = capture.take()
        XCTAssertEqual(second.map(\.flags), [[.rst]])
        XCTAssertEqual(second.first?.sequence, 777)
        // An RST to nothing: silence.
        peer.send(stack, flags: [.rst], now: 0)
        XCTAssertTrue(capture.take().isEmpty)
        XCTAssertEqual(stack.counters.resetsSent, 2)
    }

    func testRefusedConnectIsReported() {
        let capture = TCPCapture(ScriptedPeer.toroAddress)
        let stack = TCPStack(output: capture, secret: 7)
        let connection = stack.connect(to: TCPEndpoint(ScriptedPeer.peerAddress, 9), now: 0)!
        let syn = capture.take()[0]
        var peer = ScriptedPeer(port: 9, toroPort: connection.local.port, sequence: 0)
        // An RST whose ACK does not cover the SYN is ignored (RFC 9293 §3.10.7.3).
        peer.send(stack, flags: [.rst, .ack], ack: syn.sequence, now: 1)
        XCTAssertEqual(connection.state, .synSent)
        peer.send(stack, flags: [.rst, .ack], ack: syn.sequence &+ 1, now: 2)
        XCTAssertEqual(connection.state, .closed)
        XCTAssertEqual(connection.closeReason, .refused)
        XCTAssertEqual(stack.connectionCount, 0, "the stack forgets a closed connection")
    }

    func testSynRetransmittedWithBackoffThenGivesUp() {
        let capture = TCPCapture(ScriptedPeer.toroAddress)
        let stack = TCPStack(output: capture, secret: 7)
        let connection = stack.connect(to: TCPEndpoint(ScriptedPeer.peerAddress, 9), now: 0)!
        XCTAssertEqual(capture.take().count, 1)
        var now: UInt64 = 0
        var gaps: [UInt64] = []
        var last: UInt64 = 0
        while connection.state == .synSent && now < 120_000_000_000 {
            now += 10_000_000
            stack.tick(now: now)
            let sent = capture.take()
            if sent.contains(where: { $0.flags == [.syn] }) {
                gaps.append(now - last)
                last = now
            }
        }
        XCTAssertEqual(connection.closeReason, .timedOut)
        XCTAssertEqual(gaps.count, 4, "four retransmissions of the SYN")
        for (a, b) in zip(gaps, gaps.dropFirst()) {
            XCTAssertEqual(Double(b) / Double(a), 2, accuracy: 0.05, "each retransmission waits twice as long")
        }
    }

    func testSynAckRetransmittedWhenThePeerResendsItsSyn() {
        let capture = TCPCapture(ScriptedPeer.toroAddress)
        let stack = TCPStack(output: capture, secret: 7)
        _ = stack.listen(port: 80, maximumHalfOpen: 4)
        var peer = ScriptedPeer()
        peer.send(stack, flags: [.syn], now: 0)
        let first = capture.take()
        peer.send(stack, flags: [.syn], at: 1000, now: 5)
        let again = capture.take()
        XCTAssertEqual(again.map(\.flags), [[.syn, .ack]])
        XCTAssertEqual(again.first?.sequence, first.first?.sequence)
        XCTAssertEqual(stack.connectionCount, 1)
    }

    func testAnUnacceptableAckInSynReceivedIsReset() {
        let capture = TCPCapture(ScriptedPeer.toroAddress)
        let stack = TCPStack(output: capture, secret: 7)
        let passive = stack.listen(port: 80, maximumHalfOpen: 4)!
        var peer = ScriptedPeer()
        peer.send(stack, flags: [.syn], now: 0)
        let synAck = capture.take()[0]
        peer.send(stack, flags: [.ack], ack: synAck.sequence &+ 50, now: 1)
        XCTAssertEqual(capture.take().map(\.flags), [[.rst]])
        XCTAssertNil(passive.takeEstablished())
    }

    func testSimultaneousOpen() {
        let capture = TCPCapture(ScriptedPeer.toroAddress)
        let stack = TCPStack(output: capture, secret: 7)
        let connection = stack.connect(to: TCPEndpoint(ScriptedPeer.peerAddress, 5555), now: 0)!
        let syn = capture.take()[0]
        var peer = ScriptedPeer(port: 5555, toroPort: connection.local.port, sequence: 300)
        peer.send(stack, flags: [.syn], now: 1)                    // the peer's own SYN crosses ours
        XCTAssertEqual(connection.state, .synReceived)
        let synAck = capture.take()
        XCTAssertEqual(synAck.map(\.flags), [[.syn, .ack]])
        XCTAssertEqual(synAck.first?.sequence, syn.sequence)
        peer.send(stack, flags: [.ack], ack: syn.sequence &+ 1, now: 2)
        XCTAssertEqual(connection.state, .established)
    }

    func testInitialSequenceNumbersDifferPerConnection() {
        let capture = TCPCapture(ScriptedPeer.toroAddress)
        let stack = TCPStack(output: capture, secret: 99)
        _ = stack.listen(port: 80, maximumHalfOpen: 16)
        var sequences = Set<UInt32>()
        for port in UInt16(40000) ..< 40010 {
            var peer = ScriptedPeer(port: port)
            peer.send(stack, flags: [.syn], now: 0)
            sequences.insert(capture.take()[0].sequence)
        }
        XCTAssertEqual(sequences.count, 10, "each 4-tuple gets its own ISN at the same instant")
    }

    func testSynFloodCostsBoundedMemoryAndARealClientGetsThrough() {
        let capture = TCPCapture(ScriptedPeer.toroAddress)
        let stack = TCPStack(output: capture, secret: 7)
        let passive = stack.listen(port: 80, maximumHalfOpen: 8)!
        for i in 0 ..< 5000 {
            var flooder = ScriptedPeer(port: UInt16(1024 + i % 60000), sequence: UInt32(i))
            flooder.send(stack, flags: [.syn], now: UInt64(i))
            XCTAssertLessThanOrEqual(stack.connectionCount, 8)
        }
        XCTAssertEqual(passive.halfOpenDisplaced, 5000 - 8)
        _ = capture.take()
        var client = ScriptedPeer(port: 65000)
        client.send(stack, flags: [.syn], now: 10_000)
        let synAck = capture.take().last!
        client.send(stack, flags: [.ack], ack: synAck.sequence &+ 1, now: 10_001)
        XCTAssertEqual(passive.takeEstablished()?.remote.port, 65000)
        // The flood's leftovers time out: their SYN-ACKs are retransmitted, then dropped.
        var now: UInt64 = 10_001
        while stack.connectionCount > 1 && now < 100_000_000_000 {
            now += 100_000_000
            stack.tick(now: now)
        }
        XCTAssertEqual(stack.connectionCount, 1, "only the real client's connection is left")
    }

    func testAdmissionRefusalResetsTheConnection() {
        let capture = TCPCapture(ScriptedPeer.toroAddress)
        let stack = TCPStack(output: capture, secret: 7)
        let passive = stack.listen(port: 80, maximumHalfOpen: 4)!
        passive.admit = { _, _ in false }
        var peer = ScriptedPeer()
        peer.send(stack, flags: [.syn], now: 0)
        let synAck = capture.take()[0]
        peer.send(stack, flags: [.ack], ack: synAck.sequence &+ 1, now: 1)
        XCTAssertEqual(capture.take().map(\.flags), [[.rst, .ack]])
        XCTAssertEqual(passive.refused, 1)
        XCTAssertEqual(stack.connectionCount, 0)
    }

    func testMalformedSegmentsAreCountedAndIgnored() {
        let capture = TCPCapture(ScriptedPeer.toroAddress)
        let stack = TCPStack(output: capture, secret: 7)
        _ = stack.listen(port: 80, maximumHalfOpen: 4)
        var bytes = ScriptedPeer().segment(flags: [.syn])
        bytes[4] ^= 0xFF                                            // the checksum no longer matches
        bytes.withUnsafeBytes { stack.receive(from: ScriptedPeer.peerAddress, to: ScriptedPeer.toroAddress, payload: $0, now: 0) }
        [UInt8](repeating: 0, count: 7).withUnsafeBytes {
            stack.receive(from: ScriptedPeer.peerAddress, to: ScriptedPeer.toroAddress, payload: $0, now: 0)
        }
        XCTAssertEqual(stack.counters.malformed, 2)
        XCTAssertTrue(capture.take().isEmpty)
        XCTAssertEqual(stack.connectionCount, 0)
    }
}
