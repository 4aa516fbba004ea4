import XCTest
@testable import Wire

/// The credit arithmetic alone (virtio 1.2 §5.10.6.3); DriversTests' VsockCreditTests drive
/// the same rules through a connection and a hostile peer.
final class VsockCreditRulesTests: XCTestCase {
    func testCreditRulesDirectly() {
        var credit = VsockCredit(bufAlloc: 10, txStart: 5, rxStart: 0)
        XCTAssertEqual(credit.peerFree, 0)                       // nothing heard from the peer yet
        XCTAssertNil(credit.applyPeer(bufAlloc: 8, fwdCnt: 5))
        credit.recordSent(8)
        XCTAssertEqual(credit.applyPeer(bufAlloc: 8, fwdCnt: 4), .fwdCntBackwards)
        XCTAssertEqual(credit.applyPeer(bufAlloc: 8, fwdCnt: 14), .fwdCntBeyondSent)
        XCTAssertEqual(credit.peerFwdCnt, 5)                     // a lie changes nothing
        XCTAssertNil(credit.applyPeer(bufAlloc: 8, fwdCnt: 13))
        XCTAssertEqual(credit.peerFree, 8)

        XCTAssertFalse(credit.recordReceived(11))
        XCTAssertTrue(credit.recordReceived(10))
        XCTAssertFalse(credit.recordReceived(1))
        credit.recordConsumed(6)
        XCTAssertTrue(credit.wantsCreditUpdate)
        var header = VsockHeader(source: guestAddress, destination: hostAddress, op: .creditUpdate)
        credit.stamp(&header)
        XCTAssertEqual([header.bufAlloc, header.fwdCnt], [10, 6])
        XCTAssertFalse(credit.wantsCreditUpdate)
        XCTAssertTrue(credit.recordReceived(6))
    }
}
