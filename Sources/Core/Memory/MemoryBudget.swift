// Memory as a budget: admission control for work that outside input starts.
//
// The Embedded Swift runtime traps when an allocation fails (`swift_allocObject` does not
// return nil), so the kernel cannot "catch" running out of memory. The design instead:
//
//   * Admission. Before work that a client, a file or a device starts (a connection, a
//     request, a load), its code asks `admit(bytes)` for a bound on what that work will
//     allocate. It is admitted only if the page allocator would still hold the reserve
//     afterwards; otherwise the work is refused with a clear reply (a connection is
//     reset, kv answers `ERROR full`, a file load is skipped with one line).
//   * Reserve. `reserveBytes` (1/16 of memory, at least 1 MiB) is never promised to
//     new work; work already admitted may grow into its upper half (`grow`: a connection's
//     receive buffer filling the window it was promised), the lower half is the kernel's. It absorbs what admission estimates cannot see (slab rounding, the
//     dictionaries of the socket layer, log and scheduler bookkeeping) and keeps the
//     kernel able to refuse, log and carry on when memory is short.
//   * Caps. Every table a client can grow (connections, kv keys and bytes, FUSE nodes)
//     has a cap whose default is a share of memory (`share(of:perItem:)`), so the sum of
//     the caps fits in memory and admission is the second line, not the only one.
//   * Last line. Should an allocation fail anyway, `posix_memalign` (Arch/libc.c) panics
//     with "out of memory" and the request's size instead of the runtime's bare trap.
//
// Pressure is reported, not spammed: refusals are counted (`refusals`, and in the exit
// report) and logged once per burst (RefusalBurst), with the free memory and the reserve.
//
// Rules for callers: `admit` is cheap (one locked read of the page allocator's counter).
// It is advisory between CPUs: two CPUs admitted at once may both take the last bytes
// above the reserve, which is what the reserve is for. Free memory counts whole free
// pages only (free blocks inside the heap's slabs are not counted: conservative).

public enum MemoryBudget {
    /// The least the reserve can be: 1 MiB.
    public static let minimumReserve = 1 << 20

    nonisolated(unsafe) static var burst = RefusalBurst()
    /// Set by the kernel once all RAM is in the page allocator (`Kernel.start`); host
    /// tests that exercise the budget set it around their own KernelMemory.
    nonisolated(unsafe) public static var isEnforced = false
    /// Tests set a reserve of their own; nil is the rule above.
    nonisolated(unsafe) public static var reserveOverride: Int? = nil

    /// Tests set the free memory they want the budget to see; nil reads the page allocator.
    nonisolated(unsafe) public static var availableOverride: Int? = nil

    /// Bytes the page allocator may hand out without promising the reserve away.
    public static var availableBytes: Int { availableOverride ?? KernelMemory.freePages * 4096 }

    /// All memory the kernel manages (every page ever given to the page allocator).
    public static var totalBytes: Int { KernelMemory.totalPages * 4096 }

    /// The bytes kept back for the kernel itself: 1/16 of memory, at least 1 MiB.
    public static var reserveBytes: Int {
        reserveOverride ?? max(minimumReserve, totalBytes / 16)
    }

    /// Every refusal since boot.
    public static var refusals: Int { burst.total }

    /// True when `bytes` more can be promised to new work (a connection, a request, a
    /// load) while keeping the whole reserve. A refusal is counted and, at the start of a
    /// burst, logged with `what` ("a connection").
    public static func admit(_ bytes: Int, for what: StaticString) -> Bool {
        check(bytes, for: what, keeping: reserveBytes)
    }

    /// True when work already admitted may grow by `bytes` (a connection's receive buffer
    /// as its peer uses the window it was promised): it may use the upper half of the
    /// reserve, so that work admitted at the edge can go on while new work is refused (two
    /// watermarks, as Linux keeps "low" for new allocations and "min" below it).
    public static func grow(_ bytes: Int, for what: StaticString) -> Bool {
        check(bytes, for: what, keeping: reserveBytes / 2)
    }

    static func check(_ bytes: Int, for what: StaticString, keeping floor: Int) -> Bool {
        // Before the kernel enforces it (early boot, and host tests that do not ask for it)
        // there is no budget to keep: the host's allocator answers.
        guard isEnforced else { return true }
        let now = Clock.monotonicNanoseconds()
        if availableBytes - max(bytes, 0) >= floor {
            if let refused = burst.admitted(now: now) {
                Log.timestamp()
                Log.write("memory: pressure over; ")
                Log.decimal(refused)
                Log.write(refused == 1 ? " refusal" : " refusals")
                Log.write(" while low; ")
                Log.decimal(availableBytes / 1024)
                Log.write(" KiB free\n")
            }
            return true
        }
        if burst.refuse(now: now) {
            Log.timestamp()
            Log.write("memory: low (")
            Log.decimal(availableBytes / 1024)
            Log.write(" KiB free, reserve ")
            Log.decimal(reserveBytes / 1024)
            Log.write(" KiB); refusing new work, starting with ")
            Log.write(what)
            Log.write(" of ")
            Log.decimal(bytes)
            Log.write(" bytes\n")
        }
        return false
    }

    /// A default cap for a table: 1/`denominator` of memory divided by the bytes one item
    /// costs, at least `minimum` and at most `maximum`.
    public static func share(denominator: Int, perItem: Int,
                             minimum: Int = 1, maximum: Int = Int.max) -> Int {
        guard denominator > 0, perItem > 0 else { return minimum }
        let items = totalBytes / denominator / perItem
        return min(max(items, minimum), maximum)
    }

    /// One line for the exit report when anything was refused.
    public static func logRefusals() {
        guard burst.total > 0 else { return }
        Log.timestamp()
        Log.write("memory: ")
        Log.decimal(burst.total)
        Log.write(burst.total == 1 ? " request" : " requests")
        Log.write(" refused for lack of memory\n")
    }
}
