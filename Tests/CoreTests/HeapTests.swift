// The per-CPU heaps and KernelMemory over host memory, checked against a model.
import XCTest
import TestSupport
@testable import Core
#if canImport(Glibc)
import Glibc
#endif

/// Page-aligned host memory that stands in for physical RAM; freed with the test.
private final class HostRAM {
    let base: UnsafeMutableRawPointer
    init(pages: Int) { base = UnsafeMutableRawPointer.allocate(byteCount: pages * 4096, alignment: 4096) }
    deinit { base.deallocate() }
    func range(_ fromPage: Int, _ toPage: Int) -> PhysicalRange {
        let start = UInt64(UInt(bitPattern: base))
        return PhysicalRange(start: start + UInt64(fromPage) * 4096, end: start + UInt64(toPage) * 4096)
    }
}

extension RNG {
    /// Mostly small, some page-sized, a few up to 64 KiB; 5% zero.
    mutating func size() -> Int {
        switch below(100) {
        case 0..<5: return 0
        case 5..<70: return 1 + below(256)
        case 70..<92: return 257 + below(4096 - 256)
        case 92..<98: return 4097 + below(16384 - 4096)
        default: return 16385 + below(65536 - 16384)
        }
    }

    /// 16 (the default) three times in four, otherwise any power of two up to 4096,
    /// and rarely 8192 or 65536.
    mutating func alignment() -> Int {
        switch below(100) {
        case 0..<75: return 16
        case 75..<99: return 1 << below(13)
        default: return below(2) == 0 ? 8192 : 65536
        }
    }
}/// The test's picture of the heap: live blocks, their fill bytes, and the counters the
/// heap must report.
private struct Model {
    struct Block { var pointer: UnsafeMutableRawPointer; var size: Int; var fill: UInt8 }
    var blocks: [Block] = []
    /// Sorted, non-overlapping [start, end) of live payloads (zero-size ones count as 1 byte).
    var intervals: [(start: UInt, end: UInt)] = []
    var bytesInUse = 0
    var peak = 0
    var failedFrees = 0

    private func position(_ start: UInt) -> Int {
        var low = 0, high = intervals.count
        while low < high {
            let mid = (low + high) / 2
            if intervals[mid].start < start { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Records a new block; false if it overlaps a live one.
    mutating func insert(_ block: Block) -> Bool {
        let start = UInt(bitPattern: block.pointer)
        let end = start + UInt(max(block.size, 1))
        let index = position(start)
        if index > 0 && intervals[index - 1].end > start { return false }
        if index < intervals.count && intervals[index].start < end { return false }
        intervals.insert((start, end), at: index)
        blocks.append(block)
        return true
    }

    mutating func remove(at index: Int) -> Block {
        let block = blocks[index]
        blocks.swapAt(index, blocks.count - 1)
        blocks.removeLast()
        intervals.remove(at: position(UInt(bitPattern: block.pointer)))
        return block
    }
}

private func fill(_ block: Model.Block) {
    memset(block.pointer, Int32(block.fill), block.size)
}

/// True if the first `count` bytes all equal the block's fill byte.
private func holds(_ block: Model.Block, count: Int) -> Bool {
    guard count > 0 else { return true }
    let bytes = block.pointer.assumingMemoryBound(to: UInt8.self)
    return bytes[0] == block.fill && memcmp(block.pointer, block.pointer + 1, count - 1) == 0
}

final class HeapTests: XCTestCase {
    /// The host memory of the current test, kept alive until the test ends.
    private var memory: [HostRAM] = []

    override func tearDown() {
        memory.removeAll()
        super.tearDown()
    }

    /// A kernel heap over `pages` pages of host RAM given as three disjoint ranges.
    private func makeHeap(pages: Int) throws -> (HostRAM, KernelHeap) {
        let ram = HostRAM(pages: pages + 8)
        memory.append(ram)
        var allocator = PageFrameAllocator()
        let third = pages / 3
        allocator.addFree(ram.range(0, third))
        allocator.addFree(ram.range(third + 2, 2 * third + 2))
        allocator.addFree(ram.range(2 * third + 4, pages + 4))
        return (ram, try XCTUnwrap(KernelHeap(pageAllocator: allocator)))
    }

    private func assertIdentity(_ s: HeapStatistics, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(s.pagesHeld * 4096, s.bytesInUse + s.bytesFree + s.bytesOverhead, file: file, line: line)
        XCTAssertGreaterThanOrEqual(s.bytesFree, 0, file: file, line: line)
    }

    func testSizeClassTable() {
        var previous = 16
        for index in 0..<SizeClass.count {
            let block = SizeClass.blockBytes(index)
            XCTAssertGreaterThan(block, previous)
            XCTAssertEqual(block % 16, 0)
            XCTAssertEqual(SizeClass.index(forBlockBytes: block), index)
            XCTAssertEqual(SizeClass.index(forBlockBytes: previous + 1), index)
            // The slab rule: at least 4 blocks, at most 1/8 wasted, and no fewer pages would do.
            let pages = SizeClass.slabPages(index)
            func fits(_ pages: Int) -> Bool {
                let usable = pages * 4096 - SizeClass.slabHeaderBytes
                return usable / block >= 4 && (usable % block) * 8 <= pages * 4096
            }
            XCTAssertTrue(fits(pages), "class \(index)")
            if pages > 1 { XCTAssertFalse(fits(pages - 1), "class \(index) could use fewer pages") }
            XCTAssertEqual(SizeClass.blocksPerSlab(index), (pages * 4096 - 64) / block)
            previous = block
        }
        XCTAssertEqual(previous, SizeClass.largestBlock)
    }

    func testAlignmentAndZeroSize() throws {
        let (_, kernel) = try makeHeap(pages: 2048)
        var pointers: [UnsafeMutableRawPointer] = []
        for shift in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16] {
            let alignment = 1 << shift
            for size in [0, 1, 100, 3000, 10_000] {
                let p = try XCTUnwrap(kernel.allocate(size: size, alignment: alignment, cpu: 0))
                XCTAssertEqual(UInt(bitPattern: p) % UInt(max(alignment, 16)), 0, "alignment \(alignment) size \(size)")
                XCTAssertGreaterThanOrEqual(CPUHeap.capacity(of: p) ?? -1, size)
                memset(p, 0x5A, size)
                pointers.append(p)
            }
        }
        let zeros = (0..<100).map { _ in kernel.allocate(size: 0, cpu: 0)! }
        XCTAssertEqual(Set(zeros).count, 100, "zero-size allocations are unique")
        XCTAssertEqual(kernel.statistics(cpu: 0)!.liveAllocations, pointers.count + 100)
        for p in pointers + zeros { XCTAssertTrue(kernel.free(p, cpu: 0)) }
        let s = kernel.statistics(cpu: 0)!
        XCTAssertEqual(s.bytesInUse, 0)
        XCTAssertEqual(s.liveAllocations, 0)
        assertIdentity(s)
    }

    func testInvalidRequestsReturnNil() throws {
        let (_, kernel) = try makeHeap(pages: 64)
        XCTAssertNil(kernel.allocate(size: 10, alignment: 24, cpu: 0))
        XCTAssertNil(kernel.allocate(size: -1, cpu: 0))
        XCTAssertNil(kernel.allocate(size: CPUHeap.maximumSize + 1, cpu: 0))
        XCTAssertNil(kernel.allocate(size: 10, alignment: CPUHeap.maximumAlignment * 2, cpu: 0))
        XCTAssertNil(kernel.allocate(size: 1 << 30, cpu: 0), "more than the RAM")
        XCTAssertNil(kernel.allocate(size: 8, cpu: KernelHeap.maxCPUs))
        XCTAssertEqual(kernel.statistics(cpu: 0)!.liveAllocations, 0)
    }

    func testFreedBlocksAreReused() throws {
        let (_, kernel) = try makeHeap(pages: 256)
        let blocks = (0..<10).map { _ in kernel.allocate(size: 100, cpu: 0)! }
        kernel.free(blocks[5], cpu: 0)
        XCTAssertEqual(kernel.allocate(size: 100, cpu: 0), blocks[5])
        // A large block's pages go back at once and come out again.
        let held = kernel.statistics(cpu: 0)!.pagesHeld
        let large = kernel.allocate(size: 65536, cpu: 0)!
        XCTAssertEqual(kernel.statistics(cpu: 0)!.pagesHeld, held + (65536 + 32 + 4095) / 4096)
        kernel.free(large, cpu: 0)
        XCTAssertEqual(kernel.statistics(cpu: 0)!.pagesHeld, held)
        XCTAssertEqual(kernel.allocate(size: 65536, cpu: 0), large)
    }

    func testReallocate() throws {
        let (_, kernel) = try makeHeap(pages: 256)
        let p = kernel.allocate(size: 100, cpu: 0)!
        memset(p, 0xAB, 100)
        // 100 bytes + header use a 128-byte block: 112 bytes of payload fit in place.
        XCTAssertEqual(kernel.reallocate(p, size: 112, cpu: 0), p)
        XCTAssertEqual(kernel.reallocate(p, size: 50, cpu: 0), p)
        XCTAssertEqual(kernel.statistics(cpu: 0)!.bytesInUse, 50)
        let moved = try XCTUnwrap(kernel.reallocate(p, size: 5000, cpu: 0))
        XCTAssertNotEqual(moved, p)
        XCTAssertTrue(holds(Model.Block(pointer: moved, size: 5000, fill: 0xAB), count: 50))
        XCTAssertEqual(kernel.statistics(cpu: 0)!.bytesInUse, 5000)
        XCTAssertEqual(kernel.statistics(cpu: 0)!.liveAllocations, 1)
        XCTAssertNil(kernel.free(p, cpu: 0) ? p : nil, "the old block was freed by the move")
        // Failure leaves the old block alone.
        XCTAssertNil(kernel.reallocate(moved, size: 1 << 40, cpu: 0))
        XCTAssertTrue(holds(Model.Block(pointer: moved, size: 5000, fill: 0xAB), count: 50))
        XCTAssertEqual(kernel.statistics(cpu: 0)!.bytesInUse, 5000)
        let fresh = try XCTUnwrap(kernel.reallocate(nil, size: 10, cpu: 0))
        XCTAssertEqual(CPUHeap.requestedSize(of: fresh), 10)
        XCTAssertTrue(kernel.free(moved, cpu: 0))
        XCTAssertTrue(kernel.free(fresh, cpu: 0))
        XCTAssertNil(kernel.reallocate(fresh, size: 10, cpu: 0), "realloc of a freed block")
        let s = kernel.statistics(cpu: 0)!
        XCTAssertEqual(s.failedFrees, 2)
        XCTAssertEqual(s.bytesInUse, 0)
        XCTAssertEqual(s.peakBytesInUse, 5050)
    }

    func testBadFreesAreDetectedAndCounted() throws {
        let (ram, kernel) = try makeHeap(pages: 256)
        let small = kernel.allocate(size: 256, cpu: 0)!
        let big = kernel.allocate(size: 20_000, cpu: 0)!
        memset(small, 0, 256)
        memset(big, 0, 20_000)
        XCTAssertFalse(kernel.free(small + 1, cpu: 0), "misaligned")
        XCTAssertFalse(kernel.free(small + 32, cpu: 0), "inside a payload")
        XCTAssertFalse(kernel.free(big + 4096, cpu: 0), "inside a large payload")
        XCTAssertFalse(kernel.free(ram.base + 4096 * 3 + 64, cpu: 0), "not a block")
        // A copied header does not point back to a slab.
        (big + 1024).copyMemory(from: small - 16, byteCount: 16)
        XCTAssertFalse(kernel.free(big + 1040, cpu: 0), "forged header")
        XCTAssertTrue(kernel.free(small, cpu: 0))
        XCTAssertFalse(kernel.free(small, cpu: 0), "double free")
        XCTAssertTrue(kernel.free(nil, cpu: 0))
        let s = kernel.statistics(cpu: 0)!
        XCTAssertEqual(s.failedFrees, 6)
        XCTAssertEqual(s.liveAllocations, 1)
        XCTAssertEqual(s.bytesInUse, 20_000)
        assertIdentity(s)
        XCTAssertTrue(kernel.free(big, cpu: 0))
        XCTAssertFalse(kernel.free(big, cpu: 0), "double free of a large block")
    }

    func testCrossCPUFreeGoesBackToTheOwner() throws {
        let (_, kernel) = try makeHeap(pages: 256)
        let p = kernel.allocate(size: 64, cpu: 0)!
        let large = kernel.allocate(size: 30_000, cpu: 0)!
        let other = kernel.allocate(size: 64, cpu: 1)!
        XCTAssertTrue(kernel.free(p, cpu: 1))
        XCTAssertTrue(kernel.free(large, cpu: 1))
        XCTAssertFalse(kernel.free(p, cpu: 1), "double free while pending")
        // Pending until CPU 0 allocates again: still counted as CPU 0's.
        XCTAssertEqual(kernel.statistics(cpu: 0)!.liveAllocations, 2)
        XCTAssertEqual(kernel.statistics(cpu: 1)!.liveAllocations, 1)
        XCTAssertEqual(kernel.statistics(cpu: 1)!.failedFrees, 1)
        XCTAssertEqual(kernel.allocate(size: 64, cpu: 0), p, "CPU 0 reuses the block CPU 1 freed")
        // A heap leaves another CPU's block alone and says whose it is.
        XCTAssertEqual(kernel.existingHeap(cpu: 0)!.free(other), .ownedBy(cpu: 1))
        XCTAssertEqual(kernel.statistics(cpu: 1)!.liveAllocations, 1)
        let s0 = kernel.statistics(cpu: 0)!
        XCTAssertEqual(s0.liveAllocations, 1)
        XCTAssertEqual(s0.bytesInUse, 64)
        assertIdentity(s0)
        // A reallocation on another CPU moves the block to that CPU's heap.
        memset(p, 0x11, 64)
        let moved = try XCTUnwrap(kernel.reallocate(p, size: 32, cpu: 1))
        XCTAssertNotEqual(moved, p)
        XCTAssertTrue(holds(Model.Block(pointer: moved, size: 32, fill: 0x11), count: 32))
        XCTAssertEqual(kernel.existingHeap(cpu: 0)!.drainRemoteFrees(), 1)
        XCTAssertEqual(kernel.statistics(cpu: 0)!.liveAllocations, 0)
        XCTAssertEqual(kernel.statistics(cpu: 1)!.liveAllocations, 2)
        XCTAssertTrue(kernel.free(moved, cpu: 1))
        XCTAssertTrue(kernel.free(other, cpu: 1))
        let total = kernel.statistics()
        XCTAssertEqual(total.liveAllocations, 0)
        XCTAssertEqual(total.bytesInUse, 0)
        assertIdentity(total)
    }

    /// The long run: random allocate / free / reallocate against the model.
    func testLongRandomSequenceAgainstModel() throws {
        let (_, kernel) = try makeHeap(pages: 24_576)  // 96 MiB
        let heap = try XCTUnwrap(kernel.heap(cpu: 0))
        let freeAtStart = kernel.pages.freePages + heap.statistics.pagesHeld
        var rng = RNG(state: 0x70_70)
        var model = Model()
        var fillByte: UInt8 = 1
        for step in 0..<200_000 {
            let choice = rng.below(100)
            if model.blocks.isEmpty || (choice < 45 && model.blocks.count < 3000) {
                let size = rng.size(), alignment = rng.alignment()
                let p = try XCTUnwrap(kernel.allocate(size: size, alignment: alignment, cpu: 0), "step \(step)")
                XCTAssertEqual(UInt(bitPattern: p) % UInt(max(alignment, 16)), 0)
                fillByte = fillByte &+ 1
                let block = Model.Block(pointer: p, size: size, fill: fillByte)
                XCTAssertTrue(model.insert(block), "step \(step): overlaps a live block")
                fill(block)
                model.bytesInUse += size
                model.peak = max(model.peak, model.bytesInUse)
            } else if choice < 80 {
                let block = model.remove(at: rng.below(model.blocks.count))
                XCTAssertTrue(holds(block, count: block.size), "step \(step): contents changed")
                XCTAssertEqual(CPUHeap.requestedSize(of: block.pointer), block.size)
                XCTAssertTrue(kernel.free(block.pointer, cpu: 0))
                model.bytesInUse -= block.size
                if rng.below(100) == 0 {
                    XCTAssertFalse(kernel.free(block.pointer, cpu: 0), "double free accepted")
                    model.failedFrees += 1
                }
            } else {
                let old = model.remove(at: rng.below(model.blocks.count))
                let size = rng.below(4) == 0 ? rng.size() : max(0, old.size + rng.below(200) - 100)
                let p = try XCTUnwrap(kernel.reallocate(old.pointer, size: size, cpu: 0))
                // A move allocates before it frees: both count towards the peak.
                model.peak = max(model.peak, model.bytesInUse + (p == old.pointer ? size - old.size : size))
                model.bytesInUse += size - old.size
                var block = Model.Block(pointer: p, size: size, fill: old.fill)
                XCTAssertTrue(holds(block, count: min(old.size, size)), "step \(step): realloc lost contents")
                fillByte = fillByte &+ 1
                block.fill = fillByte
                XCTAssertTrue(model.insert(block), "step \(step): realloc overlaps a live block")
                fill(block)
            }
            let s = heap.statistics
            XCTAssertEqual(s.bytesInUse, model.bytesInUse)
            XCTAssertEqual(s.liveAllocations, model.blocks.count)
            XCTAssertEqual(s.peakBytesInUse, model.peak)
            XCTAssertEqual(s.failedFrees, model.failedFrees)
            assertIdentity(s)
            if step % 1000 == 0 {
                XCTAssertEqual(kernel.pages.freePages, freeAtStart - s.pagesHeld, "pages leaked")
                XCTAssertTrue(kernel.pages.withLock { $0.isConsistent() })
            }
        }
        while !model.blocks.isEmpty {
            let block = model.remove(at: model.blocks.count - 1)
            XCTAssertTrue(holds(block, count: block.size))
            XCTAssertTrue(kernel.free(block.pointer, cpu: 0))
        }
        var s = heap.statistics
        XCTAssertEqual(s.bytesInUse, 0)
        XCTAssertEqual(s.liveAllocations, 0)
        assertIdentity(s)
        // Only empty slabs (at most one per class) remain; then those go back too.
        XCTAssertLessThanOrEqual(s.pagesHeld - CPUHeap.statePages, (0..<SizeClass.count).map(SizeClass.slabPages).reduce(0, +))
        heap.releaseEmptySlabs()
        s = heap.statistics
        XCTAssertEqual(s.pagesHeld, CPUHeap.statePages)
        XCTAssertEqual(s.bytesOverhead, CPUHeap.statePages * 4096)
        XCTAssertEqual(kernel.pages.freePages, freeAtStart - CPUHeap.statePages)
    }

    /// One workload run twice: the second run needs no more pages than the first, and
    /// both end holding the same pages.
    func testRepeatedCycleHoldsTheSamePages() throws {
        let (_, kernel) = try makeHeap(pages: 8192)
        let heap = try XCTUnwrap(kernel.heap(cpu: 0))
        func cycle() -> (peakPages: Int, endPages: Int) {
            var rng = RNG(state: 7)
            var live: [UnsafeMutableRawPointer] = []
            var peakPages = 0
            for _ in 0..<20_000 {
                if live.isEmpty || rng.below(100) < 55 {
                    live.append(kernel.allocate(size: rng.size(), alignment: rng.alignment(), cpu: 0)!)
                } else {
                    kernel.free(live.remove(at: rng.below(live.count)), cpu: 0)
                }
                peakPages = max(peakPages, heap.statistics.pagesHeld)
            }
            for p in live { kernel.free(p, cpu: 0) }
            return (peakPages, heap.statistics.pagesHeld)
        }
        let first = cycle()
        let second = cycle()
        XCTAssertLessThanOrEqual(second.peakPages, first.peakPages)
        XCTAssertEqual(second.endPages, first.endPages)
        XCTAssertEqual(heap.statistics.liveAllocations, 0)
    }

    /// A steady state (same number of live blocks, replaced one by one) must not keep
    /// taking pages: freed blocks are reused, as a bump allocator would not.
    func testSteadyStateIsBounded() throws {
        let (_, kernel) = try makeHeap(pages: 8192)
        let heap = try XCTUnwrap(kernel.heap(cpu: 0))
        var rng = RNG(state: 99)
        var live = (0..<1000).map { _ in kernel.allocate(size: rng.size(), cpu: 0)! }
        var warmPeak = 0
        var laterPeak = 0
        for step in 0..<100_000 {
            let index = rng.below(live.count)
            kernel.free(live[index], cpu: 0)
            live[index] = kernel.allocate(size: rng.size(), cpu: 0)!
            if step < 20_000 { warmPeak = max(warmPeak, heap.statistics.pagesHeld) }
            else { laterPeak = max(laterPeak, heap.statistics.pagesHeld) }
        }
        XCTAssertLessThanOrEqual(laterPeak, warmPeak + warmPeak / 4, "pages keep growing in a steady state")
        for p in live { kernel.free(p, cpu: 0) }
    }

    /// Two real threads as CPUs 0 and 1: CPU 1 frees CPU 0's blocks (remote frees) while
    /// CPU 0 allocates (and drains them) and both take slabs from the shared allocator.
    func testConcurrentCPUs() throws {
        let (_, kernel) = try makeHeap(pages: 16384)
        let freeAtStart = kernel.pages.freePages
        let foreign = (0..<20_000).map { UInt(bitPattern: kernel.allocate(size: 16 + $0 % 3000, cpu: 0)!) }
        DispatchQueue.concurrentPerform(iterations: 2) { cpu in
            var rng = RNG(state: UInt64(cpu + 1))
            var mine: [UnsafeMutableRawPointer] = []
            for index in 0..<20_000 {
                if cpu == 1 { kernel.free(UnsafeMutableRawPointer(bitPattern: foreign[index]), cpu: 1) }
                if mine.isEmpty || rng.below(2) == 0 {
                    mine.append(kernel.allocate(size: rng.size(), cpu: cpu)!)
                } else {
                    kernel.free(mine.remove(at: rng.below(mine.count)), cpu: cpu)
                }
            }
            for p in mine { kernel.free(p, cpu: cpu) }
        }
        kernel.existingHeap(cpu: 0)!.drainRemoteFrees()
        let total = kernel.statistics()
        XCTAssertEqual(total.liveAllocations, 0)
        XCTAssertEqual(total.bytesInUse, 0)
        XCTAssertEqual(total.failedFrees, 0)
        assertIdentity(total)
        XCTAssertEqual(kernel.pages.freePages + total.pagesHeld, freeAtStart)
        XCTAssertTrue(kernel.pages.withLock { $0.isConsistent() })
    }

    func testExhaustionThenRecovery() throws {
        let (_, kernel) = try makeHeap(pages: 64)
        let heap = try XCTUnwrap(kernel.heap(cpu: 0))
        let freeAtStart = kernel.pages.freePages + heap.statistics.pagesHeld
        var live: [UnsafeMutableRawPointer] = []
        while let p = kernel.allocate(size: 1000, cpu: 0) { live.append(p) }
        XCTAssertGreaterThan(live.count, 100)
        XCTAssertNil(kernel.allocate(size: 20_000, cpu: 0))
        assertIdentity(heap.statistics)
        for p in live { XCTAssertTrue(kernel.free(p, cpu: 0)) }
        heap.releaseEmptySlabs()
        XCTAssertEqual(kernel.pages.freePages, freeAtStart - CPUHeap.statePages)
        XCTAssertNotNil(kernel.allocate(size: 20_000, cpu: 0))
    }
}

nonisolated(unsafe) private var simulatedCPU = 0

final class KernelMemoryTests: XCTestCase {
    func testStartsFromAddFreeAndRoutesByCurrentCPU() throws {
        let ram = HostRAM(pages: 512)
        defer { withExtendedLifetime(ram) {} }
        KernelMemory.kernelHeap = nil
        KernelMemory.pending = PageFrameAllocator()
        simulatedCPU = 0
        KernelMemory.setCurrentCPU { simulatedCPU }
        // One page is not enough to start the heap; pages still work.
        XCTAssertEqual(KernelMemory.addFree(ram.range(0, 1)), 1)
        XCTAssertFalse(KernelMemory.isReady)
        XCTAssertNil(KernelMemory.allocate(size: 8))
        XCTAssertEqual(KernelMemory.addFree(ram.range(10, 512)), 502)
        XCTAssertTrue(KernelMemory.isReady)
        XCTAssertEqual(KernelMemory.totalPages, 503)
        XCTAssertEqual(KernelMemory.freePages, 503 - KernelHeap.controlPages)

        let run = try XCTUnwrap(KernelMemory.allocatePages(4, below: ram.range(0, 100).end))
        XCTAssertLessThanOrEqual(run + 4 * 4096, ram.range(0, 100).end)
        XCTAssertTrue(KernelMemory.freePages(run, 4))
        XCTAssertFalse(KernelMemory.freePages(run, 4), "double free")

        let p = try XCTUnwrap(KernelMemory.allocate(size: 48))
        simulatedCPU = 1
        XCTAssertTrue(KernelMemory.free(p))
        simulatedCPU = 0
        XCTAssertEqual(KernelMemory.allocate(size: 48), p)
        let q = try XCTUnwrap(KernelMemory.reallocate(p, size: 4000))
        XCTAssertEqual(KernelMemory.statistics().bytesInUse, 4000)
        XCTAssertTrue(KernelMemory.free(q))
        XCTAssertFalse(KernelMemory.free(q))
        let s = KernelMemory.statistics()
        XCTAssertEqual(s.liveAllocations, 0)
        XCTAssertEqual(s.failedFrees, 1)
        XCTAssertGreaterThan(KernelMemory.releaseEmptySlabs(), 0)
        XCTAssertEqual(KernelMemory.freePages, 503 - KernelHeap.controlPages - CPUHeap.statePages, "CPU 1 never allocated: no heap")
        KernelMemory.kernelHeap = nil
    }
}
