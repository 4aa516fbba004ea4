import XCTest
@testable import Core

/// The tables are written through their identity addresses, so host pages stand in for
/// physical pages: the test walks exactly what the kernel would hand to CR3.
final class PageTablesTests: XCTestCase {
    var pages: [UnsafeMutableRawPointer] = []

    override func tearDown() { pages.forEach { $0.deallocate() }; pages = [] }

    func hostPage() -> UInt64? {
        let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        page.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
        pages.append(page)
        return UInt64(UInt(bitPattern: page))
    }

    func testIdentityMapsRAMAndMMIOAndLeavesTheRestOut() throws {
        var tables = try PageTables(allocatePage: { self.hostPage() })
        try tables.map([
            IdentityMapping(range: PhysicalRange(start: 0, end: 0x9FC00), uncached: false),
            IdentityMapping(range: PhysicalRange(start: 0x100000, end: 0xC000_0000), uncached: false),
            IdentityMapping(range: PhysicalRange(start: 0x1_0000_0000, end: 0x1_4000_0000), uncached: false),
            IdentityMapping(range: PhysicalRange(start: 0xFEE0_0000, end: 0xFEE0_1000), uncached: true),
        ])
        XCTAssertNil(tables.translate(0), "the null page stays unmapped")
        XCTAssertNil(tables.translate(0xFFF))
        XCTAssertEqual(tables.translate(0x1000), 0x1000)
        XCTAssertEqual(tables.translate(0x123456), 0x123456)
        XCTAssertEqual(tables.translate(0x4000_0000 + 0x1234), 0x4000_1234, "above the first GiB")
        XCTAssertEqual(tables.translate(0xBFFF_FFF8), 0xBFFF_FFF8)
        XCTAssertNil(tables.translate(0xC000_0000))
        XCTAssertEqual(tables.translate(0x1_3FFF_F000), 0x1_3FFF_F000, "above 4 GiB")
        XCTAssertNil(tables.translate(0x1_4000_0000))
        XCTAssertEqual(tables.translate(0xFEE0_0030), 0xFEE0_0030)
        XCTAssertTrue(tables.isUncached(0xFEE0_0030))
        XCTAssertFalse(tables.isUncached(0x200000))
        XCTAssertNil(tables.translate(0x0000_0DEA_D000_0000), "the fault service's address")
        // PML4 + PDPT + 4 PDs (GiB 0, 1, 2 and 4) + the PD for 0xFEE00000 (GiB 3) + 1 PT.
        XCTAssertEqual(tables.pageCount, 8)
    }

    func testRunningOutOfPagesIsAnError() throws {
        var budget = 2
        var tables = try PageTables(allocatePage: {
            guard budget > 0 else { return nil }
            budget -= 1
            return self.hostPage()
        })
        XCTAssertThrowsError(try tables.map([IdentityMapping(range: PhysicalRange(start: 0, end: 0x4000_0000), uncached: false)])) {
            XCTAssertEqual($0 as? PageTableError, .outOfMemory)
        }
    }
}
