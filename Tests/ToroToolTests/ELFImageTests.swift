// The kernel's minimum memory, read from a synthetic ELF64 header.

import XCTest
@testable import ToroTool

final class ELFImageTests: XCTestCase {
    /// An ELF64 little-endian file with the given (type, paddr, memsz) program headers.
    func elf(_ segments: [(UInt32, UInt64, UInt64)]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 64 + 56 * segments.count)
        bytes[0...5] = [0x7f, 0x45, 0x4c, 0x46, 2, 1]
        func put(_ value: UInt64, at offset: Int, size: Int) {
            for i in 0..<size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
        put(64, at: 0x20, size: 8)                       // e_phoff
        put(56, at: 0x36, size: 2)                       // e_phentsize
        put(UInt64(segments.count), at: 0x38, size: 2)   // e_phnum
        for (index, (type, paddr, memsz)) in segments.enumerated() {
            let base = 64 + 56 * index
            put(UInt64(type), at: base, size: 4)
            put(paddr, at: base + 0x18, size: 8)
            put(memsz, at: base + 0x28, size: 8)
        }
        return bytes
    }

    func testLoadEnd() {
        XCTAssertEqual(ELFImage.loadEnd(elf([(1, 0x100000, 0x6000), (4, 0x100100, 0x20)])), 0x106000)
        XCTAssertEqual(ELFImage.loadEnd(elf([(1, 0x100000, 0x1000), (1, 0x300000, 0x800)])), 0x300800)
    }

    func testMinimumMemory() {
        // 1 MiB + 24 KiB, plus 1 MiB headroom: 2 MiB + 24 KiB -> 3 MiB.
        XCTAssertEqual(ELFImage.minimumMemoryMiB(elf([(1, 0x100000, 0x6000)])), 3)
        // Ends exactly at 1 MiB (empty image): 2 MiB, the floor.
        XCTAssertEqual(ELFImage.minimumMemoryMiB(elf([(1, 0x100000, 0)])), 2)
        // A large .bss: ends at 9 MiB + 1 byte -> 11 MiB.
        XCTAssertEqual(ELFImage.minimumMemoryMiB(elf([(1, 0x100000, 0x800001)])), 11)
        XCTAssertEqual(ELFImage.minimumMemoryMiB(elf([(1, 0, 0x1000)])), 2)
    }

    func testMalformed() {
        XCTAssertNil(ELFImage.minimumMemoryMiB([]))
        XCTAssertNil(ELFImage.minimumMemoryMiB([UInt8](repeating: 0, count: 128)))
        var truncated = elf([(1, 0x100000, 0x1000)])
        truncated.removeLast(10)
        XCTAssertNil(ELFImage.minimumMemoryMiB(truncated))
        XCTAssertNil(ELFImage.minimumMemoryMiB(elf([(1, UInt64.max - 5, 0x1000)])))
        XCTAssertNil(ELFImage.minimumMemoryMiB(elf([(4, 0x100000, 0x10)])))   // no PT_LOAD
        XCTAssertEqual(ELFImage.minimumMemoryMiB(path: "/no/such/file"), ELFImage.defaultMinimumMiB)
    }
}
