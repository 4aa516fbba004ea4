// Parsers for the two boot protocols' information structures.
//
// PVH: `struct hvm_start_info` (Xen public/arch-x86/hvm/start_info.h, version 1 adds the
// memory map). Multiboot v1: the Multiboot information structure (Multiboot 0.6.96, 3.3).
// Both are read through a `PhysicalReader`, so the kernel passes identity-mapped memory
// and the tests pass byte arrays. Nothing a loader wrote is trusted: every pointer is
// bounds-checked through the reader and every count is capped.

/// Reads bytes of physical memory. Returns nil when `address..<address+count` is not
/// readable (not mapped, or outside what the loader may have written).
public protocol PhysicalReader {
    func bytes(at address: UInt64, count: Int) -> UnsafeRawBufferPointer?
}

extension PhysicalReader {
    func u32(_ address: UInt64) -> UInt32? {
        guard let b = bytes(at: address, count: 4) else { return nil }
        return b.loadUnaligned(as: UInt32.self)
    }
    func u64(_ address: UInt64) -> UInt64? {
        guard let b = bytes(at: address, count: 8) else { return nil }
        return b.loadUnaligned(as: UInt64.self)
    }
    /// A NUL-terminated string of at most `limit` bytes.
    func cString(_ address: UInt64, limit: Int) -> [UInt8]? {
        var result: [UInt8] = []
        var at = address
        while result.count < limit {
            guard let b = bytes(at: at, count: 1) else { return nil }
            if b[0] == 0 { return result }
            result.append(b[0])
            at += 1
        }
        return nil
    }
}

/// Why the boot information was rejected.
public enum BootInfoError: Error, Equatable {
    /// The loader's magic value is not the protocol's.
    case badMagic(UInt32)
    /// A structure, table or string lies outside readable memory.
    case unreadable(what: StaticString)
    /// The command line is longer than `BootInfo.commandLineLimit` or not NUL-terminated.
    case commandLineTooLong
    /// The loader gave no memory map.
    case noMemoryMap
    case memoryMap(MemoryMapError)

    public static func == (a: BootInfoError, b: BootInfoError) -> Bool {
        switch (a, b) {
        case let (.badMagic(x), .badMagic(y)): return x == y
        case let (.unreadable(x), .unreadable(y)): return x.utf8Start == y.utf8Start
        case (.commandLineTooLong, .commandLineTooLong), (.noMemoryMap, .noMemoryMap): return true
        case let (.memoryMap(x), .memoryMap(y)): return x == y
        default: return false
        }
    }
}

/// What the kernel needs from the loader, in the same form for both protocols.
public struct BootInfo {
    public static let commandLineLimit = 4096
    public var memoryMap: MemoryMap
    /// The kernel command line's bytes (no terminator).
    public var commandLine: [UInt8]
    /// Physical ranges the loader's structures occupy; kept out of the page allocator.
    public var loaderRanges: [PhysicalRange]

    public init(memoryMap: MemoryMap, commandLine: [UInt8], loaderRanges: [PhysicalRange]) {
        self.memoryMap = memoryMap
        self.commandLine = commandLine
        self.loaderRanges = loaderRanges
    }

    public static let pvhMagic: UInt32 = 0x336E_C578
    public static let multibootMagic: UInt32 = 0x2BAD_B002

    /// Parses `struct hvm_start_info` at `address`.
    ///
    /// Layout: magic u32 @0, version u32 @4, flags u32 @8, nr_modules u32 @12,
    /// modlist_paddr u64 @16, cmdline_paddr u64 @24, rsdp_paddr u64 @32,
    /// memmap_paddr u64 @40, memmap_entries u32 @48 (version >= 1). Each memory map
    /// entry is addr u64, size u64, type u32, reserved u32 (24 bytes).
    public static func parsePVH(at address: UInt64, reader: some PhysicalReader) throws(BootInfoError) -> BootInfo {
        guard let magic = reader.u32(address) else { throw .unreadable(what: "hvm_start_info") }
        guard magic == pvhMagic else { throw .badMagic(magic) }
        guard let version = reader.u32(address + 4), reader.bytes(at: address, count: 56) != nil else {
            throw .unreadable(what: "hvm_start_info")
        }
        guard version >= 1 else { throw .noMemoryMap }
        var loader = [PhysicalRange(start: address, end: address + 56)]
        let commandLine = try readCommandLine(reader.u64(address + 24) ?? 0, reader: reader, loader: &loader)
        let mapAddress = reader.u64(address + 40) ?? 0
        let count = Int(reader.u32(address + 48) ?? 0)
        guard mapAddress != 0, count > 0 else { throw .noMemoryMap }
        guard count <= MemoryMap.capacity else { throw .memoryMap(.tooManyEntries) }
        guard let table = reader.bytes(at: mapAddress, count: count * 24) else { throw .unreadable(what: "memory map") }
        loader.append(PhysicalRange(start: mapAddress, end: mapAddress + UInt64(count * 24)))
        var map = MemoryMap()
        for i in 0..<count {
            let base = table.loadUnaligned(fromByteOffset: i * 24, as: UInt64.self)
            let size = table.loadUnaligned(fromByteOffset: i * 24 + 8, as: UInt64.self)
            let type = table.loadUnaligned(fromByteOffset: i * 24 + 16, as: UInt32.self)
            try addEntry(base: base, size: size, type: type, to: &map)
        }
        return BootInfo(memoryMap: map, commandLine: commandLine, loaderRanges: loader)
    }

    /// Parses the Multiboot information structure at `address` (loader magic already
    /// checked by the caller or passed in `magic`).
    ///
    /// Layout used: flags u32 @0; bit 2 → cmdline u32 @16; bit 6 → mmap_length u32 @44,
    /// mmap_addr u32 @48. Each mmap entry is size u32 (not counting itself), base u64,
    /// length u64, type u32; the next entry starts `size + 4` bytes later.
    public static func parseMultiboot(magic: UInt32, at address: UInt64, reader: some PhysicalReader) throws(BootInfoError) -> BootInfo {
        guard magic == multibootMagic else { throw .badMagic(magic) }
        guard let flags = reader.u32(address), reader.bytes(at: address, count: 52) != nil else {
            throw .unreadable(what: "multiboot info")
        }
        var loader = [PhysicalRange(start: address, end: address + 88)]
        var commandLine: [UInt8] = []
        if flags & (1 << 2) != 0 {
            commandLine = try readCommandLine(UInt64(reader.u32(address + 16) ?? 0), reader: reader, loader: &loader)
        }
        guard flags & (1 << 6) != 0 else { throw .noMemoryMap }
        let length = Int(reader.u32(address + 44) ?? 0)
        let mapAddress = UInt64(reader.u32(address + 48) ?? 0)
        guard length > 0 else { throw .noMemoryMap }
        guard length <= MemoryMap.capacity * 24, let table = reader.bytes(at: mapAddress, count: length) else {
            throw length > MemoryMap.capacity * 24 ? .memoryMap(.tooManyEntries) : .unreadable(what: "memory map")
        }
        loader.append(PhysicalRange(start: mapAddress, end: mapAddress + UInt64(length)))
        var map = MemoryMap()
        var offset = 0
        while offset < length {
            guard offset + 24 <= length else { throw .memoryMap(.truncated) }
            let size = Int(table.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            guard size >= 20 else { throw .memoryMap(.truncated) }
            let base = table.loadUnaligned(fromByteOffset: offset + 4, as: UInt64.self)
            let len = table.loadUnaligned(fromByteOffset: offset + 12, as: UInt64.self)
            let type = table.loadUnaligned(fromByteOffset: offset + 20, as: UInt32.self)
            try addEntry(base: base, size: len, type: type, to: &map)
            offset += size + 4
        }
        return BootInfo(memoryMap: map, commandLine: commandLine, loaderRanges: loader)
    }

    private static func addEntry(base: UInt64, size: UInt64, type: UInt32, to map: inout MemoryMap) throws(BootInfoError) {
        guard size > 0 else { return }
        let (end, overflow) = base.addingReportingOverflow(size)
        guard !overflow else { throw .memoryMap(.overflowingEntry) }
        do {
            try map.append(MemoryMapEntry(range: PhysicalRange(start: base, end: end), type: type))
        } catch {
            throw .memoryMap(error)
        }
    }

    private static func readCommandLine(_ address: UInt64, reader: some PhysicalReader, loader: inout [PhysicalRange]) throws(BootInfoError) -> [UInt8] {
        guard address != 0 else { return [] }
        guard let bytes = reader.cString(address, limit: commandLineLimit) else {
            if reader.bytes(at: address, count: 1) == nil { throw .unreadable(what: "command line") }
            throw .commandLineTooLong
        }
        loader.append(PhysicalRange(start: address, end: address + UInt64(bytes.count) + 1))
        return bytes
    }
}
