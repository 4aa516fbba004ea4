// Thread stacks: 32 KiB each, mapped at their own virtual address with an unmapped
// 4 KiB guard page below, so an overflow faults (and the fault report names it) instead
// of corrupting the neighbour.
//
// Each CPU owns a window of virtual address space, 4 GiB from `regionBase + cpu << 32`,
// cut into slots of guard + stack. A finished thread's slot stays mapped in a per-CPU
// cache and is reused by the next thread on that CPU; beyond `cacheLimit` slots, the
// pages are unmapped and returned to the page allocator.

public struct ThreadStack {
    public static let pages = 8
    public static let size = UInt64(pages) * 4096
    static let slotSize = size + 4096
    public static let regionBase: UInt64 = 0x0000_0100_0000_0000
    static let cacheLimit = 32

    /// The lowest mapped address (the guard page is the 4 KiB just below).
    public let bottom: UInt64
    public var top: UInt64 { bottom + ThreadStack.size }
    public var guardPage: PhysicalRange { PhysicalRange(start: bottom - 4096, end: bottom) }

    /// True when `address` lies in any thread stack's guard page.
    public static func isGuardPage(_ address: UInt64) -> Bool {
        guard address >= regionBase, address < regionBase + (UInt64(KernelHeap.maxCPUs) << 32) else { return false }
        return (address - regionBase) % slotSize < 4096
    }
}

/// Per-CPU slot allocator; only its CPU touches it.
final class StackPool {
    let cpu: Int
    var nextSlot: UInt64 = 0
    var cache: [ThreadStack] = []
    var freeSlots: [UInt64] = []

    init(cpu: Int) {
        self.cpu = cpu
        // Both lists are reserved once, so running threads never grows them: the heap's
        // figures after any number of threads equal those before.
        cache.reserveCapacity(ThreadStack.cacheLimit)
        freeSlots.reserveCapacity(StackPool.freeSlotLimit)
    }

    static let freeSlotLimit = 1024

    func take() -> ThreadStack? {
        if let stack = cache.popLast() { return stack }
        let slot: UInt64
        if let reused = freeSlots.popLast() { slot = reused } else { slot = nextSlot; nextSlot += 1 }
        let bottom = ThreadStack.regionBase + (UInt64(cpu) << 32) + slot * ThreadStack.slotSize + 4096
        guard bottom + ThreadStack.size <= ThreadStack.regionBase + (UInt64(cpu + 1) << 32),
              KernelPageTables.mapFresh(virtual: bottom, count: ThreadStack.pages) else {
            if freeSlots.count < StackPool.freeSlotLimit { freeSlots.append(slot) }
            return nil
        }
        return ThreadStack(bottom: bottom)
    }

    func give(_ stack: ThreadStack) {
        if cache.count < ThreadStack.cacheLimit {
            cache.append(stack)
            return
        }
        KernelPageTables.unmapAndFree(virtual: stack.bottom, count: ThreadStack.pages)
        // Past the limit the slot's address space is simply not reused (its memory is).
        guard freeSlots.count < StackPool.freeSlotLimit else { return }
        freeSlots.append((stack.bottom - 4096 - ThreadStack.regionBase - (UInt64(cpu) << 32)) / ThreadStack.slotSize)
    }
}
