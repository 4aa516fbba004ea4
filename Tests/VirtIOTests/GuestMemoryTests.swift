// Guest memory: bounds checks that never trap, little-endian order, the kernel's
// identity memory over a real allocation, and the virtqueue layout arithmetic.
import VirtIO
import XCTest
import TestSupport

final class GuestMemoryTests: XCTestCase {
    func testFakeMemoryIsLittleEndianAndBounded() {
        let memory = FakeGuestMemory(size: 64, base: 0x1000)
        XCTAssertTrue(memory.store(UInt32(0x1122_3344), at: 0x1000))
        XCTAssertEqual(memory.bytes(at: 0x1000, count: 4), [0x44, 0x33, 0x22, 0x11])
        XCTAssertEqual(memory.load(UInt16.self, at: 0x1001), 0x2233)
        XCTAssertTrue(memory.store(UInt64.max, at: 0x1038))              // last 8 bytes
        XCTAssertEqual(memory.load(UInt64.self, at: 0x1038), UInt64.max)

        XCTAssertNil(memory.load(UInt8.self, at: 0xFFF))                   // below
        XCTAssertNil(memory.load(UInt16.self, at: 0x103F))                 // straddles the end
        XCTAssertNil(memory.load(UInt64.self, at: UInt64.max - 3))         // overflows
        let before = memory.storage
        XCTAssertFalse(memory.store(UInt32(7), at: 0x103E))
        XCTAssertFalse(memory.store(UInt8(7), at: 0))
        var scratch = [UInt8](repeating: 0, count: 8)
        XCTAssertFalse(scratch.withUnsafeMutableBytes { memory.read(at: 0x103C, into: $0) })
        XCTAssertFalse([UInt8](repeating: 9, count: 8).withUnsafeBytes { memory.write(at: UInt64.max - 2, from: $0) })
        XCTAssertEqual(memory.storage, before)

        XCTAssertTrue(memory.contains(0x1040, length: 0))
        XCTAssertFalse(memory.contains(0x1000, length: 65))
        XCTAssertFalse(memory.contains(UInt64.max, length: 2))
    }

    func testZeroHelper() {
        let memory = FakeGuestMemory(size: 1024, base: 0)
        memory.fill(at: 0, count: 1024, with: 0xAA)
        XCTAssertTrue(memory.zero(at: 10, count: 600))
        XCTAssertEqual(memory.bytes(at: 9, count: 1), [0xAA])
        XCTAssertEqual(memory.bytes(at: 10, count: 600), [UInt8](repeating: 0, count: 600))
        XCTAssertEqual(memory.bytes(at: 610, count: 1), [0xAA])
        XCTAssertFalse(memory.zero(at: 1000, count: 25))
        XCTAssertEqual(memory.bytes(at: 1000, count: 24), [UInt8](repeating: 0xAA, count: 24))
    }

    func testIdentityMemoryOverARealAllocation() {
        let size = 4096
        let block = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { block.deallocate() }
        block.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        let start = UInt64(UInt(bitPattern: block))
        let memory = IdentityMemory(ranges: [GuestRange(start: start, end: start + UInt64(size))])

        XCTAssertTrue(memory.store(UInt32(0xCAFE_F00D), at: start + 8))
        XCTAssertEqual(block.load(fromByteOffset: 8, as: UInt8.self), 0x0D)
        XCTAssertEqual(memory.load(UInt32.self, at: start + 8), 0xCAFE_F00D)
        XCTAssertEqual(memory.load(UInt16.self, at: start + 9), 0xFEF0)   // unaligned

        let text = bytes("virtqueue")
        XCTAssertTrue(text.withUnsafeBytes { memory.write(at: start + 100, from: $0) })
        var back = [UInt8](repeating: 0, count: text.count)
        XCTAssertTrue(back.withUnsafeMutableBytes { memory.read(at: start + 100, into: $0) })
        XCTAssertEqual(back, text)

        XCTAssertNil(memory.load(UInt8.self, at: start - 1))
        XCTAssertNil(memory.load(UInt32.self, at: start + UInt64(size) - 2))
        XCTAssertFalse(memory.store(UInt8(1), at: start + UInt64(size)))
        XCTAssertNil(memory.load(UInt8.self, at: 0))
        XCTAssertFalse(memory.contains(start, length: UInt64.max))
        XCTAssertNil(IdentityMemory(ranges: []).load(UInt8.self, at: start))
    }

    func testIdentityMemoryNeedsOneRangePerAccess() {
        let block = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
        defer { block.deallocate() }
        let start = UInt64(UInt(bitPattern: block))
        let memory = IdentityMemory(ranges: [GuestRange(start: start, end: start + 32),
                                             GuestRange(start: start + 32, end: start + 64)])
        XCTAssertTrue(memory.store(UInt32(1), at: start + 28))
        XCTAssertFalse(memory.store(UInt32(1), at: start + 30))           // spans the two ranges
        XCTAssertTrue(memory.store(UInt32(1), at: start + 32))
    }

    func testLayoutSizesAndAlignment() {
        XCTAssertEqual(VirtqueueLayout.descriptorTableBytes(size: 256), 4096)
        XCTAssertEqual(VirtqueueLayout.availRingBytes(size: 256), 518)
        XCTAssertEqual(VirtqueueLayout.usedRingBytes(size: 256), 2054)
        let layout = VirtqueueLayout(size: 256, base: 0x10000)
        XCTAssertEqual(layout?.descriptorTable, 0x10000)
        XCTAssertEqual(layout?.availRing, 0x11000)
        XCTAssertEqual(layout?.usedRing, 0x11208)                          // 0x11206 rounded to 4
        XCTAssertEqual(layout?.totalBytes, 0x1208 + 2054)

        for size: UInt16 in [1, 2, 4, 1024, 32768] { XCTAssertTrue(VirtqueueLayout.isValidSize(size)) }
        for size: UInt16 in [0, 3, 100, 32769, 65535] { XCTAssertFalse(VirtqueueLayout.isValidSize(size)) }
        XCTAssertNil(VirtqueueLayout(size: 100, base: 0))
        XCTAssertNil(VirtqueueLayout(size: 16, base: 8))
        XCTAssertNil(VirtqueueLayout(size: 16, base: UInt64.max - 15))
        XCTAssertTrue(VirtqueueLayout.isAligned(descriptorTable: 16, availRing: 2, usedRing: 4))
        XCTAssertFalse(VirtqueueLayout.isAligned(descriptorTable: 8, availRing: 2, usedRing: 4))
        XCTAssertFalse(VirtqueueLayout.isAligned(descriptorTable: 16, availRing: 1, usedRing: 4))
        XCTAssertFalse(VirtqueueLayout.isAligned(descriptorTable: 16, availRing: 2, usedRing: 6))
    }
}
