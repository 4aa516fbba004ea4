// The page-frame allocator over host memory: the real code, with host pages as "RAM".
import XCTest
import TestSupport
@testable import Core

/// Page-aligned host memory that stands in for physical RAM; freed with the test.
private final class HostRAM {
    let base: UnsafeMutableRawPointer
    let bytes: Int
    init(pages: Int) {
        bytes = pages * 4096
        base = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
    }
    deinit { base.deallocate() }
    var start: UInt64 { UInt64(UInt(bitPattern: base)) }
    func range(_ fromPage: Int, _ toPage: Int) -> PhysicalRange {
        PhysicalRange(start: start + UInt64(fromPage) * 4096, end: start + UInt64(toPage) * 4096)
    }
}

final class PageFrameAllocatorTests: XCTestCase {
    private func extents(_ allocator: PageFrameAllocator) -> [PhysicalRange] {
        var result: [PhysicalRange] = []
        allocator.forEachFreeExtent { result.append($0) }
        return result
    }

    func testAddFreeRoundsInwardAndIgnoresSmallRanges() {
        let ram = HostRAM(pages: 16)
        defer { withExtendedLifetime(ram) {} }
        var allocator = PageFrameAllocator()
        // 1 byte into page 1 up to 1 byte into page 5: pages 2, 3, 4.
        let added = allocator.addFree(PhysicalRange(start: ram.start + 4096 + 1, end: ram.start + 5 * 4096 + 1))
        XCTAssertEqual(added, 3)
        XCTAssertEqual(extents(allocator), [ram.range(2, 5)])
        XCTAssertEqual(allocator.addFree(PhysicalRange(start: ram.start + 8 * 4096 + 8, end: ram.start + 9 * 4096 + 8)), 0)
        XCTAssertEqual(allocator.addFree(PhysicalRange(start: ram.start + 10 * 4096, end: ram.start + 10 * 4096)), 0)
        // Page 0 is never used, even when offered.
        XCTAssertEqual(allocator.addFree(PhysicalRange(start: 0, end: 4096)), 0)
        XCTAssertEqual(allocator.freePages, 3)
        XCTAssertEqual(allocator.totalPages, 3)
        XCTAssertTrue(allocator.isConsistent())
    }

    func testAddFreeSkipsMemoryThatIsAlreadyFreeAndCoalesces() {
        let ram = HostRAM(pages: 32)
        defer { withExtendedLifetime(ram) {} }
        var allocator = PageFrameAllocator()
        allocator.addFree(ram.range(4, 8))
        allocator.addFree(ram.range(12, 16))
        XCTAssertEqual(allocator.addFree(ram.range(4, 8)), 0)
        // Covers both extents and the gaps around them: only the gaps are new.
        XCTAssertEqual(allocator.addFree(ram.range(2, 20)), 10)
        XCTAssertEqual(extents(allocator), [ram.range(2, 20)])
        XCTAssertEqual(allocator.freePages, 18)
        XCTAssertEqual(allocator.totalPages, 18)
        XCTAssertTrue(allocator.isConsistent())
    }

    func testAllocatesFromEveryDisjointRange() {
        let ram = HostRAM(pages: 256)
        defer { withExtendedLifetime(ram) {} }
        let ranges = [ram.range(1, 17), ram.range(40, 41), ram.range(100, 164), ram.range(200, 230)]
        var allocator = PageFrameAllocator()
        for range in ranges { allocator.addFree(range) }
        XCTAssertEqual(allocator.totalPages, 16 + 1 + 64 + 30)
        XCTAssertEqual(allocator.extentCount, 4)
        var perRange = [Int](repeating: 0, count: ranges.count)
        var seen = Set<UInt64>()
        while let page = allocator.allocate(pages: 1) {
            XCTAssertEqual(page % 4096, 0)
            XCTAssertTrue(seen.insert(page).inserted, "page handed out twice")
            guard let index = ranges.firstIndex(where: { $0.contains(page) }) else {
                return XCTFail("page outside every range")
            }
            perRange[index] += 1
            // The memory is real: write its first and last words.
            UnsafeMutablePointer<UInt64>(bitPattern: UInt(page))!.pointee = page
            UnsafeMutablePointer<UInt64>(bitPattern: UInt(page + 4088))!.pointee = ~page
        }
        XCTAssertEqual(perRange, [16, 1, 64, 30])
        XCTAssertEqual(allocator.freePages, 0)
        XCTAssertEqual(allocator.extentCount, 0)
        XCTAssertNil(allocator.allocate(pages: 1))
    }

    func testContiguousRunsAndCoalescingRestoresOneExtent() throws {
        let ram = HostRAM(pages: 64)
        defer { withExtendedLifetime(ram) {} }
        var allocator = PageFrameAllocator()
        allocator.addFree(ram.range(0, 64))
        let runs = (0..<6).map { _ in allocator.allocate(pages: 10)! }
        for run in runs {
            XCTAssertEqual(run % 4096, 0)
            XCTAssertTrue(ram.range(0, 64).contains(run) && run + 10 * 4096 <= ram.range(0, 64).end)
        }
        let sorted = runs.sorted()
        for (a, b) in zip(sorted, sorted.dropFirst()) { XCTAssertGreaterThanOrEqual(b, a + 10 * 4096) }
        XCTAssertEqual(allocator.freePages, 4)
        // Free in an order that creates holes first, then fills them.
        for index in [1, 3, 5, 0, 4, 2] {
            try allocator.free(runs[index], pages: 10)
            XCTAssertTrue(allocator.isConsistent())
        }
        XCTAssertEqual(extents(allocator), [ram.range(0, 64)])
        XCTAssertEqual(allocator.freePages, 64)
        // Part of a run can go back on its own.
        let run = allocator.allocate(pages: 8)!
        try allocator.free(run + 2 * 4096, pages: 3)
        XCTAssertEqual(allocator.freePages, 59)
        try allocator.free(run, pages: 2)
        try allocator.free(run + 5 * 4096, pages: 3)
        XCTAssertEqual(extents(allocator), [ram.range(0, 64)])
    }

    func testExhaustionAndOversizedRequestsReturnNil() {
        let ram = HostRAM(pages: 40)
        defer { withExtendedLifetime(ram) {} }
        var allocator = PageFrameAllocator()
        allocator.addFree(ram.range(0, 10))
        allocator.addFree(ram.range(20, 30))
        XCTAssertNil(allocator.allocate(pages: 11), "no contiguous run of 11 pages")
        XCTAssertNil(allocator.allocate(pages: 0))
        XCTAssertNil(allocator.allocate(pages: -1))
        XCTAssertNotNil(allocator.allocate(pages: 10))
        XCTAssertNotNil(allocator.allocate(pages: 10))
        XCTAssertNil(allocator.allocate(pages: 1))
        XCTAssertEqual(allocator.freePages, 0)
    }

    func testBelowLimit() {
        let ram = HostRAM(pages: 64)
        defer { withExtendedLifetime(ram) {} }
        var allocator = PageFrameAllocator()
        allocator.addFree(ram.range(0, 16))
        allocator.addFree(ram.range(32, 64))
        let limit = ram.range(0, 8).end
        let low = allocator.allocate(pages: 4, below: limit)!
        XCTAssertLessThanOrEqual(low + 4 * 4096, limit)
        XCTAssertNil(allocator.allocate(pages: 5, below: limit), "only pages 0..<4 left below the limit")
        XCTAssertNotNil(allocator.allocate(pages: 4, below: limit))
        XCTAssertNil(allocator.allocate(pages: 1, below: limit))
        // Without a limit the highest memory goes first.
        XCTAssertEqual(allocator.allocate(pages: 1), ram.range(63, 64).start)
        // A limit inside the upper range splits it.
        let middle = allocator.allocate(pages: 2, below: ram.range(0, 40).end)!
        XCTAssertEqual(middle, ram.range(38, 40).start)
        XCTAssertTrue(allocator.isConsistent())
    }

    func testDoubleFreeAndBadFreesAreRefusedWithoutCorruption() throws {
        let ram = HostRAM(pages: 32)
        defer { withExtendedLifetime(ram) {} }
        var allocator = PageFrameAllocator()
        allocator.addFree(ram.range(0, 32))
        let run = allocator.allocate(pages: 4)!
        try allocator.free(run, pages: 4)
        let before = extents(allocator)
        XCTAssertThrowsError(try allocator.free(run, pages: 4)) {
            XCTAssertEqual($0 as? PageFrameAllocator.FreeError, .overlapsFreeMemory)
        }
        let upper = allocator.allocate(pages: 4)!
        let other = allocator.allocate(pages: 4)!
        XCTAssertEqual(upper, other + 4 * 4096, "highest memory first")
        try allocator.free(upper, pages: 4)
        // One page too many: overlaps the free run after it.
        XCTAssertThrowsError(try allocator.free(other, pages: 5)) {
            XCTAssertEqual($0 as? PageFrameAllocator.FreeError, .overlapsFreeMemory)
        }
        XCTAssertThrowsError(try allocator.free(other + 1, pages: 1)) {
            XCTAssertEqual($0 as? PageFrameAllocator.FreeError, .invalidArgument)
        }
        XCTAssertThrowsError(try allocator.free(other, pages: 0)) {
            XCTAssertEqual($0 as? PageFrameAllocator.FreeError, .invalidArgument)
        }
        XCTAssertThrowsError(try allocator.free(ram.range(32, 33).start, pages: 1)) {
            XCTAssertEqual($0 as? PageFrameAllocator.FreeError, .outsideManagedMemory)
        }
        XCTAssertEqual(allocator.freePages, 28)
        try allocator.free(other, pages: 4)
        XCTAssertEqual(extents(allocator), before)
        XCTAssertEqual(allocator.freePages, 32)
        XCTAssertTrue(allocator.isConsistent())
    }

    func testRandomSequenceAgainstModel() throws {
        let ram = HostRAM(pages: 1200)
        defer { withExtendedLifetime(ram) {} }
        let ranges = [ram.range(1, 300), ram.range(310, 311), ram.range(400, 900), ram.range(905, 1199)]
        var allocator = PageFrameAllocator()
        for range in ranges { allocator.addFree(range) }
        let total = allocator.totalPages
        var rng = RNG(state: 42)
        var live: [(address: UInt64, pages: Int)] = []
        var used = Set<UInt64>()
        for step in 0..<30_000 {
            if live.isEmpty || rng.below(100) < 55 {
                let pages = rng.below(10) == 0 ? 1 + rng.below(64) : 1 + rng.below(4)
                let limit: UInt64 = rng.below(4) == 0 ? ram.range(0, 700).end : .max
                guard let address = allocator.allocate(pages: pages, below: limit) else { continue }
                XCTAssertLessThanOrEqual(address + UInt64(pages) * 4096, limit)
                for page in 0..<pages {
                    let a = address + UInt64(page) * 4096
                    XCTAssertTrue(ranges.contains { $0.contains(a) }, "outside the RAM ranges")
                    XCTAssertTrue(used.insert(a).inserted, "overlaps a live allocation")
                }
                live.append((address, pages))
            } else {
                let victim = live.remove(at: rng.below(live.count))
                // Sometimes give a run back in two pieces.
                if victim.pages > 1 && rng.below(3) == 0 {
                    let split = 1 + rng.below(victim.pages - 1)
                    try allocator.free(victim.address + UInt64(split) * 4096, pages: victim.pages - split)
                    try allocator.free(victim.address, pages: split)
                } else {
                    try allocator.free(victim.address, pages: victim.pages)
                }
                for page in 0..<victim.pages { used.remove(victim.address + UInt64(page) * 4096) }
                if rng.below(50) == 0 {
                    XCTAssertThrowsError(try allocator.free(victim.address, pages: victim.pages), "double free")
                }
            }
            XCTAssertEqual(allocator.freePages, total - used.count)
            if step % 1000 == 0 { XCTAssertTrue(allocator.isConsistent()) }
        }
        for run in live { try allocator.free(run.address, pages: run.pages) }
        XCTAssertEqual(allocator.freePages, total)
        XCTAssertEqual(extents(allocator), ranges)
        XCTAssertTrue(allocator.isConsistent())
    }

    func testSharedAllocatorKeepsItsStateInItsOwnMemory() throws {
        let ram = HostRAM(pages: 16)
        defer { withExtendedLifetime(ram) {} }
        var allocator = PageFrameAllocator()
        allocator.addFree(ram.range(0, 16))
        let shared = try XCTUnwrap(SharedPageAllocator(allocator))
        XCTAssertEqual(shared.freePages, 16 - SharedPageAllocator.ownPages)
        let page = try XCTUnwrap(shared.allocate(pages: 2))
        try shared.free(page, pages: 2)
        XCTAssertThrowsError(try shared.free(page, pages: 2)) {
            XCTAssertEqual($0 as? PageFrameAllocator.FreeError, .overlapsFreeMemory)
        }
        XCTAssertEqual(shared.freePages, 16 - SharedPageAllocator.ownPages)
        XCTAssertEqual(shared.totalPages, 16)
    }
}
