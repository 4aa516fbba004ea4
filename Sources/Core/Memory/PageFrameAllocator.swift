// The page-frame allocator: hands out contiguous runs of 4 KiB physical pages.
//
// Free memory is a singly linked list of free extents sorted by address. The list is
// intrusive: each extent's first 16 bytes hold its own record (`next`, `pages`), so the
// allocator owns no storage and has no cap on fragmentation; neighbouring extents are
// always coalesced, so no two extents touch. Addresses are read and written directly:
// in the kernel RAM is identity-mapped, in the tests the "RAM" is host memory.
//
// Rules for callers:
//   * Give it memory with `addFree` (any number of disjoint ranges, e.g. every usable
//     range of the boot memory map). Page 0 is never used: address 0 means "none" here.
//   * `free` must be given exactly what `allocate` returned (any page-aligned part of it
//     is fine too). Freeing pages of which any is already free (a double free), or that
//     lie outside the span from the lowest to the highest address ever added, is
//     refused with a `FreeError` and changes nothing. (A free of never-added memory in a
//     hole between ranges cannot be told apart from a real free.)
//   * Not thread-safe. The kernel shares one instance between CPUs through
//     `SharedPageAllocator` (below), which holds a spin lock.
//   * Do not copy an instance once it holds memory: the list lives in RAM, so two copies
//     would hand out the same pages.
//   * Allocation policy: the highest run that fits under `limit`, taken from the top of
//     its extent. Low memory thus stays free for callers that need `below:` (page tables
//     in the boot-mapped GiB, DMA buffers), and splitting rarely moves a record.

public struct PageFrameAllocator {
    public static let pageSize: UInt64 = 4096

    /// Why `free` refused a range.
    public enum FreeError: Error, Equatable {
        /// The address is not page-aligned, is 0, or the page count is not positive.
        case invalidArgument
        /// The range is not inside the span of memory ever given to `addFree`.
        case outsideManagedMemory
        /// Part of the range is already free: a double free, or a wrong length.
        case overlapsFreeMemory
    }

    /// Address of the lowest free extent; 0 when nothing is free.
    private var head: UInt64 = 0
    /// Pages currently free.
    public private(set) var freePages: Int = 0
    /// Pages ever given to `addFree` (after rounding and removal of overlaps).
    public private(set) var totalPages: Int = 0
    /// Number of free extents in the list (1 when memory is unfragmented).
    public private(set) var extentCount: Int = 0
    /// Lowest start and highest end of the ranges given to `addFree`, to reject frees of
    /// addresses that were never RAM handed to us.
    private var lowest: UInt64 = .max
    private var highest: UInt64 = 0

    public init() {}

    // MARK: Adding memory

    /// Adds `range` to the free memory, rounded inward to page boundaries, skipping page 0
    /// and any part that is already free. Returns the number of pages added (0 for a range
    /// smaller than a page). Coalesces with neighbouring free extents.
    @discardableResult
    public mutating func addFree(_ range: PhysicalRange) -> Int {
        let ps = Self.pageSize
        guard range.end > range.start, range.start <= UInt64.max - (ps - 1) else { return 0 }
        let start = max((range.start + ps - 1) & ~(ps - 1), ps)
        let end = range.end & ~(ps - 1)
        guard start < end else { return 0 }
        var added = 0
        var previous: UInt64 = 0
        var current = head
        var cursor = start
        while cursor < end {
            while current != 0 && extentEnd(current) <= cursor {
                previous = current
                current = next(of: current)
            }
            if current != 0 && current <= cursor {
                // `cursor` lies inside an extent that is already free: skip over it.
                cursor = extentEnd(current)
                continue
            }
            let gapEnd = current == 0 ? end : min(end, current)
            let pages = Int((gapEnd - cursor) / ps)
            current = insert(cursor, pages: pages, after: previous, before: current)
            added += pages
            cursor = gapEnd
        }
        freePages += added
        totalPages += added
        lowest = min(lowest, start)
        highest = max(highest, end)
        return added
    }

    // MARK: Allocating and freeing

    /// Returns the address of `pages` contiguous free pages that all lie below `limit`
    /// (the run ends at or before `limit`), or nil when no free extent has such a run.
    /// The memory's contents are whatever was there (not zeroed).
    public mutating func allocate(pages: Int, below limit: UInt64 = .max) -> UInt64? {
        guard pages > 0, pages <= freePages else { return nil }
        let ps = Self.pageSize
        let size = UInt64(pages) * ps
        let top = limit & ~(ps - 1)
        // Find the highest fitting run: the last extent in address order that has one.
        var chosen: UInt64 = 0
        var chosenPrevious: UInt64 = 0
        var previous: UInt64 = 0
        var current = head
        while current != 0 && current < top {
            let runEnd = min(extentEnd(current), top)
            if runEnd - current >= size {
                chosen = current
                chosenPrevious = previous
            }
            previous = current
            current = next(of: current)
        }
        guard chosen != 0 else { return nil }
        let start = chosen
        let end = extentEnd(chosen)
        let address = min(end, top) - size
        if address == start {
            if address + size == end {
                link(chosenPrevious, to: next(of: chosen))
                extentCount -= 1
            } else {
                let rest = address + size
                write(rest, next: next(of: chosen), pages: (end - rest) / ps)
                link(chosenPrevious, to: rest)
            }
        } else if address + size == end {
            setPages(of: chosen, (address - start) / ps)
        } else {
            // Split: [start, address) keeps its record, [address + size, end) gets one.
            let rest = address + size
            write(rest, next: next(of: chosen), pages: (end - rest) / ps)
            write(chosen, next: rest, pages: (address - start) / ps)
            extentCount += 1
        }
        freePages -= pages
        return address
    }

    /// Gives back `pages` pages at `address`, coalescing with free neighbours. Throws,
    /// without changing anything, when the range is malformed, outside the managed span,
    /// or overlaps memory that is already free (a double free).
    public mutating func free(_ address: UInt64, pages: Int) throws(FreeError) {
        let ps = Self.pageSize
        guard pages > 0, address != 0, address & (ps - 1) == 0,
              UInt64(pages) <= (UInt64.max - address) / ps else { throw .invalidArgument }
        let end = address + UInt64(pages) * ps
        guard address >= lowest, end <= highest else { throw .outsideManagedMemory }
        var previous: UInt64 = 0
        var current = head
        while current != 0 && current < address {
            previous = current
            current = next(of: current)
        }
        if previous != 0 && extentEnd(previous) > address { throw .overlapsFreeMemory }
        if current != 0 && current < end { throw .overlapsFreeMemory }
        _ = insert(address, pages: pages, after: previous, before: current)
        freePages += pages
    }

    // MARK: Inspection

    /// Calls `body` with each free extent, lowest first.
    public func forEachFreeExtent(_ body: (PhysicalRange) -> Void) {
        var current = head
        while current != 0 {
            body(PhysicalRange(start: current, end: extentEnd(current)))
            current = next(of: current)
        }
    }

    /// Checks the list's invariants: sorted, page-aligned, non-empty, never touching,
    /// and the page and extent counts match. For tests and boot self-checks.
    public func isConsistent() -> Bool {
        var pages = 0
        var extents = 0
        var lastEnd: UInt64 = 0
        var current = head
        while current != 0 {
            let count = Int(pageCount(of: current))
            if current & (Self.pageSize - 1) != 0 || count <= 0 { return false }
            if extents > 0 && current <= lastEnd { return false }
            pages += count
            extents += 1
            lastEnd = extentEnd(current)
            current = next(of: current)
        }
        return pages == freePages && extents == extentCount && freePages <= totalPages
    }

    // MARK: The intrusive records

    /// Links `address` (its record already written) between `previous` and `next`,
    /// merging with either when they touch. Returns the extent now holding the pages.
    private mutating func insert(_ address: UInt64, pages: Int, after previous: UInt64,
                                 before following: UInt64) -> UInt64 {
        let end = address + UInt64(pages) * Self.pageSize
        let touchesFollowing = following != 0 && end == following
        if previous != 0 && extentEnd(previous) == address {
            var merged = pageCount(of: previous) + UInt64(pages)
            var after = following
            if touchesFollowing {
                merged += pageCount(of: following)
                after = next(of: following)
                extentCount -= 1
            }
            write(previous, next: after, pages: merged)
            return previous
        }
        if touchesFollowing {
            write(address, next: next(of: following), pages: UInt64(pages) + pageCount(of: following))
        } else {
            write(address, next: following, pages: UInt64(pages))
            extentCount += 1
        }
        link(previous, to: address)
        return address
    }

    private mutating func link(_ previous: UInt64, to address: UInt64) {
        if previous == 0 { head = address } else { record(previous)[0] = address }
    }

    private func record(_ address: UInt64) -> UnsafeMutablePointer<UInt64> {
        UnsafeMutablePointer<UInt64>(bitPattern: UInt(address))!
    }

    private func next(of address: UInt64) -> UInt64 { record(address)[0] }
    private func pageCount(of address: UInt64) -> UInt64 { record(address)[1] }
    private func setPages(of address: UInt64, _ pages: UInt64) { record(address)[1] = pages }
    private func extentEnd(_ address: UInt64) -> UInt64 { address + pageCount(of: address) * Self.pageSize }

    private func write(_ address: UInt64, next: UInt64, pages: UInt64) {
        let r = record(address)
        r[0] = next
        r[1] = pages
    }
}

// MARK: - Sharing between CPUs

/// A handle on the page-frame allocator shared by all CPUs: every call takes the lock.
///
/// The allocator and its spin lock live in the first page of the memory it manages
/// (taken from the allocator itself at creation), so creating one allocates nothing
/// from the Swift heap. Copies of the handle refer to the same allocator. The lock and
/// the allocator sit at separate addresses, so that spinning on the lock never
/// touches the memory the holder is writing.
public struct SharedPageAllocator {
    let lock: UnsafeMutablePointer<SpinLock>
    let allocator: UnsafeMutablePointer<PageFrameAllocator>

    /// Pages the shared state itself occupies (taken from `allocator`).
    public static let ownPages = 1

    /// Moves `allocator` into one of its own pages; nil if it has no free page.
    public init?(_ allocator: PageFrameAllocator) {
        var allocator = allocator
        guard let page = allocator.allocate(pages: Self.ownPages) else { return nil }
        let raw = UnsafeMutableRawPointer(bitPattern: UInt(page))!
        lock = raw.bindMemory(to: SpinLock.self, capacity: 1)
        lock.initialize(to: SpinLock())
        self.allocator = (raw + 64).bindMemory(to: PageFrameAllocator.self, capacity: 1)
        self.allocator.initialize(to: allocator)
    }

    /// Runs `body` with the allocator while holding the lock. `body` must not allocate
    /// from the heap (the heap may be what holds the lock's caller).
    public func withLock<R, E: Error>(_ body: (inout PageFrameAllocator) throws(E) -> R) throws(E) -> R {
        lock.pointee.lock()
        defer { lock.pointee.unlock() }
        return try body(&allocator.pointee)
    }

    public func allocate(pages: Int, below limit: UInt64 = .max) -> UInt64? {
        withLock { $0.allocate(pages: pages, below: limit) }
    }

    public func free(_ address: UInt64, pages: Int) throws(PageFrameAllocator.FreeError) {
        try withLock { (allocator) throws(PageFrameAllocator.FreeError) in
            try allocator.free(address, pages: pages)
        }
    }

    @discardableResult
    public func addFree(_ range: PhysicalRange) -> Int { withLock { $0.addFree(range) } }

    public var freePages: Int { withLock { $0.freePages } }
    public var totalPages: Int { withLock { $0.totalPages } }
}
