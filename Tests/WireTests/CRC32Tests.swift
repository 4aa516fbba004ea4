// CRC-32 (IEEE 802.3, zlib's crc32) against the catalogue's check value and values
// computed with Python's zlib.crc32, and the slicing-by-8 path against the bytewise one.

import XCTest
import TestSupport
@testable import Wire

final class CRC32Tests: XCTestCase {
    func testCheckValue() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
    }

    func testAgainstZlib() {
        // python3 -c "import zlib; print(hex(zlib.crc32(...)))"
        XCTAssertEqual(CRC32.checksum([UInt8]()), 0)
        XCTAssertEqual(CRC32.checksum(Array("a".utf8)), 0xE8B7_BE43)
        XCTAssertEqual(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)), 0x414F_A339)
        let ramp = (0..<4).flatMap { _ in (0...255).map { UInt8($0) } }
        XCTAssertEqual(CRC32.checksum(ramp), 0xB70B_4C26)
        XCTAssertEqual(CRC32.checksum([UInt8](repeating: 0, count: 1000)), 0x060B_1780)
        XCTAssertEqual(CRC32.checksum([UInt8](repeating: 0xFF, count: 37)), 0xEDAE_7051)
    }

    /// Any split of the input gives the same value, and the 8-byte path equals the
    /// 1-byte one (a non-contiguous collection takes the byte loop).
    func testSplitsAndPathsAgree() {
        var rng = RNG(seed: 32)
        for _ in 0..<50 {
            let bytes = (0..<rng.below(300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let whole = CRC32.checksum(bytes)
            XCTAssertEqual(CRC32.checksum(bytes.lazy.map { $0 }), whole)
            var split = CRC32()
            let cut = bytes.isEmpty ? 0 : rng.below(bytes.count)
            split.update(bytes[..<cut])
            split.update(bytes[cut...])
            XCTAssertEqual(split.value, whole)
        }
    }
}
