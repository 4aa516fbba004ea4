// One CPU's heap: size classes carved from slabs, and whole pages for large requests.
//
// Small requests use one of 31 size classes carved from slabs; each slab keeps its own
// intrusive free list and a bump pointer over never-used blocks, and slabs with a free
// block sit on their class's doubly linked "partial" list. A slab whose last block is
// freed goes back to the page allocator unless it is its class's only empty slab (one
// is kept so a workload at a slab boundary does not thrash; `releaseEmptySlabs` returns
// those too). Large requests take a page run that goes back at once on free. The
// layout of blocks, slabs and runs in RAM is in HeapLayout.swift.
//
// Rules for callers:
//   * A heap belongs to one CPU; only that CPU calls `allocate`, `free`, `resize`,
//     `drainRemoteFrees`, `releaseEmptySlabs`. Another CPU returns a block with
//     `acceptRemoteFree`, which pushes it on an atomic stack the owner drains on its
//     next allocation. `KernelHeap` does this routing.
//   * Not reentrant: no allocation from interrupt handlers (or mask interrupts around).
//   * The heap never allocates from the Swift heap (it *is* that heap): all its state is
//     in RAM it took from the page allocator, reached through raw pointers.
//   * Obviously bad frees (misaligned pointer, wrong tag, double free, tag that does not
//     match its slab) are refused and counted in `failedFrees`, never trusted. A pointer
//     into unmapped memory can still fault: the header is read to check it.
import Synchronization

/// Exact counters of one heap, updated on every operation (by construction, not by walking).
///
/// Every byte of the `pagesHeld` pages is in exactly one of three buckets:
/// `pagesHeld * 4096 == bytesInUse + bytesFree + bytesOverhead`.
public struct HeapStatistics: Equatable {
    /// Sum of the sizes callers requested for live allocations (0 for zero-size ones).
    public var bytesInUse = 0
    /// Allocations handed out and not yet freed (a block freed by another CPU counts
    /// until its owner drains its remote-free stack).
    public var liveAllocations = 0
    /// Bytes held but usable for future requests: every free slab block (whole block),
    /// every never-used block in a slab, and the slack of live blocks (capacity after the
    /// payload's requested bytes, in small blocks and in large page runs).
    public var bytesFree = 0
    /// Bookkeeping: 16-byte headers and alignment padding of live blocks, slab headers
    /// and slab tails too small for a block, large-run records, the heap's state page.
    public var bytesOverhead = 0
    /// The highest `bytesInUse` this heap has seen (summed over heaps: sum of peaks).
    public var peakBytesInUse = 0
    /// Pages taken from the page allocator and not yet returned.
    public var pagesHeld = 0
    /// `free`/`reallocate` calls refused because the pointer was not a live block.
    public var failedFrees = 0

    public init() {}

    public static func + (a: HeapStatistics, b: HeapStatistics) -> HeapStatistics {
        var s = HeapStatistics()
        s.bytesInUse = a.bytesInUse + b.bytesInUse
        s.liveAllocations = a.liveAllocations + b.liveAllocations
        s.bytesFree = a.bytesFree + b.bytesFree
        s.bytesOverhead = a.bytesOverhead + b.bytesOverhead
        s.peakBytesInUse = a.peakBytesInUse + b.peakBytesInUse
        s.pagesHeld = a.pagesHeld + b.pagesHeld
        s.failedFrees = a.failedFrees + b.failedFrees
        return s
    }
}

/// What `CPUHeap.free` did with a pointer.
public enum FreeOutcome: Equatable {
    /// The block was this heap's and is free now.
    case freed
    /// A live block of another CPU's heap: nothing was done; hand it to that heap's
    /// `acceptRemoteFree`.
    case ownedBy(cpu: Int)
    /// Not a live block (bad pointer or double free); counted in `failedFrees`.
    case rejected
}

/// The heap's own page: `HeapState`, then the remote-free stack, then the class table.
struct HeapState {
    var cpu: Int
    var pages: SharedPageAllocator
    var statistics: HeapStatistics
}

struct ClassState {
    /// First slab with a free block, or 0.
    var partial: UInt64
    /// Slabs of this class with no live block (0 or 1 between calls).
    var emptySlabs: Int
}

public struct CPUHeap {
    let state: UnsafeMutablePointer<HeapState>

    public static let statePages = 1
    /// Requests above this many bytes are refused (nil), whatever memory is free.
    public static let maximumSize = 1 << 46
    /// Alignments above this are refused; any power of two up to it works.
    public static let maximumAlignment = 1 << 30
    static let remoteOffset = 256
    static let classesOffset = 512

    /// Takes a page from `pages` for the heap's state; nil when none is free.
    public init?(cpu: Int, pages: SharedPageAllocator) {
        guard cpu >= 0, cpu < 256, let page = pages.allocate(pages: Self.statePages) else { return nil }
        let raw = UnsafeMutableRawPointer(bitPattern: UInt(page))!
        var statistics = HeapStatistics()
        statistics.pagesHeld = Self.statePages
        statistics.bytesOverhead = Self.statePages * 4096
        state = raw.bindMemory(to: HeapState.self, capacity: 1)
        state.initialize(to: HeapState(cpu: cpu, pages: pages, statistics: statistics))
        (raw + Self.remoteOffset).bindMemory(to: Atomic<UInt64>.self, capacity: 1).initialize(to: Atomic(0))
        let classes = (raw + Self.classesOffset).bindMemory(to: ClassState.self, capacity: SizeClass.count)
        classes.initialize(repeating: ClassState(partial: 0, emptySlabs: 0), count: SizeClass.count)
    }

    /// Re-opens a heap from the address of its state page.
    init(stateAddress: UInt64) {
        state = UnsafeMutablePointer<HeapState>(bitPattern: UInt(stateAddress))!
    }

    var stateAddress: UInt64 { UInt64(UInt(bitPattern: state)) }
    public var cpu: Int { state.pointee.cpu }
    public var statistics: HeapStatistics { state.pointee.statistics }

    private var remoteStack: UnsafeMutablePointer<Atomic<UInt64>> {
        (UnsafeMutableRawPointer(state) + Self.remoteOffset).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    private func classState(_ index: Int) -> UnsafeMutablePointer<ClassState> {
        (UnsafeMutableRawPointer(state) + Self.classesOffset).assumingMemoryBound(to: ClassState.self) + index
    }

    // MARK: Allocation

    /// `size` bytes aligned to `alignment` (a power of two; below 16 means 16), or nil when
    /// memory is exhausted or the arguments are invalid. Size 0 gives a unique pointer.
    public func allocate(size: Int, alignment: Int = 16) -> UnsafeMutableRawPointer? {
        drainRemoteFrees()
        guard size >= 0, size <= Self.maximumSize, alignment >= 0, alignment <= Self.maximumAlignment,
              alignment & (alignment &- 1) == 0 else { return nil }
        let alignment = max(alignment, 16)
        // Worst-case block: the payload may sit up to alignment - 16 past header space.
        // At least 16 payload bytes, so a remote free can store its link in the payload.
        let needed = alignment + max(size, 16)
        if needed <= SizeClass.largestBlock {
            return allocateSmall(SizeClass.index(forBlockBytes: needed), size: size, alignment: alignment)
        }
        return allocateLarge(size: size, alignment: alignment)
    }

    private func allocateSmall(_ index: Int, size: Int, alignment: Int) -> UnsafeMutableRawPointer? {
        let classState = classState(index)
        var slabAddress = classState.pointee.partial
        if slabAddress == 0 {
            guard let fresh = newSlab(index) else { return nil }
            slabAddress = fresh
        }
        let slab = SlabHeader.at(slabAddress)
        let blockBytes = UInt64(SizeClass.blockBytes(index))
        let block: UInt64
        if slab.pointee.freeList != 0 {
            block = slab.pointee.freeList
            slab.pointee.freeList = word(block + 8).pointee
        } else {
            block = slab.pointee.bump
            slab.pointee.bump += blockBytes
        }
        if slab.pointee.live == 0 { classState.pointee.emptySlabs -= 1 }
        slab.pointee.live += 1
        if slab.pointee.live == SizeClass.blocksPerSlab(index) { unlink(slabAddress, index) }

        let payload = (block + 16 + UInt64(alignment) - 1) & ~(UInt64(alignment) - 1)
        let header = BlockHeader.before(payload)
        header.pointee = BlockHeader(
            tag: BlockHeader.tag(BlockHeader.live, cpu: cpu, sizeClass: index, offset: payload - 16 - slabAddress),
            size: UInt64(size))
        let metadata = Int(payload - block)
        update { s in
            s.bytesInUse += size
            s.liveAllocations += 1
            s.bytesOverhead += metadata
            s.bytesFree -= metadata + size
            s.peakBytesInUse = max(s.peakBytesInUse, s.bytesInUse)
        }
        return UnsafeMutableRawPointer(bitPattern: UInt(payload))
    }

    private func allocateLarge(size: Int, alignment: Int) -> UnsafeMutableRawPointer? {
        let effective = UInt64(max(size, 16))
        let worst = UInt64(max(alignment, 32)) + effective
        let pages = Int((worst + 4095) / 4096)
        let pageAllocator = state.pointee.pages
        guard let run = pageAllocator.allocate(pages: pages) else { return nil }
        // Room for the record and the header below the payload, then trim whole pages
        // at either end that the alignment left unused (only for alignment > 4096).
        let payload = (run + 32 + UInt64(alignment) - 1) & ~(UInt64(alignment) - 1)
        let base = (payload - 32) & ~4095
        let end = (payload + effective + 4095) & ~4095
        if base > run { try? pageAllocator.free(run, pages: Int((base - run) / 4096)) }
        let runEnd = run + UInt64(pages) * 4096
        if end < runEnd { try? pageAllocator.free(end, pages: Int((runEnd - end) / 4096)) }
        let kept = Int((end - base) / 4096)

        LargeRecord.at(base).pointee =
            LargeRecord(tag: LargeRecord.magic | UInt64(cpu) << 8, pages: UInt64(kept))
        BlockHeader.before(payload).pointee = BlockHeader(
            tag: BlockHeader.tag(BlockHeader.live, cpu: cpu, sizeClass: BlockHeader.largeClass,
                                 offset: payload - 16 - base),
            size: UInt64(size))
        let metadata = Int(payload - base)
        update { s in
            s.pagesHeld += kept
            s.bytesInUse += size
            s.liveAllocations += 1
            s.bytesOverhead += metadata
            s.bytesFree += kept * 4096 - metadata - size
            s.peakBytesInUse = max(s.peakBytesInUse, s.bytesInUse)
        }
        return UnsafeMutableRawPointer(bitPattern: UInt(payload))
    }

    /// Takes a slab for class `index` from the page allocator and puts it on the partial list.
    private func newSlab(_ index: Int) -> UInt64? {
        let pages = SizeClass.slabPages(index)
        guard let address = state.pointee.pages.allocate(pages: pages) else { return nil }
        let first = address + UInt64(SizeClass.slabHeaderBytes)
        SlabHeader.at(address).pointee = SlabHeader(
            tag: SlabHeader.magic | UInt64(cpu) << 8 | UInt64(index), next: 0, previous: 0,
            freeList: 0, bump: first, live: 0, onPartialList: false)
        pushFront(address, index)
        classState(index).pointee.emptySlabs += 1
        let blocks = SizeClass.blocksPerSlab(index) * SizeClass.blockBytes(index)
        update { s in
            s.pagesHeld += pages
            s.bytesFree += blocks
            s.bytesOverhead += pages * 4096 - blocks
        }
        return address
    }

    // MARK: Freeing

    /// Frees `pointer` if it is a live block of this heap; see `FreeOutcome`.
    @discardableResult
    public func free(_ pointer: UnsafeMutableRawPointer) -> FreeOutcome {
        guard let info = BlockInfo(decoding: pointer) else { noteFailedFree(); return .rejected }
        if info.owner != cpu { return .ownedBy(cpu: info.owner) }
        release(info)
        return .freed
    }

    /// Called on another CPU: queues `info` (a live block of this heap) for this heap
    /// to free at its next allocation. Lock-free (a Treiber stack; the owner takes the
    /// whole stack at once, so there is no ABA problem).
    func acceptRemoteFree(_ info: BlockInfo) {
        info.header.pointee.tag = info.header.pointee.tag & ~(0xFFFF << 48) | BlockHeader.remote << 48
        let link = word(info.payload)
        var head = remoteStack.pointee.load(ordering: .relaxed)
        while true {
            link.pointee = head
            // Release: the link and the tag are visible before the block is on the stack.
            let (exchanged, original) = remoteStack.pointee.compareExchange(
                expected: head, desired: info.payload, ordering: .releasing)
            if exchanged { return }
            head = original
        }
    }

    /// Frees the blocks other CPUs returned to this heap. Returns how many.
    @discardableResult
    public func drainRemoteFrees() -> Int {
        guard remoteStack.pointee.load(ordering: .relaxed) != 0 else { return 0 }
        // Acquire pairs with the pushers' release.
        var payload = remoteStack.pointee.exchange(0, ordering: .acquiring)
        var count = 0
        while payload != 0 {
            let next = word(payload).pointee
            if let info = BlockInfo(decoding: UnsafeMutableRawPointer(bitPattern: UInt(payload))!,
                                       state: BlockHeader.remote) {
                release(info)
                count += 1
            } else {
                noteFailedFree()
            }
            payload = next
        }
        return count
    }

    /// Frees a validated block of this heap.
    func release(_ info: BlockInfo) {
        info.header.pointee.tag = BlockHeader.tag(BlockHeader.free, cpu: info.owner,
                                                  sizeClass: info.sizeClass, offset: 0)
        let metadata = Int(info.payload - info.blockStart)
        let size = info.size
        update { s in
            s.bytesInUse -= size
            s.liveAllocations -= 1
            s.bytesOverhead -= metadata
            s.bytesFree += metadata + size
        }
        if info.isLarge {
            let pages = Int(LargeRecord.at(info.container).pointee.pages)
            update { s in
                s.pagesHeld -= pages
                s.bytesFree -= pages * 4096
            }
            try? state.pointee.pages.free(info.container, pages: pages)
            return
        }
        let index = info.sizeClass
        let slab = SlabHeader.at(info.container)
        let wasFull = slab.pointee.live == SizeClass.blocksPerSlab(index)
        slab.pointee.live -= 1
        word(info.blockStart + 8).pointee = slab.pointee.freeList
        slab.pointee.freeList = info.blockStart
        if wasFull { pushFront(info.container, index) }
        guard slab.pointee.live == 0 else { return }
        // Empty: forget its free list (every block is free again), then keep or release it.
        slab.pointee.freeList = 0
        slab.pointee.bump = info.container + UInt64(SizeClass.slabHeaderBytes)
        if classState(index).pointee.emptySlabs >= 1 {
            releaseSlab(info.container, index)
        } else {
            classState(index).pointee.emptySlabs += 1
        }
    }

    private func releaseSlab(_ address: UInt64, _ index: Int) {
        unlink(address, index)
        SlabHeader.at(address).pointee.tag = 0
        let pages = SizeClass.slabPages(index)
        let blocks = SizeClass.blocksPerSlab(index) * SizeClass.blockBytes(index)
        update { s in
            s.pagesHeld -= pages
            s.bytesFree -= blocks
            s.bytesOverhead -= pages * 4096 - blocks
        }
        try? state.pointee.pages.free(address, pages: pages)
    }

    /// Returns every empty slab to the page allocator. Returns the pages released.
    @discardableResult
    public func releaseEmptySlabs() -> Int {
        drainRemoteFrees()
        var released = 0
        for index in 0..<SizeClass.count {
            var address = classState(index).pointee.partial
            while address != 0 {
                let next = SlabHeader.at(address).pointee.next
                if SlabHeader.at(address).pointee.live == 0 {
                    releaseSlab(address, index)
                    released += SizeClass.slabPages(index)
                }
                address = next
            }
            classState(index).pointee.emptySlabs = 0
        }
        return released
    }

    // MARK: Resizing

    /// Changes the requested size of this heap's live block in place when `size` fits in
    /// its capacity. Returns false (nothing changed) otherwise; the caller then moves it.
    public func resize(_ pointer: UnsafeMutableRawPointer, to size: Int) -> Bool {
        guard size >= 0, let info = BlockInfo(decoding: pointer), info.owner == cpu,
              max(size, 16) <= info.capacity else { return false }
        info.header.pointee.size = UInt64(size)
        let delta = size - info.size
        update { s in
            s.bytesInUse += delta
            s.bytesFree -= delta
            s.peakBytesInUse = max(s.peakBytesInUse, s.bytesInUse)
        }
        return true
    }

    func noteFailedFree() {
        update { $0.failedFrees += 1 }
    }

    // MARK: Decoding a pointer

    /// The requested size of a live block, or nil when `pointer` is not one.
    public static func requestedSize(of pointer: UnsafeMutableRawPointer) -> Int? {
        BlockInfo(decoding: pointer)?.size
    }

    /// How many bytes from `pointer` the block can hold without moving, or nil.
    public static func capacity(of pointer: UnsafeMutableRawPointer) -> Int? {
        BlockInfo(decoding: pointer)?.capacity
    }

    // MARK: Slab lists and raw access

    private func pushFront(_ address: UInt64, _ index: Int) {
        let slab = SlabHeader.at(address)
        let classState = classState(index)
        let head = classState.pointee.partial
        slab.pointee.next = head
        slab.pointee.previous = 0
        slab.pointee.onPartialList = true
        if head != 0 { SlabHeader.at(head).pointee.previous = address }
        classState.pointee.partial = address
    }

    private func unlink(_ address: UInt64, _ index: Int) {
        let slab = SlabHeader.at(address)
        guard slab.pointee.onPartialList else { return }
        let next = slab.pointee.next
        let previous = slab.pointee.previous
        if previous != 0 { SlabHeader.at(previous).pointee.next = next } else { classState(index).pointee.partial = next }
        if next != 0 { SlabHeader.at(next).pointee.previous = previous }
        slab.pointee.onPartialList = false
        slab.pointee.next = 0
        slab.pointee.previous = 0
    }

    private func update(_ body: (inout HeapStatistics) -> Void) {
        body(&state.pointee.statistics)
    }
}

private func word(_ address: UInt64) -> UnsafeMutablePointer<UInt64> {
    UnsafeMutablePointer<UInt64>(bitPattern: UInt(address))!
}
