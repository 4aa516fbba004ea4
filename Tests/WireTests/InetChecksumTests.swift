import XCTest
@testable import Wire

final class InetChecksumTests: XCTestCase {
    /// RFC 1071 §3's worked example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    func testRFC1071Example() {
        let bytes = hexBytes("00 01 f2 03 f4 f5 f6 f7")
        XCTAssertEqual(bytes.withUnsafeBytes { InternetChecksum.checksum($0) }, ~UInt16(0xDDF2))
        XCTAssertEqual(referenceChecksum(bytes), ~UInt16(0xDDF2))
    }

    func testEmptyAndZeroes() {
        XCTAssertEqual(InternetChecksum().value, 0xFFFF)
        XCTAssertEqual([UInt8](repeating: 0, count: 7).withUnsafeBytes { InternetChecksum.checksum($0) }, 0xFFFF)
        XCTAssertFalse(InternetChecksum().isValid)
    }

    /// Against the reference on lengths 0...70 (odd tails, every 4-byte phase) and every
    /// split into two or three buffers, odd splits included.
    func testAgreesWithReferenceAtEverySplit() {
        var seed: UInt32 = 12345
        for length in 0 ... 70 {
            let bytes = (0 ..< length).map { _ -> UInt8 in seed = seed &* 1_103_515_245 &+ 12345; return UInt8(seed >> 24) }
            let expected = referenceChecksum(bytes)
            XCTAssertEqual(bytes.withUnsafeBytes { InternetChecksum.checksum($0) }, expected, "length \(length)")
            for a in 0 ... length {
                for b in a ... length where b == a || b == length || (a + b) % 5 == 0 {
                    var sum = InternetChecksum()
                    bytes.withUnsafeBytes { raw in
                        sum.add(UnsafeRawBufferPointer(rebasing: raw[0 ..< a]))
                        sum.add(UnsafeRawBufferPointer(rebasing: raw[a ..< b]))
                        sum.add(UnsafeRawBufferPointer(rebasing: raw[b ..< length]))
                    }
                    XCTAssertEqual(sum.value, expected, "length \(length) split \(a) \(b)")
                }
            }
        }
    }

    /// Sums whose carries wrap many times (all 0xFF) still fold right.
    func testCarries() {
        let bytes = [UInt8](repeating: 0xFF, count: 65_535)
        XCTAssertEqual(bytes.withUnsafeBytes { InternetChecksum.checksum($0) }, referenceChecksum(bytes))
    }

    /// Field adders equal the same bytes fed as a buffer, also after an odd byte.
    func testFieldAdders() {
        var a = InternetChecksum()
        a.add(UInt16(0xABCD)); a.add(UInt32(0x0102_0304))
        XCTAssertEqual(a.value, referenceChecksum([0xAB, 0xCD, 1, 2, 3, 4]))
        var b = InternetChecksum()
        [UInt8(0x77)].withUnsafeBytes { b.add($0) }
        b.add(UInt16(0xABCD))
        XCTAssertEqual(b.value, referenceChecksum([0x77, 0xAB, 0xCD]))
    }

    func testPseudoHeaderAgainstBytes() {
        let sum = InternetChecksum.pseudoHeader(source: IPv4Address(192, 168, 1, 200), destination: IPv4Address(10, 0, 2, 15),
                                                protocol: .tcp, length: 0x1234)
        XCTAssertEqual(sum.value, referenceChecksum(pseudoHeaderBytes(source: [192, 168, 1, 200], destination: [10, 0, 2, 15],
                                                                      protocol: 6, length: 0x1234)))
    }

    func testBigEndian() {
        var bytes = [UInt8](repeating: 0, count: 7)
        bytes.withUnsafeMutableBytes { BigEndian.store(UInt32(0x0102_0304), into: $0, at: 3) }
        XCTAssertEqual(bytes, [0, 0, 0, 1, 2, 3, 4])
        XCTAssertEqual(bytes.withUnsafeBytes { BigEndian.load(UInt16.self, from: $0, at: 4) }, 0x0203)
    }
}
