// One CPU's heap: size classes carved from slabs, and whole pages for large requests.
//
// Layout of every allocation: a 16-byte `BlockHeader` sits right before the payload
// (tag: state, owner CPU, size class, offset back to its slab or page run; and the
// requested size), so `free(pointer)` needs nothing else. Payloads are 16-aligned at
// least; a larger alignment puts padding between the block's start and the header.
//
//   * Small requests (header + worst-case padding + payload <= 8 KiB) use one of 31
//     size classes (blocks of 32, 48, ... 128 bytes, then four steps per power of two up
//     to 8192). A slab is 1 to 9 pages: a 64-byte `SlabHeader`, then equal blocks. Each
//     slab keeps its own free list (intrusive: the link is in the free block) and a bump
//     pointer over never-used blocks; slabs with a free block are on their class's
//     doubly linked "partial" list. A slab whose last block is freed goes back to the
//     page allocator unless it is its class's only empty slab (one is kept to avoid
//     thrashing at a slab boundary; `releaseEmptySlabs` returns those too).
//   * Large requests take a contiguous page run: a 16-byte `LargeRecord` (page count)
//     at its start, then padding, header and payload. Freeing returns the run at once.
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

/// The size classes: block sizes including the 16-byte header.
enum SizeClass {
    static let count = 31
    static let largestBlock = 8192
    static let slabHeaderBytes = 64

    /// The smallest class whose blocks hold `bytes` (1...largestBlock).
    static func index(forBlockBytes bytes: Int) -> Int {
        if bytes <= 128 { return max(0, (bytes + 15) / 16 - 2) }
        let exponent = Int.bitWidth - 1 - (bytes - 1).leadingZeroBitCount  // 2^e < bytes <= 2^(e+1)
        let step = 1 << (exponent - 2)
        return 7 + (exponent - 7) * 4 + ((bytes - (1 << exponent)) + step - 1) / step - 1
    }

    static func blockBytes(_ index: Int) -> Int {
        if index < 7 { return 32 + 16 * index }
        let exponent = 7 + (index - 7) / 4
        return (1 << exponent) + (((index - 7) % 4 + 1) << (exponent - 2))
    }

    /// Pages per slab: the fewest that hold at least 4 blocks with at most 1/8 of the
    /// slab wasted (the header and the tail too small for a block). A switch, not a
    /// table: a Swift array would need the heap. HeapTests checks the rule.
    static func slabPages(_ index: Int) -> Int {
        switch index {
        case ...17: return 1
        case 18...21: return 2
        case 22...25: return 4
        case 27: return 7
        case 26, 28, 29: return 8
        default: return 9
        }
    }

    static func blocksPerSlab(_ index: Int) -> Int {
        (slabPages(index) * 4096 - slabHeaderBytes) / blockBytes(index)
    }
}

/// The 16 bytes before every payload.
struct BlockHeader {
    /// state(16) << 48 | owner CPU(8) << 40 | class(8) << 32 | offset(32): the header's
    /// distance from its slab start (small) or from its page run start (large).
    var tag: UInt64
    /// The size the caller asked for.
    var size: UInt64

    static let live: UInt64 = 0xA11C
    static let free: UInt64 = 0xF4EE
    static let remote: UInt64 = 0x4E30
    static let largeClass = 0xFF

    static func tag(_ state: UInt64, cpu: Int, sizeClass: Int, offset: UInt64) -> UInt64 {
        state << 48 | UInt64(cpu) << 40 | UInt64(sizeClass) << 32 | offset
    }
}

/// At the start of each slab. Written only by the owner CPU, except `tag` (constant).
struct SlabHeader {
    static let magic: UInt64 = 0x534C_4142 << 32  // "SLAB"
    /// magic | cpu << 8 | class.
    var tag: UInt64
    var next: UInt64
    var previous: UInt64
    /// First free block (its link is at block + 8); 0 when none.
    var freeList: UInt64
    /// First never-used block; the end of the blocks when all have been used.
    var bump: UInt64
    var live: Int
    var onPartialList: Bool
}

/// At the start of each large page run.
struct LargeRecord {
    static let magic: UInt64 = 0x4C41_5247 << 32  // "LARG"
    /// magic | cpu << 8.
    var tag: UInt64
    var pages: UInt64
}

/// A validated live (or remote-pending) block, decoded from its header.
struct BlockInfo {
    var header: UnsafeMutablePointer<BlockHeader>
    var payload: UInt64
    var owner: Int
    var sizeClass: Int
    /// The slab (small) or page run (large) holding the block.
    var container: UInt64
    /// Where the block starts (small) or the page run starts (large).
    var blockStart: UInt64
    /// Bytes from the payload to the end of the block or page run.
    var capacity: Int
    var size: Int
    var isLarge: Bool { sizeClass == BlockHeader.largeClass }
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
        let slab = slabHeader(slabAddress)
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
        let header = headerPointer(payload)
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

        UnsafeMutablePointer<LargeRecord>(bitPattern: UInt(base))!.pointee =
            LargeRecord(tag: LargeRecord.magic | UInt64(cpu) << 8, pages: UInt64(kept))
        headerPointer(payload).pointee = BlockHeader(
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
        slabHeader(address).pointee = SlabHeader(
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
        guard let info = Self.inspect(pointer) else { noteFailedFree(); return .rejected }
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
            if let info = Self.inspect(UnsafeMutableRawPointer(bitPattern: UInt(payload))!,
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
            let pages = Int(UnsafeMutablePointer<LargeRecord>(bitPattern: UInt(info.container))!.pointee.pages)
            update { s in
                s.pagesHeld -= pages
                s.bytesFree -= pages * 4096
            }
            try? state.pointee.pages.free(info.container, pages: pages)
            return
        }
        let index = info.sizeClass
        let slab = slabHeader(info.container)
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
        slabHeader(address).pointee.tag = 0
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
                let next = slabHeader(address).pointee.next
                if slabHeader(address).pointee.live == 0 {
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
        guard size >= 0, let info = Self.inspect(pointer), info.owner == cpu,
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
        inspect(pointer)?.size
    }

    /// How many bytes from `pointer` the block can hold without moving, or nil.
    public static func capacity(of pointer: UnsafeMutableRawPointer) -> Int? {
        inspect(pointer)?.capacity
    }

    /// Decodes and checks the header before `pointer`: tag state, owner, class, and that
    /// the slab or page run it points back to agrees. Safe to call from any CPU.
    static func inspect(_ pointer: UnsafeMutableRawPointer, state expected: UInt64 = BlockHeader.live) -> BlockInfo? {
        let payload = UInt64(UInt(bitPattern: pointer))
        guard payload & 15 == 0, payload >= 4096 + 32 else { return nil }
        let header = headerPointer(payload)
        let tag = header.pointee.tag
        guard tag >> 48 == expected else { return nil }
        let owner = Int((tag >> 40) & 0xFF)
        let sizeClass = Int((tag >> 32) & 0xFF)
        let offset = tag & 0xFFFF_FFFF
        let size = header.pointee.size
        guard offset <= payload - 16, size <= UInt64(maximumSize) else { return nil }
        let container = payload - 16 - offset
        guard container & 4095 == 0 else { return nil }
        if sizeClass == BlockHeader.largeClass {
            let record = UnsafeMutablePointer<LargeRecord>(bitPattern: UInt(container))!.pointee
            guard offset >= 16, record.tag == LargeRecord.magic | UInt64(owner) << 8, record.pages > 0,
                  record.pages <= (UInt64.max - container) / 4096 else { return nil }
            let end = container + record.pages * 4096
            guard payload + max(size, 16) <= end else { return nil }
            return BlockInfo(header: header, payload: payload, owner: owner, sizeClass: sizeClass,
                             container: container, blockStart: container,
                             capacity: Int(end - payload), size: Int(size))
        }
        guard sizeClass < SizeClass.count,
              slabHeader(container).pointee.tag == SlabHeader.magic | UInt64(owner) << 8 | UInt64(sizeClass)
        else { return nil }
        let blockBytes = UInt64(SizeClass.blockBytes(sizeClass))
        let first = UInt64(SizeClass.slabHeaderBytes)
        guard offset >= first, offset < first + UInt64(SizeClass.blocksPerSlab(sizeClass)) * blockBytes
        else { return nil }
        let blockStart = container + first + (offset - first) / blockBytes * blockBytes
        let blockEnd = blockStart + blockBytes
        guard payload + max(size, 16) <= blockEnd else { return nil }
        return BlockInfo(header: header, payload: payload, owner: owner, sizeClass: sizeClass,
                         container: container, blockStart: blockStart,
                         capacity: Int(blockEnd - payload), size: Int(size))
    }

    // MARK: Slab lists and raw access

    private func pushFront(_ address: UInt64, _ index: Int) {
        let slab = slabHeader(address)
        let classState = classState(index)
        let head = classState.pointee.partial
        slab.pointee.next = head
        slab.pointee.previous = 0
        slab.pointee.onPartialList = true
        if head != 0 { slabHeader(head).pointee.previous = address }
        classState.pointee.partial = address
    }

    private func unlink(_ address: UInt64, _ index: Int) {
        let slab = slabHeader(address)
        guard slab.pointee.onPartialList else { return }
        let next = slab.pointee.next
        let previous = slab.pointee.previous
        if previous != 0 { slabHeader(previous).pointee.next = next } else { classState(index).pointee.partial = next }
        if next != 0 { slabHeader(next).pointee.previous = previous }
        slab.pointee.onPartialList = false
        slab.pointee.next = 0
        slab.pointee.previous = 0
    }

    private func update(_ body: (inout HeapStatistics) -> Void) {
        body(&state.pointee.statistics)
    }
}

private func headerPointer(_ payload: UInt64) -> UnsafeMutablePointer<BlockHeader> {
    UnsafeMutablePointer<BlockHeader>(bitPattern: UInt(payload - 16))!
}

private func slabHeader(_ address: UInt64) -> UnsafeMutablePointer<SlabHeader> {
    UnsafeMutablePointer<SlabHeader>(bitPattern: UInt(address))!
}

private func word(_ address: UInt64) -> UnsafeMutablePointer<UInt64> {
    UnsafeMutablePointer<UInt64>(bitPattern: UInt(address))!
}
