import Inet
import XCTest

final class SequenceNumberTests: XCTestCase {
    func testComparisonWrapsModulo2To32() {
        let near = SequenceNumber(0xFFFF_FFF0)
        let past = near + 0x20
        XCTAssertEqual(past.rawValue, 0x10)
        XCTAssertTrue(near < past)
        XCTAssertFalse(past < near)
        XCTAssertEqual(past - near, 0x20)
        XCTAssertEqual(near - past, -0x20)
        XCTAssertTrue(SequenceNumber(0xFFFF_FFFF).isWithin(near, past))
        XCTAssertFalse(past.isWithin(near, past))
        XCTAssertTrue(near.isWithin(near, past))
    }
}
