// A ring index the guest writes while the back-end reads it must be read whole: the
// guest's avail.idx store lands between two byte loads of a memcpy otherwise, and the
// back-end sees a value 256 ahead (the soak's `tx queue broken by the guest:
// availIndexJumped`). A writer thread plays the guest, storing only values whose two
// bytes are equal (0x0000, 0x0101, ...); every value MemoryTable.load reads must be one
// of them. Without single loads this caught a torn value within a second here.
import XCTest
import Foundation
import Glibc
import Synchronization
@testable import VhostUser

final class MemoryTableTearingTests: XCTestCase {
    func testAnIndexWrittenConcurrentlyIsNeverReadTorn() throws {
        let fd = try makeMemfd(0x1000)
        defer { close(fd) }
        let region = VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 0x1000, userAddress: 0x5000_0000, mmapOffset: 0)
        let backend = try MemoryTable(regions: [region], fds: [dup(fd)])
        let guest = try MemoryTable(regions: [region], fds: [dup(fd)])
        let index = try XCTUnwrap(guest.pointer(0x802, 2)).assumingMemoryBound(to: UInt16.self)
        let stop = Atomic<Bool>(false)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) let target = index
        Thread.detachNewThread {
            var k: UInt8 = 0
            while !stop.load(ordering: .relaxed) {
                k &+= 1
                target.pointee = UInt16(k) &* 0x0101
            }
            done.signal()
        }
        var torn: [UInt16] = []
        var reads = 0
        let end = Posix.monotonicNow() + 3
        while torn.count < 3 && (reads & 0xffff != 0 || Posix.monotonicNow() < end) {
            let value = try XCTUnwrap(backend.load(UInt16.self, at: 0x802))
            if value >> 8 != value & 0xff { torn.append(value) }
            reads += 1
        }
        stop.store(true, ordering: .relaxed)
        done.wait()
        XCTAssertEqual(torn, [], "torn reads among \(reads)")
        // The other widths the rings use are read and written whole too.
        XCTAssertTrue(backend.store(UInt32(0x1122_3344), at: 0x804))
        XCTAssertEqual(guest.load(UInt32.self, at: 0x804), 0x1122_3344)
        XCTAssertTrue(backend.store(UInt64(0x0102_0304_0506_0708), at: 0x808))
        XCTAssertEqual(guest.load(UInt64.self, at: 0x808), 0x0102_0304_0506_0708)
        XCTAssertEqual(guest.load(UInt8.self, at: 0x808), 0x08, "little-endian")
        XCTAssertEqual(guest.load(UInt16.self, at: 0x803), 0x4400 | UInt16(guest.load(UInt8.self, at: 0x803)!), "unaligned still works")
    }
}
