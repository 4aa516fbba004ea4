import XCTest
@testable import Core

/// Physical memory made of byte blobs at chosen addresses.
struct FakePhysicalMemory: PhysicalReader {
    var blobs: [(UInt64, [UInt8])] = []

    mutating func put(_ address: UInt64, _ bytes: [UInt8]) { blobs.append((address, bytes)) }

    func bytes(at address: UInt64, count: Int) -> UnsafeRawBufferPointer? {
        for (base, blob) in blobs where address >= base && address + UInt64(count) <= base + UInt64(blob.count) {
            let offset = Int(address - base)
            // The blob arrays live as long as the reader; tests read them immediately.
            return blob.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)]) }
        }
        return nil
    }
}

/// Little-endian byte builder.
struct Bytes {
    var data: [UInt8] = []
    mutating func u32(_ v: UInt32) { for i in 0..<4 { data.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { data.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
}

func pvhStartInfo(magic: UInt32 = BootInfo.pvhMagic, version: UInt32 = 1, cmdline: UInt64, memmap: UInt64, entries: UInt32) -> [UInt8] {
    var b = Bytes()
    b.u32(magic); b.u32(version); b.u32(0); b.u32(0)
    b.u64(0); b.u64(cmdline); b.u64(0); b.u64(memmap)
    b.u32(entries); b.u32(0)
    return b.data
}

func pvhMemoryMap(_ entries: [(UInt64, UInt64, UInt32)]) -> [UInt8] {
    var b = Bytes()
    for (addr, size, type) in entries { b.u64(addr); b.u64(size); b.u32(type); b.u32(0) }
    return b.data
}

final class BootInfoTests: XCTestCase {
    let microvmMap: [(UInt64, UInt64, UInt32)] = [
        (0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xF0000, 0x10000, 2), (0x100000, 0x3F00000, 1),
    ]

    func testPVHParsesMemoryMapAndCommandLine() throws {
        var memory = FakePhysicalMemory()
        memory.put(0x6000, pvhStartInfo(cmdline: 0x7000, memmap: 0x6100, entries: 4))
        memory.put(0x6100, pvhMemoryMap(microvmMap))
        memory.put(0x7000, Array("service=hello x=1".utf8) + [0])
        let info = try BootInfo.parsePVH(at: 0x6000, reader: memory)
        XCTAssertEqual(info.commandLine, Array("service=hello x=1".utf8))
        XCTAssertEqual(info.memoryMap.entries.count, 4)
        XCTAssertEqual(info.memoryMap.ramRanges, [
            PhysicalRange(start: 0, end: 0x9FC00), PhysicalRange(start: 0x100000, end: 0x4000000),
        ])
        XCTAssertEqual(info.memoryMap.installedMiB, 64)
        XCTAssertTrue(info.loaderRanges.contains(PhysicalRange(start: 0x7000, end: 0x7000 + 18)))
        XCTAssertTrue(info.loaderRanges.contains(PhysicalRange(start: 0x6100, end: 0x6100 + 96)))
    }

    func testPVHRejectsMalformedInput() {
        var memory = FakePhysicalMemory()
        memory.put(0x6000, pvhStartInfo(magic: 0x1234, cmdline: 0, memmap: 0x6100, entries: 1))
        XCTAssertThrowsError(try BootInfo.parsePVH(at: 0x6000, reader: memory)) {
            XCTAssertEqual($0 as? BootInfoError, .badMagic(0x1234))
        }
        // Version 0 has no memory map.
        memory = FakePhysicalMemory()
        memory.put(0x6000, pvhStartInfo(version: 0, cmdline: 0, memmap: 0, entries: 0))
        XCTAssertThrowsError(try BootInfo.parsePVH(at: 0x6000, reader: memory)) {
            XCTAssertEqual($0 as? BootInfoError, .noMemoryMap)
        }
        // The table claims more entries than the memory holds.
        memory = FakePhysicalMemory()
        memory.put(0x6000, pvhStartInfo(cmdline: 0, memmap: 0x6100, entries: 9))
        memory.put(0x6100, pvhMemoryMap(microvmMap))
        XCTAssertThrowsError(try BootInfo.parsePVH(at: 0x6000, reader: memory)) {
            XCTAssertEqual($0 as? BootInfoError, .unreadable(what: "memory map"))
        }
        // A count beyond the capacity is refused before anything is read.
        memory = FakePhysicalMemory()
        memory.put(0x6000, pvhStartInfo(cmdline: 0, memmap: 0x6100, entries: 100_000))
        XCTAssertThrowsError(try BootInfo.parsePVH(at: 0x6000, reader: memory)) {
            XCTAssertEqual($0 as? BootInfoError, .memoryMap(.tooManyEntries))
        }
        // An entry whose end overflows 64 bits.
        memory = FakePhysicalMemory()
        memory.put(0x6000, pvhStartInfo(cmdline: 0, memmap: 0x6100, entries: 1))
        memory.put(0x6100, pvhMemoryMap([(0xFFFF_FFFF_FFFF_0000, 0x20000, 1)]))
        XCTAssertThrowsError(try BootInfo.parsePVH(at: 0x6000, reader: memory)) {
            XCTAssertEqual($0 as? BootInfoError, .memoryMap(.overflowingEntry))
        }
        // A command line with no terminator inside the limit.
        memory = FakePhysicalMemory()
        memory.put(0x6000, pvhStartInfo(cmdline: 0x8000, memmap: 0x6100, entries: 1))
        memory.put(0x6100, pvhMemoryMap([(0x100000, 0x100000, 1)]))
        memory.put(0x8000, [UInt8](repeating: 65, count: BootInfo.commandLineLimit + 10))
        XCTAssertThrowsError(try BootInfo.parsePVH(at: 0x6000, reader: memory)) {
            XCTAssertEqual($0 as? BootInfoError, .commandLineTooLong)
        }
        // start_info itself unreadable.
        XCTAssertThrowsError(try BootInfo.parsePVH(at: 0x9000, reader: FakePhysicalMemory())) {
            XCTAssertEqual($0 as? BootInfoError, .unreadable(what: "hvm_start_info"))
        }
    }

    func multibootInfo(flags: UInt32, cmdline: UInt32, mmapLength: UInt32, mmapAddress: UInt32) -> [UInt8] {
        var b = Bytes()
        b.u32(flags); b.u32(639); b.u32(64512); b.u32(0); b.u32(cmdline)
        for _ in 0..<6 { b.u32(0) }       // mods_count, mods_addr, syms[4]
        b.u32(mmapLength); b.u32(mmapAddress)
        for _ in 0..<9 { b.u32(0) }
        return b.data
    }

    func multibootMap(_ entries: [(UInt64, UInt64, UInt32)], entrySize: UInt32 = 20) -> [UInt8] {
        var b = Bytes()
        for (addr, len, type) in entries {
            b.u32(entrySize); b.u64(addr); b.u64(len); b.u32(type)
            for _ in 0..<(Int(entrySize) - 20) { b.data.append(0) }
        }
        return b.data
    }

    func testMultibootParsesMemoryMapAndCommandLine() throws {
        let pcMap: [(UInt64, UInt64, UInt32)] = [
            (0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xF0000, 0x10000, 2),
            (0x100000, 0x3EE0000, 1), (0x3FE0000, 0x20000, 2), (0xFFFC0000, 0x40000, 2),
        ]
        var memory = FakePhysicalMemory()
        let map = multibootMap(pcMap, entrySize: 24)   // larger entries are skipped by size
        memory.put(0x9000, multibootInfo(flags: 1 << 2 | 1 << 6, cmdline: 0xA000, mmapLength: UInt32(map.count), mmapAddress: 0xB000))
        memory.put(0xA000, Array("service=fault".utf8) + [0])
        memory.put(0xB000, map)
        let info = try BootInfo.parseMultiboot(magic: BootInfo.multibootMagic, at: 0x9000, reader: memory)
        XCTAssertEqual(info.commandLine, Array("service=fault".utf8))
        XCTAssertEqual(info.memoryMap.entries.count, 6)
        XCTAssertEqual(info.memoryMap.ramRanges.last, PhysicalRange(start: 0x100000, end: 0x3FE0000))
        XCTAssertEqual(info.memoryMap.installedMiB, 64)
    }

    func testMultibootRejectsMalformedInput() {
        var memory = FakePhysicalMemory()
        XCTAssertThrowsError(try BootInfo.parseMultiboot(magic: 0xDEAD, at: 0x9000, reader: memory)) {
            XCTAssertEqual($0 as? BootInfoError, .badMagic(0xDEAD))
        }
        memory.put(0x9000, multibootInfo(flags: 0, cmdline: 0, mmapLength: 0, mmapAddress: 0))
        XCTAssertThrowsError(try BootInfo.parseMultiboot(magic: BootInfo.multibootMagic, at: 0x9000, reader: memory)) {
            XCTAssertEqual($0 as? BootInfoError, .noMemoryMap)
        }
        // An entry whose size field is too small to hold an entry.
        memory = FakePhysicalMemory()
        let bad = multibootMap([(0x100000, 0x100000, 1)], entrySize: 20).enumerated().map { $0.offset == 0 ? UInt8(4) : $0.element }
        memory.put(0x9000, multibootInfo(flags: 1 << 6, cmdline: 0, mmapLength: UInt32(bad.count), mmapAddress: 0xB000))
        memory.put(0xB000, bad)
        XCTAssertThrowsError(try BootInfo.parseMultiboot(magic: BootInfo.multibootMagic, at: 0x9000, reader: memory)) {
            XCTAssertEqual($0 as? BootInfoError, .memoryMap(.truncated))
        }
        // mmap_length that is not a whole number of entries.
        memory = FakePhysicalMemory()
        let map = multibootMap([(0x100000, 0x100000, 1)]) + [0, 0, 0, 0]
        memory.put(0x9000, multibootInfo(flags: 1 << 6, cmdline: 0, mmapLength: UInt32(map.count), mmapAddress: 0xB000))
        memory.put(0xB000, map)
        XCTAssertThrowsError(try BootInfo.parseMultiboot(magic: BootInfo.multibootMagic, at: 0x9000, reader: memory)) {
            XCTAssertEqual($0 as? BootInfoError, .memoryMap(.truncated))
        }
        // The command line pointer leads nowhere.
        memory = FakePhysicalMemory()
        memory.put(0x9000, multibootInfo(flags: 1 << 2 | 1 << 6, cmdline: 0x77000, mmapLength: 24, mmapAddress: 0xB000))
        XCTAssertThrowsError(try BootInfo.parseMultiboot(magic: BootInfo.multibootMagic, at: 0x9000, reader: memory)) {
            XCTAssertEqual($0 as? BootInfoError, .unreadable(what: "command line"))
        }
    }
}
