import XCTest
@testable import Core

final class MemoryMapTests: XCTestCase {
    func map(_ entries: [(UInt64, UInt64, UInt32)]) throws -> MemoryMap {
        var map = MemoryMap()
        for (start, end, type) in entries {
            try map.append(MemoryMapEntry(range: PhysicalRange(start: start, end: end), type: type))
        }
        return map
    }

    func testRAMRangesMergeAndSubtractReserved() throws {
        // Out of order, overlapping RAM, and a reserved entry inside RAM.
        let m = try map([(0x200000, 0x400000, 1), (0x100000, 0x280000, 1), (0x300000, 0x301000, 2), (0, 0x1000, 3)])
        XCTAssertEqual(m.ramRanges, [
            PhysicalRange(start: 0x100000, end: 0x300000), PhysicalRange(start: 0x301000, end: 0x400000),
        ])
    }

    func testUsableRangesExcludeImageAndRoundToPages() throws {
        let m = try map([(0, 0x9FC00, 1), (0x100000, 0x8000000, 1)])
        let usable = m.usableRanges(excluding: [
            PhysicalRange(start: 0, end: 0x1000), PhysicalRange(start: 0x6000, end: 0x6038),
            PhysicalRange(start: 0x100000, end: 0x125000),
        ])
        XCTAssertEqual(usable, [
            PhysicalRange(start: 0x1000, end: 0x6000), PhysicalRange(start: 0x7000, end: 0x9F000),
            PhysicalRange(start: 0x125000, end: 0x8000000),
        ])
    }

    func testInstalledMemoryCountsRAMAbove4G() throws {
        let m = try map([(0, 0x9FC00, 1), (0x100000, 0xC0000000, 1), (0x1_0000_0000, 0x1_4000_0000, 1)])
        XCTAssertEqual(m.installedMiB, 4096)
    }

    func testCapacityIsEnforced() throws {
        var m = MemoryMap()
        for i in 0..<MemoryMap.capacity {
            try m.append(MemoryMapEntry(range: PhysicalRange(start: UInt64(i) << 20, end: UInt64(i + 1) << 20), type: 1))
        }
        XCTAssertThrowsError(try m.append(MemoryMapEntry(range: PhysicalRange(start: 0, end: 1), type: 1))) {
            XCTAssertEqual($0 as? MemoryMapError, .tooManyEntries)
        }
    }
}
