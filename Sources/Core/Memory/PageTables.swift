// x86-64 4-level page tables that identity-map what the kernel may touch
// (SDM vol. 3, 4.5: PML4 → PDPT → PD → PT).
//
// The kernel runs identity-mapped (virtual == physical), as Toro does. After boot it
// replaces the trampoline's fixed first-GiB mapping with tables built here from the
// memory map: every RAM range, rounded out to 2 MiB, plus the platform's MMIO windows
// (uncached). Everything else stays unmapped, including the null page: the first 2 MiB
// are mapped with 4 KiB pages so that page 0 can be left out.
//
// Rules for callers: `allocatePage` returns the physical address of a zeroed 4 KiB page
// that is already mapped (the builder writes the tables through their identity address).

public struct IdentityMapping {
    public var range: PhysicalRange
    /// MMIO: map with PCD|PWT so device registers are never cached.
    public var uncached: Bool
    public init(range: PhysicalRange, uncached: Bool) { self.range = range; self.uncached = uncached }
}

public enum PageTableError: Error, Equatable {
    /// `allocatePage` returned nil: not enough memory for the tables.
    case outOfMemory
}

public struct PageTables {
    static let present: UInt64 = 1 << 0
    static let writable: UInt64 = 1 << 1
    static let writeThrough: UInt64 = 1 << 3
    static let cacheDisable: UInt64 = 1 << 4
    static let largePage: UInt64 = 1 << 7
    static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000
    static let twoMiB: UInt64 = 1 << 21

    /// The physical address of the top-level table (the value for CR3).
    public let root: UInt64
    /// Pages used by the tables, root included.
    public private(set) var pageCount = 1

    private let allocatePage: () -> UInt64?

    public init(allocatePage: @escaping () -> UInt64?) throws(PageTableError) {
        guard let root = allocatePage() else { throw .outOfMemory }
        self.root = root
        self.allocatePage = allocatePage
    }

    /// Identity-maps every mapping, 2 MiB at a time (4 KiB in the first 2 MiB, page 0 left out).
    public mutating func map(_ mappings: [IdentityMapping]) throws(PageTableError) {
        for mapping in mappings where !mapping.range.isEmpty {
            let flags = PageTables.present | PageTables.writable
                | (mapping.uncached ? PageTables.cacheDisable | PageTables.writeThrough : 0)
            var address = mapping.range.start & ~(PageTables.twoMiB - 1)
            while address < mapping.range.end {
                let pd = try table(at: address, level: 2)
                let index = Int((address >> 21) & 511)
                if address == 0 {
                    let pt = try child(of: pd, index: index)
                    for page in 1..<512 { pt[page] = UInt64(page) << 12 | flags }
                } else if pd[index] & PageTables.present == 0 {
                    pd[index] = address | flags | PageTables.largePage
                }
                let (next, overflow) = address.addingReportingOverflow(PageTables.twoMiB)
                if overflow { break }
                address = next
            }
        }
    }

    /// Maps one 4 KiB page at `virtual` to `physical` (both page-aligned). The 2 MiB region
    /// around `virtual` must not be mapped by a large page. Returns false if it is.
    public mutating func mapPage(virtual: UInt64, physical: UInt64) throws(PageTableError) -> Bool {
        let pd = try table(at: virtual, level: 2)
        let index = Int((virtual >> 21) & 511)
        if pd[index] & PageTables.largePage != 0 { return false }
        let pt = try child(of: pd, index: index)
        pt[Int((virtual >> 12) & 511)] = physical | PageTables.present | PageTables.writable
        return true
    }

    /// Removes the 4 KiB mapping at `virtual`; returns the physical page it mapped, or nil.
    /// The caller invalidates the TLB entry (INVLPG) on every CPU that may hold it.
    public mutating func unmapPage(virtual: UInt64) -> UInt64? {
        var table = PageTables.pointer(root)
        var shift: UInt64 = 39
        for _ in 0..<3 {
            let entry = table[Int((virtual >> shift) & 511)]
            guard entry & PageTables.present != 0, entry & PageTables.largePage == 0 else { return nil }
            table = PageTables.pointer(entry & PageTables.addressMask)
            shift -= 9
        }
        let index = Int((virtual >> 12) & 511)
        guard table[index] & PageTables.present != 0 else { return nil }
        let physical = table[index] & PageTables.addressMask
        table[index] = 0
        return physical
    }

    /// The table at `level` (3 = PDPT, 2 = PD) that covers `address`, created on demand.
    private mutating func table(at address: UInt64, level: Int) throws(PageTableError) -> UnsafeMutablePointer<UInt64> {
        var table = PageTables.pointer(root)
        var shift: UInt64 = 39
        var current = 4
        while current > level {
            table = try child(of: table, index: Int((address >> shift) & 511))
            shift -= 9
            current -= 1
        }
        return table
    }

    private mutating func child(of table: UnsafeMutablePointer<UInt64>, index: Int) throws(PageTableError) -> UnsafeMutablePointer<UInt64> {
        if table[index] & PageTables.present == 0 {
            guard let page = allocatePage() else { throw .outOfMemory }
            pageCount += 1
            table[index] = page | PageTables.present | PageTables.writable
        }
        return PageTables.pointer(table[index] & PageTables.addressMask)
    }

    static func pointer(_ physical: UInt64) -> UnsafeMutablePointer<UInt64> {
        UnsafeMutablePointer<UInt64>(bitPattern: UInt(physical))!
    }

    /// Walks the tables like the MMU: the physical address `virtual` maps to, or nil.
    public func translate(_ virtual: UInt64) -> UInt64? {
        var table = PageTables.pointer(root)
        var shift: UInt64 = 39
        for level in stride(from: 4, through: 1, by: -1) {
            let entry = table[Int((virtual >> shift) & 511)]
            guard entry & PageTables.present != 0 else { return nil }
            if level == 1 || (level == 2 && entry & PageTables.largePage != 0) {
                let pageMask: UInt64 = (1 << shift) - 1
                return (entry & PageTables.addressMask & ~pageMask) | (virtual & pageMask)
            }
            table = PageTables.pointer(entry & PageTables.addressMask)
            shift -= 9
        }
        return nil
    }

    /// The entry flags that map `virtual` (for tests: cached or not).
    public func isUncached(_ virtual: UInt64) -> Bool {
        var table = PageTables.pointer(root)
        var shift: UInt64 = 39
        for level in stride(from: 4, through: 1, by: -1) {
            let entry = table[Int((virtual >> shift) & 511)]
            guard entry & PageTables.present != 0 else { return false }
            if level == 1 || (level == 2 && entry & PageTables.largePage != 0) {
                return entry & PageTables.cacheDisable != 0
            }
            table = PageTables.pointer(entry & PageTables.addressMask)
            shift -= 9
        }
        return false
    }
}
