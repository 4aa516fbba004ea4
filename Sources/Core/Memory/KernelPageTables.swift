// The kernel's one set of page tables, shared by every CPU, and the 4 KiB mappings the
// kernel adds after boot (thread stacks with their guard pages).
//
// Rules for callers: take no other lock while calling in here except the page
// allocator's (which `allocatePage` takes briefly). Mappings added here are new (not
// present before), so no other CPU can hold a stale TLB entry for them; `unmap`
// invalidates the calling CPU's TLB only, which is enough for memory that only the
// calling CPU ever touched (a thread's stack never leaves its CPU).

public enum KernelPageTables {
    nonisolated(unsafe) static var tables: PageTables? = nil
    nonisolated(unsafe) static var lock = SpinLock()
    /// Invalidates one TLB entry on the calling CPU (INVLPG), set by the platform.
    nonisolated(unsafe) public static var invalidate: ((UInt64) -> Void)? = nil

    static func install(_ tables: PageTables) { self.tables = tables }

    /// Maps `count` pages starting at `virtual` to fresh physical pages. Returns false
    /// (mapping nothing) when memory runs out.
    public static func mapFresh(virtual: UInt64, count: Int) -> Bool {
        guard let physical = KernelMemory.allocatePages(count) else { return false }
        lock.lock()
        defer { lock.unlock() }
        guard tables != nil else { return false }
        for index in 0..<count {
            let offset = UInt64(index) * 4096
            let mapped = (try? tables!.mapPage(virtual: virtual + offset, physical: physical + offset)) ?? false
            if !mapped {
                for undo in 0..<index { _ = tables!.unmapPage(virtual: virtual + UInt64(undo) * 4096) }
                KernelMemory.freePages(physical, count)
                return false
            }
        }
        return true
    }

    /// Unmaps `count` pages at `virtual` (mapped by `mapFresh`) and frees their memory.
    public static func unmapAndFree(virtual: UInt64, count: Int) {
        lock.lock()
        var first: UInt64? = nil
        for index in 0..<count {
            let page = virtual + UInt64(index) * 4096
            let physical = tables?.unmapPage(virtual: page)
            if index == 0 { first = physical }
            invalidate?(page)
        }
        lock.unlock()
        if let first { KernelMemory.freePages(first, count) }
    }

    /// The physical address `virtual` maps to (nil when unmapped), for the fault report.
    public static func translate(_ virtual: UInt64) -> UInt64? {
        tables?.translate(virtual)
    }
}
