// The memory table: regions mmapped from real memfds with their offsets, guest-physical
// and QEMU-virtual translation, and refusal of every access that is not inside one region
// (vhost-user.rst "Memory region description").
import XCTest
import Glibc
@testable import VhostUser

/// A memfd of `size` bytes.
func makeMemfd(_ size: Int) throws -> Int32 {
    let fd = LinuxCalls.memfd("vhost-user-test")
    XCTAssertGreaterThanOrEqual(fd, 0)
    XCTAssertEqual(ftruncate(fd, off_t(size)), 0)
    return fd
}

final class MemoryTableTests: XCTestCase {
    /// Guest RAM as microvm lays it out: 0 - 0xf0000, then 0x100000 - 0x200000, both in one
    /// memfd (the second at file offset 0x100000).
    func makeTable() throws -> (MemoryTable, Int32) {
        let fd = try makeMemfd(0x20_0000)
        let regions = [
            VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 0xf_0000, userAddress: 0x7000_0000_0000, mmapOffset: 0),
            VhostUserMemoryRegion(guestPhysicalAddress: 0x10_0000, size: 0x10_0000, userAddress: 0x7000_0010_0000,
                                  mmapOffset: 0x10_0000),
        ]
        let table = try MemoryTable(regions: regions, fds: [dup(fd), dup(fd)])
        return (table, fd)
    }

    func testAccessesInsideRegions() throws {
        let (table, fd) = try makeTable()
        defer { close(fd) }
        XCTAssertTrue(table.store(UInt64(0x1122_3344_5566_7788), at: 0x10))
        XCTAssertEqual(table.load(UInt64.self, at: 0x10), 0x1122_3344_5566_7788)
        XCTAssertTrue(table.store(UInt32(0xdead_beef), at: 0x10_0004))
        // The same bytes are in the file at the region's mmap offset.
        var word: UInt32 = 0
        XCTAssertEqual(pread(fd, &word, 4, 0x10_0004), 4)
        XCTAssertEqual(word, 0xdead_beef)
        XCTAssertTrue(table.contains(0x1f_fff0, length: 0x10))
    }

    func testAccessesAcrossOrOutsideRegionsAreRefused() throws {
        let (table, fd) = try makeTable()
        defer { close(fd) }
        XCTAssertNil(table.load(UInt32.self, at: 0xe_fffe), "straddles the end of region 0")
        XCTAssertNil(table.load(UInt8.self, at: 0xf_8000), "in the hole")
        XCTAssertNil(table.load(UInt64.self, at: 0x1f_fffc), "runs past the end of region 1")
        XCTAssertNil(table.load(UInt8.self, at: 0x20_0000))
        XCTAssertFalse(table.store(UInt64(1), at: UInt64.max - 3), "wraps around")
        XCTAssertFalse(table.contains(0x8_0000, length: 0x10_0000), "spans both regions")
        var buffer = [UInt8](repeating: 0, count: 32)
        XCTAssertFalse(buffer.withUnsafeMutableBytes { table.read(at: 0xe_fff0, into: $0) })
    }

    func testUserAddressTranslation() throws {
        let (table, fd) = try makeTable()
        defer { close(fd) }
        XCTAssertEqual(table.guestPhysical(forUserAddress: 0x7000_0000_1000), 0x1000)
        XCTAssertEqual(table.guestPhysical(forUserAddress: 0x7000_0010_2000, length: 0x100), 0x10_2000)
        XCTAssertNil(table.guestPhysical(forUserAddress: 0x7000_000e_fff0, length: 0x20), "crosses a region end")
        XCTAssertNil(table.guestPhysical(forUserAddress: 0x1000))
    }

    func testBadRegionsAreRejected() throws {
        let fd = try makeMemfd(0x1000)
        defer { close(fd) }
        func attempt(_ regions: [VhostUserMemoryRegion]) -> VhostUserError? {
            do {
                _ = try MemoryTable(regions: regions, fds: regions.map { _ in dup(fd) })
                return nil
            } catch { return error }
        }
        let good = VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 0x1000, userAddress: 0x10000, mmapOffset: 0)
        XCTAssertNil(attempt([good]))
        var empty = good
        empty.size = 0
        XCTAssertEqual(attempt([empty]), .badRegion("region 0 at 0x0 is empty"))
        var wrapping = good
        wrapping.guestPhysicalAddress = UInt64.max - 0x10
        XCTAssertEqual(attempt([wrapping]), .badRegion("region 0 at 0xffffffffffffffef wraps around the address space"))
        var overlapping = good
        overlapping.userAddress = 0x90000
        overlapping.guestPhysicalAddress = 0x800
        XCTAssertEqual(attempt([good, overlapping]), .badRegion("region 1 at 0x800 overlaps another region"))
        XCTAssertThrowsError(try MemoryTable(regions: [good], fds: [])) {
            XCTAssertEqual($0 as? VhostUserError, .missingFileDescriptors(request: 5, needed: 1, got: 0))
        }
        XCTAssertThrowsError(try MemoryTable(regions: [good], fds: [-1])) {
            guard case .mapFailed = $0 as? VhostUserError else { return XCTFail("\($0)") }
        }
    }
}
