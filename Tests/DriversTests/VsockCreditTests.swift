import XCTest
@testable import Core
@testable import Drivers
@testable import VsockDriver
@testable import FSDriver
@testable import Wire

/// A hostile peer: lies about credit, overruns our buffer; and 32-bit counters that wrap.
final class VsockCreditTests: XCTestCase {
    /// A guest connected to a hand-driven host that advertised `bufAlloc`.
    private func guestConnected(bufAlloc: UInt32 = 1000, capacity: Int = 64 * 1024) -> VsockConnection {
        let (guest, _) = VsockConnection.connect(from: guestAddress, to: hostAddress, receiveCapacity: capacity)
        XCTAssertEqual(deliver([Packet(header: hostHeader(.response, bufAlloc: bufAlloc))], to: guest), [])
        XCTAssertEqual(guest.state, .connected)
        return guest
    }

    func testFwdCntGoingBackwardsIsALie() {
        let guest = guestConnected()
        _ = send(guest, [UInt8](repeating: 1, count: 500))
        deliver([Packet(header: hostHeader(.creditUpdate, bufAlloc: 1000, fwdCnt: 300))], to: guest)
        XCTAssertEqual(guest.writable, 800)
        let replies = deliver([Packet(header: hostHeader(.creditUpdate, bufAlloc: 1000, fwdCnt: 299))], to: guest)
        XCTAssertEqual(ops(replies), [.rst])
        XCTAssertEqual(guest.closeReason, .violation(.credit(.fwdCntBackwards)))
        XCTAssertEqual(guest.writable, 0)
    }

    func testFwdCntBeyondWhatWeSentIsALie() {
        let guest = guestConnected()
        _ = send(guest, [UInt8](repeating: 1, count: 10))
        // Claiming 11 consumed would hand out a free extra byte (and, far enough, wrap peer_free).
        let replies = deliver([Packet(header: hostHeader(.creditUpdate, bufAlloc: 1000, fwdCnt: 11))], to: guest)
        XCTAssertEqual(ops(replies), [.rst])
        XCTAssertEqual(guest.closeReason, .violation(.credit(.fwdCntBeyondSent)))
    }

    func testAHandshakeThatClaimsConsumedBytesIsALie() {
        let (guest, _) = VsockConnection.connect(from: guestAddress, to: hostAddress)
        XCTAssertEqual(ops(deliver([Packet(header: hostHeader(.response, fwdCnt: 1))], to: guest)), [.rst])
        XCTAssertEqual(guest.closeReason, .violation(.credit(.fwdCntBeyondSent)))
    }

    func testAbsurdBufAllocIsClampedToTheWindow() {
        let guest = guestConnected(bufAlloc: .max)
        XCTAssertEqual(guest.credit.peerBufAlloc, VsockCredit.maximumWindow)
        XCTAssertEqual(guest.writable, Int(VsockCredit.maximumWindow))
        // Sending the whole window and being told nothing was consumed leaves exactly 0, never a wrap.
        var credit = guest.credit
        credit.recordSent(VsockCredit.maximumWindow)
        XCTAssertEqual(credit.peerFree, 0)
        XCTAssertNil(credit.applyPeer(bufAlloc: .max, fwdCnt: 0))
        XCTAssertEqual(credit.peerFree, 0)
    }

    func testShrinkingBufAllocBelowWhatIsInFlightGivesZeroCreditNotAWrap() {
        let guest = guestConnected(bufAlloc: 1000)
        XCTAssertEqual(send(guest, [UInt8](repeating: 1, count: 800)).accepted, 800)
        // buf_alloc 100 < 800 in flight: the naive u32 difference would be 2^32 - 700.
        XCTAssertEqual(deliver([Packet(header: hostHeader(.creditUpdate, bufAlloc: 100, fwdCnt: 0))], to: guest), [])
        XCTAssertEqual(guest.state, .connected)
        XCTAssertEqual(guest.credit.peerFree, 0)
        XCTAssertEqual(send(guest, [1]).accepted, 0)
        // Forwarding 750 leaves 50 in flight: 50 free of 100.
        deliver([Packet(header: hostHeader(.creditUpdate, bufAlloc: 100, fwdCnt: 750))], to: guest)
        XCTAssertEqual(guest.writable, 50)
    }

    func testSeveralLiesInARowNeverOverflowAndEndInRST() {
        let guest = guestConnected(bufAlloc: 1000)
        _ = send(guest, [UInt8](repeating: 1, count: 1000))
        // Lie 1: huge buf_alloc with no progress (believed, clamped: 2^31 - 1000 more).
        deliver([Packet(header: hostHeader(.creditUpdate, bufAlloc: .max, fwdCnt: 0))], to: guest)
        XCTAssertEqual(guest.credit.peerFree, VsockCredit.maximumWindow - 1000)
        // Lie 2: buf_alloc 0: credit collapses to 0.
        deliver([Packet(header: hostHeader(.creditUpdate, bufAlloc: 0, fwdCnt: 0))], to: guest)
        XCTAssertEqual(guest.writable, 0)
        // Lie 3: fwd_cnt way ahead: RST, and nothing more can be written.
        XCTAssertEqual(ops(deliver([Packet(header: hostHeader(.creditUpdate, bufAlloc: .max, fwdCnt: 0x8000_0000))], to: guest)), [.rst])
        XCTAssertEqual(guest.credit.txCount, 1000)
        XCTAssertEqual(send(guest, [1]).accepted, 0)
    }

    func testReceiveOverflowIsRefusedNotBuffered() {
        let guest = guestConnected(capacity: 100)
        let payload = [UInt8](repeating: 7, count: 101)
        let replies = deliver([Packet(header: hostHeader(.rw, length: 101), payload: payload)], to: guest)
        XCTAssertEqual(ops(replies), [.rst])
        XCTAssertEqual(guest.closeReason, .violation(.receiveOverflow))
        XCTAssertEqual(guest.readable, 0)
        XCTAssertEqual(guest.credit.rxCount, 0)
    }

    func testOverflowIsJudgedAgainstWhatWeAdvertisedNotWhatWeFreed() {
        let guest = guestConnected(capacity: 100)
        deliver([Packet(header: hostHeader(.rw, length: 100), payload: [UInt8](repeating: 1, count: 100))], to: guest)
        // Reading 10 frees ring space and advertises it (a CREDIT_UPDATE with fwd_cnt 10).
        let update = receive(guest, max: 10).packets
        XCTAssertEqual(update.map { $0.header.fwdCnt }, [10])
        XCTAssertEqual(guest.credit.advertisedFree, 10)
        XCTAssertEqual(ops(deliver([Packet(header: hostHeader(.rw, length: 11), payload: [UInt8](repeating: 2, count: 11))], to: guest)), [.rst])
        XCTAssertEqual(guest.readable, 90)

        let honest = guestConnected(capacity: 100)
        deliver([Packet(header: hostHeader(.rw, length: 100), payload: [UInt8](repeating: 1, count: 100))], to: honest)
        _ = receive(honest, max: 10)
        XCTAssertEqual(deliver([Packet(header: hostHeader(.rw, length: 10), payload: [UInt8](repeating: 2, count: 10))], to: honest), [])
        XCTAssertEqual(honest.readable, 100)
    }

    /// Counters start a few bytes short of 2^32 on both sides and wrap mid-stream.
    func testCountersWrapAroundBothWays() {
        let guestStart = UInt32.max - 10
        let hostStart = UInt32.max - 300
        let (guest, host) = connectedPair(guestCapacity: 64, hostCapacity: 48, guestPacket: 20,
                                          guestTxStart: guestStart, hostTxStart: hostStart)
        let up = (0 ..< 1000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let down = (0 ..< 1000).map { UInt8(truncatingIfNeeded: $0 * 13 + 1) }
        var sentUp = 0, sentDown = 0
        var gotUp: [UInt8] = [], gotDown: [UInt8] = []
        var rounds = 0
        while (gotUp.count < up.count || gotDown.count < down.count) && rounds < 10_000 {
            rounds += 1
            let a = send(guest, Array(up[sentUp...].prefix(37)))
            sentUp += a.accepted
            XCTAssertEqual(deliver(a.packets, to: host).filter { $0.header.op == .rst }, [])
            let b = send(host, Array(down[sentDown...].prefix(29)))
            sentDown += b.accepted
            XCTAssertEqual(deliver(b.packets, to: guest).filter { $0.header.op == .rst }, [])
            let r1 = receive(host, max: 23)
            gotUp += r1.bytes
            deliver(r1.packets, to: guest)
            let r2 = receive(guest, max: 31)
            gotDown += r2.bytes
            deliver(r2.packets, to: host)
        }
        XCTAssertEqual(gotUp, up)
        XCTAssertEqual(gotDown, down)
        XCTAssertEqual([guest.state, host.state], [.connected, .connected])
        XCTAssertEqual(guest.credit.txCount, guestStart &+ 1000)   // wrapped past 2^32
        XCTAssertEqual(host.credit.txCount, hostStart &+ 1000)
        XCTAssertLessThan(guest.credit.txCount, guestStart)
        XCTAssertLessThan(host.credit.txCount, hostStart)
        XCTAssertEqual(host.credit.fwdCnt, guestStart &+ 1000)
    }

    func testLiesAreStillCaughtAcrossTheWrap() {
        let start = UInt32.max - 2
        let (guest, _) = VsockConnection.connect(from: guestAddress, to: hostAddress, receiveCapacity: 64,
                                                 maximumPacketPayload: 64, txStart: start, rxStart: 0)
        deliver([Packet(header: hostHeader(.response, bufAlloc: 100, fwdCnt: start))], to: guest)
        XCTAssertEqual(send(guest, [UInt8](repeating: 0, count: 10)).accepted, 10)   // txCount is now 7
        XCTAssertEqual(guest.credit.txCount, 7)
        deliver([Packet(header: hostHeader(.creditUpdate, bufAlloc: 100, fwdCnt: 2))], to: guest)   // 5 consumed, across 0
        XCTAssertEqual(guest.writable, 95)
        XCTAssertEqual(ops(deliver([Packet(header: hostHeader(.creditUpdate, bufAlloc: 100, fwdCnt: 8))], to: guest)), [.rst])
        XCTAssertEqual(guest.closeReason, .violation(.credit(.fwdCntBeyondSent)))
    }
}
