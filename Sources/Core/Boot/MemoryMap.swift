// The boot memory map: what RAM the machine has, as the loader described it.
//
// Both boot protocols describe memory as a list of (address, length, type) entries:
// PVH in `hvm_memmap_table_entry` (Xen's arch-x86/hvm/start_info.h), Multiboot in its
// `mmap` buffer (Multiboot 0.6.96, 3.3), both with E820 type numbers. The parsers in
// BootInfo.swift turn those bytes into a `MemoryMap`; the kernel then subtracts what is
// already in use (the kernel image, the null page, boot structures) to get the ranges
// the page-frame allocator may hand out.

/// A half-open range of physical addresses, `start..<end`.
public struct PhysicalRange: Equatable, Sendable {
    public var start: UInt64
    public var end: UInt64
    public init(start: UInt64, end: UInt64) { self.start = start; self.end = end }
    public var length: UInt64 { end > start ? end - start : 0 }
    public var isEmpty: Bool { end <= start }
    public func contains(_ address: UInt64) -> Bool { address >= start && address < end }
    public func overlaps(_ other: PhysicalRange) -> Bool { start < other.end && other.start < end }
}

/// E820 memory types (ACPI 6.4, 15.1), as both protocols report them.
public enum MemoryType: UInt32 {
    case ram = 1
    case reserved = 2
    case acpiReclaimable = 3
    case acpiNVS = 4
    case unusable = 5
}

public struct MemoryMapEntry: Equatable, Sendable {
    public var range: PhysicalRange
    /// The raw E820 type: 1 is usable RAM; anything else is left alone.
    public var type: UInt32
    public init(range: PhysicalRange, type: UInt32) { self.range = range; self.type = type }
    public var isRAM: Bool { type == MemoryType.ram.rawValue }
}

/// Why a memory map was rejected.
public enum MemoryMapError: Error, Equatable {
    /// The table claims more entries or bytes than the boot information holds.
    case truncated
    /// An entry's address plus length overflows 64 bits.
    case overflowingEntry
    /// More entries than `MemoryMap.capacity`.
    case tooManyEntries
    /// No usable RAM at all.
    case noRAM
}

/// A validated memory map: at most `capacity` entries, kept in a fixed buffer so that
/// it can be built before the heap exists.
public struct MemoryMap {
    public static let capacity = 64
    private var storage: [MemoryMapEntry]

    public init() { storage = [] }

    public var entries: [MemoryMapEntry] { storage }

    public mutating func append(_ entry: MemoryMapEntry) throws(MemoryMapError) {
        guard storage.count < MemoryMap.capacity else { throw .tooManyEntries }
        storage.append(entry)
    }

    /// RAM ranges, sorted by address, overlapping or touching ones merged. Parts of RAM
    /// that any non-RAM entry also claims are removed: a firmware that reports both
    /// wins on the side of caution.
    public var ramRanges: [PhysicalRange] {
        var ram = MemoryMap.normalise(storage.filter { $0.isRAM }.map { $0.range })
        for entry in storage where !entry.isRAM {
            ram = MemoryMap.subtract(entry.range, from: ram)
        }
        return ram
    }

    /// Bytes of RAM, rounded to the nearest MiB of the highest RAM address below 4 GiB
    /// plus all RAM above 4 GiB: the figure a user gave QEMU with `-m`.
    public var installedMiB: UInt64 {
        var below4G: UInt64 = 0
        var above4G: UInt64 = 0
        let fourGiB: UInt64 = 0x1_0000_0000
        for range in ramRanges {
            if range.start < fourGiB { below4G = max(below4G, min(range.end, fourGiB)) }
            if range.end > fourGiB { above4G += range.end - max(range.start, fourGiB) }
        }
        return (below4G + above4G + (1 << 19)) >> 20
    }

    /// Sorts and merges overlapping or adjacent ranges; drops empty ones.
    public static func normalise(_ ranges: [PhysicalRange]) -> [PhysicalRange] {
        let sorted = ranges.filter { !$0.isEmpty }.sorted { $0.start < $1.start }
        var result: [PhysicalRange] = []
        for range in sorted {
            if let last = result.last, range.start <= last.end {
                result[result.count - 1].end = max(last.end, range.end)
            } else {
                result.append(range)
            }
        }
        return result
    }

    /// `ranges` minus `hole`.
    public static func subtract(_ hole: PhysicalRange, from ranges: [PhysicalRange]) -> [PhysicalRange] {
        var result: [PhysicalRange] = []
        for range in ranges {
            guard range.overlaps(hole) else { result.append(range); continue }
            if range.start < hole.start { result.append(PhysicalRange(start: range.start, end: hole.start)) }
            if hole.end < range.end { result.append(PhysicalRange(start: hole.end, end: range.end)) }
        }
        return result
    }

    /// RAM the page-frame allocator may use: RAM minus `inUse`, shrunk to whole pages.
    public func usableRanges(excluding inUse: [PhysicalRange], pageSize: UInt64 = 4096) -> [PhysicalRange] {
        var ranges = ramRanges
        for hole in inUse { ranges = MemoryMap.subtract(hole, from: ranges) }
        return ranges.compactMap { range in
            let start = (range.start + pageSize - 1) & ~(pageSize - 1)
            let end = range.end & ~(pageSize - 1)
            return end > start ? PhysicalRange(start: start, end: end) : nil
        }
    }
}
