// The kernel's memory: per-CPU heaps over one shared page-frame allocator, the global
// instance (`KernelMemory`), and the C entry points the Swift runtime allocates through.
//
// As in Toro, every CPU allocates from its own heap without locks; only taking pages
// from (or returning them to) the shared `PageFrameAllocator` takes a spin lock. Each
// block records its owner CPU; a block freed on another CPU goes back to its owner's
// remote-free stack and the owner reuses it after its next allocation.
//
// Rules for callers:
//   * `cpu` arguments are the index of the CPU making the call (0..<maxCPUs). A CPU's
//     heap is created on its first allocation (one page for its state).
//   * The kernel gives RAM to `KernelMemory.addFree` (first the early heap region, then
//     every usable range of the boot memory map); the heap works once the first range
//     of at least `controlPages` pages is in. Call `setCurrentCPU` before a second CPU
//     allocates (until then every caller is CPU 0).
//   * Nothing here allocates from the Swift heap and nothing here logs: malloc and
//     free (Arch/libc.c) land here, before services and even before `Log` works.
//   * Interrupt handlers must not allocate or free (the per-CPU heaps are not reentrant).
import Synchronization

/// Shared by all CPUs by design (`@unchecked Sendable`): the page allocator is behind
/// its lock, heap slots are atomic, and each CPU touches only its own heap's state
/// except through `acceptRemoteFree`'s atomic stack.
public struct KernelHeap: @unchecked Sendable {
    /// CPUs that can have a heap (CPU indices 0..<maxCPUs).
    public static let maxCPUs = 16
    /// Pages the kernel heap takes for itself (shared allocator state, heap table).
    public static let controlPages = SharedPageAllocator.ownPages + 1

    /// The page allocator every heap takes its slabs and large runs from.
    public let pages: SharedPageAllocator
    /// Per CPU: the address of its heap's state page, 0 until created. Atomic so another
    /// CPU that reads a slot (to return a block, or for statistics) sees a whole heap.
    let slots: UnsafeMutablePointer<Atomic<UInt64>>

    /// Moves `pageAllocator` into RAM it manages and takes the control pages from it;
    /// nil when it has fewer than `controlPages` free pages.
    public init?(pageAllocator: PageFrameAllocator) {
        guard pageAllocator.freePages >= Self.controlPages,
              let shared = SharedPageAllocator(pageAllocator),
              let table = shared.allocate(pages: 1) else { return nil }
        pages = shared
        slots = UnsafeMutableRawPointer(bitPattern: UInt(table))!
            .bindMemory(to: Atomic<UInt64>.self, capacity: Self.maxCPUs)
        for cpu in 0..<Self.maxCPUs { (slots + cpu).initialize(to: Atomic(0)) }
    }

    /// The heap of `cpu` if it exists.
    public func existingHeap(cpu: Int) -> CPUHeap? {
        guard cpu >= 0, cpu < Self.maxCPUs else { return nil }
        let address = (slots + cpu).pointee.load(ordering: .acquiring)
        return address == 0 ? nil : CPUHeap(stateAddress: address)
    }

    /// The heap of `cpu`, created if needed. Only CPU `cpu` itself may call this.
    public func heap(cpu: Int) -> CPUHeap? {
        if let heap = existingHeap(cpu: cpu) { return heap }
        guard cpu >= 0, cpu < Self.maxCPUs, let heap = CPUHeap(cpu: cpu, pages: pages) else { return nil }
        // Release: the heap's state is initialised before another CPU can find it.
        (slots + cpu).pointee.store(heap.stateAddress, ordering: .releasing)
        return heap
    }

    /// `size` bytes aligned to `alignment` from `cpu`'s heap; see `CPUHeap.allocate`.
    public func allocate(size: Int, alignment: Int = 16, cpu: Int) -> UnsafeMutableRawPointer? {
        heap(cpu: cpu)?.allocate(size: size, alignment: alignment)
    }

    /// Frees `pointer` (nil is ignored) on behalf of `cpu`: at once if `cpu` owns it,
    /// else through the owner's remote-free stack. Returns false, counting a failed free
    /// on `cpu`'s heap, when `pointer` is not a live block.
    @discardableResult
    public func free(_ pointer: UnsafeMutableRawPointer?, cpu: Int) -> Bool {
        guard let pointer else { return true }
        guard let info = BlockInfo(decoding: pointer), let owner = existingHeap(cpu: info.owner) else {
            existingHeap(cpu: cpu)?.noteFailedFree()
            return false
        }
        if info.owner == cpu { owner.release(info) } else { owner.acceptRemoteFree(info) }
        return true
    }

    /// C `realloc` semantics: nil `pointer` allocates; the same pointer when `size` fits
    /// its block (and `cpu` owns it); otherwise a new 16-aligned block with the contents
    /// copied and the old block freed. Returns nil, leaving the old block valid, when
    /// memory is exhausted, and nil when `pointer` is not a live block (a failed free).
    public func reallocate(_ pointer: UnsafeMutableRawPointer?, size: Int, cpu: Int) -> UnsafeMutableRawPointer? {
        guard let pointer else { return allocate(size: size, cpu: cpu) }
        guard size >= 0 else { return nil }
        guard let info = BlockInfo(decoding: pointer), existingHeap(cpu: info.owner) != nil else {
            existingHeap(cpu: cpu)?.noteFailedFree()
            return nil
        }
        // Only the owner may change a block's size in place (the statistics are its).
        if info.owner == cpu, let heap = existingHeap(cpu: cpu), heap.resize(pointer, to: size) {
            return pointer
        }
        guard let moved = allocate(size: size, cpu: cpu) else { return nil }
        moved.copyMemory(from: pointer, byteCount: min(info.size, size))
        free(pointer, cpu: cpu)
        return moved
    }

    /// The sum over all CPUs' heaps. Exact when no CPU is allocating; while others run,
    /// each heap's counters are read without a lock (a snapshot per field).
    public func statistics() -> HeapStatistics {
        var total = HeapStatistics()
        for cpu in 0..<Self.maxCPUs {
            if let heap = existingHeap(cpu: cpu) { total = total + heap.statistics }
        }
        return total
    }

    /// One CPU's heap statistics, or nil if that CPU has not allocated yet.
    public func statistics(cpu: Int) -> HeapStatistics? {
        existingHeap(cpu: cpu)?.statistics
    }
}

/// The kernel's single memory instance. Globals are plain values (no lazy initialisers
/// that would allocate): an optional `KernelHeap` handle, the page allocator that
/// collects ranges until the heap can start, and the current-CPU function.
public enum KernelMemory {
    nonisolated(unsafe) static var kernelHeap: KernelHeap? = nil
    /// Memory added before the heap could start (less than `controlPages` so far).
    nonisolated(unsafe) static var pending = PageFrameAllocator()
    nonisolated(unsafe) static var cpuIndex: (@convention(c) () -> Int)? = nil

    /// Adds RAM (rounded inward to pages; page 0 and overlaps with free memory are
    /// skipped). Starts the heap as soon as there is enough. Returns the pages added.
    @discardableResult
    public static func addFree(_ range: PhysicalRange) -> Int {
        if let heap = kernelHeap { return heap.pages.addFree(range) }
        let added = pending.addFree(range)
        if let heap = KernelHeap(pageAllocator: pending) {
            kernelHeap = heap
            // The free list now belongs to the shared allocator; drop our copy of it.
            pending = PageFrameAllocator()
        }
        return added
    }

    /// Replaces everything with a heap over `pageAllocator` (for tests and for kernels
    /// that build their allocator themselves). Memory of a previous heap is abandoned.
    @discardableResult
    public static func install(pageAllocator: PageFrameAllocator,
                               currentCPU: (@convention(c) () -> Int)? = nil) -> Bool {
        cpuIndex = currentCPU
        pending = PageFrameAllocator()
        kernelHeap = KernelHeap(pageAllocator: pageAllocator)
        return kernelHeap != nil
    }

    /// Sets how the heap learns which CPU is running (default: always CPU 0). The
    /// function must not allocate; `@convention(c)` rules out captured context.
    public static func setCurrentCPU(_ function: @convention(c) () -> Int) {
        cpuIndex = function
    }

    public static var isReady: Bool { kernelHeap != nil }

    static var currentCPU: Int { cpuIndex?() ?? 0 }

    public static func allocate(size: Int, alignment: Int = 16) -> UnsafeMutableRawPointer? {
        kernelHeap?.allocate(size: size, alignment: alignment, cpu: currentCPU)
    }

    @discardableResult
    public static func free(_ pointer: UnsafeMutableRawPointer?) -> Bool {
        guard let heap = kernelHeap else { return pointer == nil }
        return heap.free(pointer, cpu: currentCPU)
    }

    public static func reallocate(_ pointer: UnsafeMutableRawPointer?, size: Int) -> UnsafeMutableRawPointer? {
        kernelHeap?.reallocate(pointer, size: size, cpu: currentCPU)
    }

    /// All heaps summed (zero before the heap starts). The calling CPU first drains its
    /// own remote frees, so its heap's figures are exact; blocks freed to *other* CPUs'
    /// heaps count as live until those CPUs allocate or call `drainRemoteFrees`.
    public static func statistics() -> HeapStatistics {
        guard let heap = kernelHeap else { return HeapStatistics() }
        heap.existingHeap(cpu: currentCPU)?.drainRemoteFrees()
        return heap.statistics()
    }

    public static func statistics(cpu: Int) -> HeapStatistics? {
        kernelHeap?.statistics(cpu: cpu)
    }

    /// Takes back the blocks other CPUs freed on the current CPU's behalf (they count as
    /// in use until then). Returns how many.
    @discardableResult
    public static func drainRemoteFrees() -> Int {
        kernelHeap?.existingHeap(cpu: currentCPU)?.drainRemoteFrees() ?? 0
    }

    /// Returns the current CPU's empty slabs to the page allocator; the pages released.
    @discardableResult
    public static func releaseEmptySlabs() -> Int {
        kernelHeap?.existingHeap(cpu: currentCPU)?.releaseEmptySlabs() ?? 0
    }

    /// `count` contiguous pages that end at or below `limit`, straight from the page
    /// allocator (not counted in heap statistics), or nil.
    public static func allocatePages(_ count: Int, below limit: UInt64 = .max) -> UInt64? {
        if let heap = kernelHeap { return heap.pages.allocate(pages: count, below: limit) }
        return pending.allocate(pages: count, below: limit)
    }

    /// Returns pages from `allocatePages`. False, changing nothing, when the range is
    /// not something that can be freed (see `PageFrameAllocator.FreeError`).
    @discardableResult
    public static func freePages(_ address: UInt64, _ count: Int) -> Bool {
        do {
            if let heap = kernelHeap {
                try heap.pages.free(address, pages: count)
            } else {
                try pending.free(address, pages: count)
            }
            return true
        } catch {
            return false
        }
    }

    /// Free pages in the page allocator (heap slabs and runs count as used).
    public static var freePages: Int { kernelHeap?.pages.freePages ?? pending.freePages }
    /// Pages ever added with `addFree`.
    public static var totalPages: Int { kernelHeap?.pages.totalPages ?? pending.totalPages }
}

#if hasFeature(Embedded)
// The C allocation interface. Arch/libc.c builds malloc, free, calloc, realloc and
// posix_memalign on these three (Swift reserves those names); the Embedded runtime's
// swift_slowAlloc calls them for every class instance and array buffer.

@_cdecl("toro_heap_allocate")
public func toroHeapAllocate(_ size: Int, _ alignment: Int) -> UnsafeMutableRawPointer? {
    KernelMemory.allocate(size: size, alignment: alignment)
}

@_cdecl("toro_heap_free")
public func toroHeapFree(_ pointer: UnsafeMutableRawPointer?) {
    KernelMemory.free(pointer)
}

/// The runtime's allocation failed (Arch/libc.c, posix_memalign): a panic that says so,
/// instead of the runtime's bare trap. Logs without allocating.
@_cdecl("toro_out_of_memory")
public func toroOutOfMemory(_ size: Int) {
    Log.write("\nmemory: out of memory: an allocation of ")
    Log.decimal(size)
    Log.write(" bytes failed with ")
    Log.decimal(KernelMemory.freePages)
    Log.write(" pages free")
    panic("out of memory")
}

@_cdecl("toro_heap_reallocate")
public func toroHeapReallocate(_ pointer: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    KernelMemory.reallocate(pointer, size: size)
}
#endif
