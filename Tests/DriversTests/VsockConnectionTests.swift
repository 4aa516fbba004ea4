import XCTest
@testable import Core
@testable import Drivers
@testable import VsockDriver
@testable import FSDriver
@testable import Wire

/// Handshake, data, credit exchange and teardown between two well-behaved connections.
final class VsockConnectionTests: XCTestCase {
    func testGuestConnectsToAListeningHost() {
        let (guest, request) = VsockConnection.connect(from: guestAddress, to: hostAddress)
        XCTAssertEqual(guest.state, .connecting)
        XCTAssertEqual(request.header, VsockHeader(source: guestAddress, destination: hostAddress, op: .request,
                                                   bufAlloc: 64 * 1024, fwdCnt: 0))
        let host = VsockConnection(request: request.header)!
        XCTAssertEqual(host.state, .responding)
        XCTAssertEqual(host.local, hostAddress)
        XCTAssertEqual(host.peer, guestAddress)
        XCTAssertEqual(host.credit.peerFree, 64 * 1024)
        let response = packets(host.accept())
        XCTAssertEqual(ops(response), [.response])
        XCTAssertEqual(host.state, .connected)
        XCTAssertEqual(deliver(response, to: guest), [])
        XCTAssertEqual(guest.state, .connected)
        XCTAssertEqual(guest.writable, 64 * 1024)
    }

    func testHostConnectsToAListeningGuest() {
        let (host, request) = VsockConnection.connect(from: hostAddress, to: guestAddress)
        let guest = VsockConnection(request: request.header)!
        XCTAssertEqual(deliver(packets(guest.accept()), to: host), [])
        XCTAssertEqual([host.state, guest.state], [.connected, .connected])
    }

    func testOnlyAnHonestRequestMakesAConnection() {
        XCTAssertNil(VsockConnection(request: hostHeader(.rw)))
        XCTAssertNil(VsockConnection(request: hostHeader(.response)))
        XCTAssertNil(VsockConnection(request: hostHeader(.request, fwdCnt: 5)))   // consumed bytes never sent
    }

    func testRefusingARequestSendsRST() {
        let guest = VsockConnection(request: hostHeader(.request))!
        XCTAssertEqual(ops(packets(guest.close())), [.rst])
        XCTAssertEqual(guest.state, .closed)
        XCTAssertEqual(guest.closeReason, .localClose)
        XCTAssertEqual(guest.accept(), [])
    }

    func testRSTAnswersAConnectThatNobodyListensTo() {
        let (guest, _) = VsockConnection.connect(from: guestAddress, to: hostAddress)
        XCTAssertEqual(deliver([Packet(header: hostHeader(.rst))], to: guest), [])
        XCTAssertEqual(guest.state, .closed)
        XCTAssertEqual(guest.closeReason, .refused)
    }

    func testDataFlowsBothWays() {
        let (guest, host) = connectedPair()
        let (accepted, out) = send(guest, bytes("hello, host"))
        XCTAssertEqual(accepted, 11)
        XCTAssertEqual(ops(out), [.rw])
        XCTAssertEqual(deliver(out, to: host), [])
        XCTAssertEqual(host.readable, 11)
        XCTAssertEqual(receive(host).bytes, bytes("hello, host"))

        let (back, reply) = send(host, bytes("hi, guest"))
        XCTAssertEqual(back, 9)
        deliver(reply, to: guest)
        XCTAssertEqual(receive(guest, max: 3).bytes, bytes("hi,"))
        XCTAssertEqual(receive(guest).bytes, bytes(" guest"))
        XCTAssertEqual(receive(guest).bytes, [])
        // Every header carries the sender's credit: the host's reply told the guest its 11 bytes were consumed.
        XCTAssertEqual(guest.credit.peerFwdCnt, 11)
        XCTAssertEqual(guest.credit.inFlight, 0)
    }

    func testWriteSplitsIntoPacketsOfTheChosenSize() {
        let (guest, host) = connectedPair(guestPacket: 16)
        let data = (0 ..< 40).map { UInt8($0) }
        let (accepted, out) = send(guest, data)
        XCTAssertEqual(accepted, 40)
        XCTAssertEqual(out.map { $0.header.length }, [16, 16, 8])
        XCTAssertEqual(out.map { $0.payload.count }, [16, 16, 8])
        deliver(out, to: host)
        XCTAssertEqual(receive(host).bytes, data)
    }

    func testPartialSendsWhenCreditRunsOut() {
        let (guest, host) = connectedPair(hostCapacity: 100)
        let data = (0 ..< 250).map { UInt8(truncatingIfNeeded: $0) }
        let first = send(guest, data)
        XCTAssertEqual(first.accepted, 100)
        XCTAssertEqual(guest.writable, 0)
        deliver(first.packets, to: host)

        // No credit: nothing taken, one CREDIT_REQUEST, then silence until the peer speaks.
        let stuck = send(guest, Array(data[100...]))
        XCTAssertEqual(stuck.accepted, 0)
        XCTAssertEqual(ops(stuck.packets), [.creditRequest])
        XCTAssertEqual(send(guest, Array(data[100...])).packets, [])
        XCTAssertEqual(receive(host).bytes, Array(data[0 ..< 100]))
    }

    func testCreditRequestIsAnsweredAndConsumptionReopensTheWindow() {
        let (guest, host) = connectedPair(hostCapacity: 100)
        let data = (0 ..< 250).map { UInt8(truncatingIfNeeded: $0) }
        deliver(send(guest, data).packets, to: host)
        let request = send(guest, Array(data[100...])).packets
        let update = deliver(request, to: host)
        XCTAssertEqual(ops(update), [.creditUpdate])
        XCTAssertEqual(update[0].header.bufAlloc, 100)
        XCTAssertEqual(update[0].header.fwdCnt, 0)
        deliver(update, to: guest)
        XCTAssertEqual(guest.writable, 0)

        // The host reads 60: its peer's view (0 free) is under half the buffer, so it updates.
        let (got, credit) = receive(host, max: 60)
        XCTAssertEqual(got, Array(data[0 ..< 60]))
        XCTAssertEqual(ops(credit), [.creditUpdate])
        XCTAssertEqual(credit[0].header.fwdCnt, 60)
        deliver(credit, to: guest)
        XCTAssertEqual(guest.writable, 60)
        let second = send(guest, Array(data[100...]))
        XCTAssertEqual(second.accepted, 60)
        deliver(second.packets, to: host)
        XCTAssertEqual(receive(host).bytes, Array(data[60 ..< 160]))
    }

    func testSmallReadsDoNotUpdateWhileThePeerStillSeesPlentyOfRoom() {
        let (guest, host) = connectedPair(hostCapacity: 1000)
        deliver(send(guest, [UInt8](repeating: 1, count: 100)).packets, to: host)
        XCTAssertEqual(receive(host).packets, [])   // the guest still sees 900 free
        deliver(send(guest, [UInt8](repeating: 2, count: 500)).packets, to: host)
        XCTAssertEqual(ops(receive(host, max: 1).packets), [.creditUpdate])  // 600 of 1000 unadvertised
    }

    func testPeerShutdownOfSendingEndsTheStreamAfterTheBufferedBytes() {
        let (guest, host) = connectedPair()
        deliver(send(host, bytes("last words")).packets, to: guest)
        let shutdown = packets(host.shutdown(.send))
        XCTAssertEqual(shutdown.map { $0.header.flags }, [2])
        XCTAssertEqual(host.shutdown(.send), [])   // repeated: nothing new, nothing sent
        XCTAssertEqual(deliver(shutdown, to: guest), [])
        XCTAssertEqual(guest.state, .closing)
        XCTAssertTrue(guest.isReceiveFinished)
        XCTAssertEqual(receive(guest).bytes, bytes("last words"))
        // The guest may still answer.
        XCTAssertTrue(guest.isSendOpen)
        deliver(send(guest, bytes("ok")).packets, to: host)
        XCTAssertEqual(receive(host).bytes, bytes("ok"))
        XCTAssertFalse(host.isSendOpen)
        XCTAssertEqual(send(host, bytes("more")).accepted, 0)
    }

    func testDataAfterThePeerSaidItWouldSendNoMoreIsAViolation() {
        let (guest, _) = connectedPair()
        deliver([Packet(header: hostHeader(.shutdown, flags: 2))], to: guest)
        let replies = deliver([Packet(header: hostHeader(.rw, length: 1), payload: [7])], to: guest)
        XCTAssertEqual(ops(replies), [.rst])
        XCTAssertEqual(guest.closeReason, .violation(.dataAfterShutdown))
        XCTAssertEqual(guest.readable, 0)
    }

    func testPeerShutdownOfReceivingStopsOurWrites() {
        let (guest, _) = connectedPair()
        deliver([Packet(header: hostHeader(.shutdown, flags: 1))], to: guest)
        XCTAssertEqual(guest.state, .closing)
        XCTAssertFalse(guest.isSendOpen)
        XCTAssertEqual(guest.writable, 0)
        XCTAssertEqual(send(guest, [1]).packets, [])
        XCTAssertFalse(guest.isReceiveFinished)
    }

    func testCleanDisconnectByThePeerIsAnsweredWithRST() {
        let (guest, host) = connectedPair()
        deliver(send(host, bytes("bye")).packets, to: guest)
        let replies = deliver(packets(host.close()), to: guest)   // SHUTDOWN(both), RST
        // The SHUTDOWN(both) got our RST; the host's own RST then met a closed connection.
        XCTAssertEqual(ops(replies), [.rst])
        XCTAssertEqual(guest.state, .closed)
        XCTAssertEqual(guest.closeReason, .peerClosed)
        XCTAssertEqual(receive(guest).bytes, bytes("bye"))
        XCTAssertTrue(guest.isReceiveFinished)
        XCTAssertEqual(host.closeReason, .localClose)
        XCTAssertEqual(deliver(replies, to: host), [])   // an RST is never answered
    }

    func testLocalCloseSendsShutdownThenRST() {
        let (guest, host) = connectedPair()
        let out = packets(guest.close())
        XCTAssertEqual(ops(out), [.shutdown, .rst])
        XCTAssertEqual(out[0].header.flags, 3)
        XCTAssertEqual(guest.state, .closed)
        XCTAssertEqual(guest.close(), [])
        XCTAssertEqual(ops(deliver(out, to: host)), [.rst])
        XCTAssertEqual(host.closeReason, .peerClosed)
    }

    func testHalfCloseThenFullClose() {
        let (guest, host) = connectedPair()
        let half = packets(guest.shutdown(.send))
        XCTAssertEqual(half.map { $0.header.flags }, [2])
        XCTAssertEqual(guest.state, .closing)
        XCTAssertEqual(send(guest, [1]).accepted, 0)
        deliver(half, to: host)
        XCTAssertTrue(host.isReceiveFinished)
        deliver(send(host, bytes("answer")).packets, to: guest)
        XCTAssertEqual(receive(guest).bytes, bytes("answer"))
        XCTAssertEqual(ops(packets(guest.shutdown(.receive))), [.shutdown, .rst])   // both: a close
        XCTAssertEqual(guest.closeReason, .localClose)
    }

    func testRSTOnAnEstablishedConnection() {
        let (guest, host) = connectedPair()
        deliver(send(host, bytes("x")).packets, to: guest)
        XCTAssertEqual(deliver([Packet(header: hostHeader(.rst))], to: guest), [])
        XCTAssertEqual(guest.closeReason, .reset)
        XCTAssertEqual(receive(guest).bytes, bytes("x"))
        XCTAssertEqual(send(guest, [1]).accepted, 0)
    }

    func testDataBeforeTheConnectionIsEstablishedIsRefusedWithRST() {
        let (connecting, _) = VsockConnection.connect(from: guestAddress, to: hostAddress)
        XCTAssertEqual(ops(deliver([Packet(header: hostHeader(.rw, length: 2), payload: [1, 2])], to: connecting)), [.rst])
        XCTAssertEqual(connecting.closeReason, .violation(.unexpectedOperation(.rw)))
        XCTAssertEqual(connecting.readable, 0)

        let responding = VsockConnection(request: hostHeader(.request))!
        XCTAssertEqual(ops(deliver([Packet(header: hostHeader(.rw, length: 1), payload: [1])], to: responding)), [.rst])
        XCTAssertEqual(responding.closeReason, .violation(.unexpectedOperation(.rw)))
        XCTAssertEqual(responding.accept(), [])
    }

    func testAClosedConnectionAnswersEverythingButRSTWithRST() {
        let (guest, _) = connectedPair()
        _ = guest.close()
        let replies = deliver([Packet(header: hostHeader(.rw, length: 1), payload: [1])], to: guest)
        XCTAssertEqual(replies.map { $0.header }, [VsockHeader(source: guestAddress, destination: hostAddress, op: .rst)])
        XCTAssertEqual(deliver([Packet(header: hostHeader(.rst))], to: guest), [])
        XCTAssertEqual(guest.closeReason, .localClose)
        XCTAssertEqual(guest.readable, 0)
    }

    func testUnexpectedOpsOnAnEstablishedConnection() {
        for op in [VsockOp.request, .response] {
            let (guest, _) = connectedPair()
            XCTAssertEqual(ops(deliver([Packet(header: hostHeader(op))], to: guest)), [.rst])
            XCTAssertEqual(guest.closeReason, .violation(.unexpectedOperation(op)))
        }
        let (connecting, _) = VsockConnection.connect(from: guestAddress, to: hostAddress)
        XCTAssertEqual(ops(deliver([Packet(header: hostHeader(.creditUpdate))], to: connecting)), [.rst])
    }

    func testAPacketForAnotherTupleIsAnsweredWithoutTouchingTheConnection() {
        let (guest, _) = connectedPair()
        var stray = hostHeader(.rw, length: 1)
        stray.source.port = 9
        let replies = deliver([Packet(header: stray, payload: [1])], to: guest)
        XCTAssertEqual(replies.map { $0.header }, [VsockHeader(source: guestAddress, destination: stray.source, op: .rst)])
        XCTAssertEqual(guest.state, .connected)
        XCTAssertEqual(guest.readable, 0)
    }

    func testPayloadThatIsNotLenBytesIsAViolation() {
        let (guest, _) = connectedPair()
        let actions = [UInt8](repeating: 0, count: 3).withUnsafeBytes { guest.handle(hostHeader(.rw, length: 2), payload: $0) }
        XCTAssertEqual(ops(packets(actions)), [.rst])
        XCTAssertEqual(guest.closeReason, .violation(.lengthMismatch))
    }

    func testTransportResetClosesSilently() {
        let (guest, _) = connectedPair()
        guest.transportReset()
        XCTAssertEqual(guest.state, .closed)
        XCTAssertEqual(guest.closeReason, .reset)
        XCTAssertEqual(guest.close(), [])
    }
}

/// The receive buffer grows only when used, and a refused growth resets the connection.
final class VsockReceiveBufferTests: XCTestCase {
    func testTheBufferGrowsOnlyWhenUsedAndStopsAtTheWindow() {
        let (host, request) = VsockConnection.connect(from: hostAddress, to: guestAddress)
        let guest = VsockConnection(request: request.header)!
        _ = deliver(packets(guest.accept()), to: host)
        XCTAssertEqual(guest.receiveBufferBytes, 0, "an idle connection holds no buffer")
        var sent = [UInt8](repeating: 7, count: 100)
        deliver(packets(sent.withUnsafeBytes { host.write($0).actions }, written: sent), to: guest)
        XCTAssertEqual(guest.receiveBufferBytes, 4096)
        sent = [UInt8](repeating: 9, count: 10_000)
        deliver(packets(sent.withUnsafeBytes { host.write($0).actions }, written: sent), to: guest)
        XCTAssertEqual(guest.receiveBufferBytes, 16384)
        var out = [UInt8](repeating: 0, count: 20_000)
        let (count, update) = out.withUnsafeMutableBytes { guest.read(into: $0) }
        XCTAssertEqual(count, 10_100)
        deliver(packets(update), to: host)
        XCTAssertEqual(Array(out[0..<100]), [UInt8](repeating: 7, count: 100))
        XCTAssertEqual(Array(out[100..<10_100]), [UInt8](repeating: 9, count: 10_000))
        sent = [UInt8](repeating: 1, count: 64 * 1024)
        let (accepted, actions) = sent.withUnsafeBytes { host.write($0) }
        XCTAssertEqual(accepted, 64 * 1024 - 10_100, "the host's view of our window: nothing consumed was announced")
        deliver(packets(actions, written: sent), to: guest)
        XCTAssertEqual(guest.receiveBufferBytes, 64 * 1024, "never beyond the advertised window")
        XCTAssertEqual(guest.readable, accepted)
    }

    func testARefusedGrowthResetsTheConnection() {
        let (host, request) = VsockConnection.connect(from: hostAddress, to: guestAddress)
        let guest = VsockConnection(request: request.header)!
        _ = deliver(packets(guest.accept()), to: host)
        MemoryBudget.isEnforced = true
        MemoryBudget.reserveOverride = Int.max / 4
        defer { MemoryBudget.isEnforced = false; MemoryBudget.reserveOverride = nil }
        let sent = [UInt8](repeating: 7, count: 100)
        let replies = deliver(packets(sent.withUnsafeBytes { host.write($0).actions }, written: sent), to: guest)
        XCTAssertEqual(ops(replies), [.rst])
        XCTAssertEqual(guest.state, .closed)
        XCTAssertEqual(guest.closeReason, .noMemory)
        XCTAssertEqual(guest.readable, 0)
    }
}
