import XCTest
@testable import Core

final class MPTableTests: XCTestCase {
    /// A configuration table with `cpus` processors (the first is the BSP) and one I/O APIC.
    func configuration(cpus: [(UInt8, UInt8)], entryCount: UInt16 = 0, corrupt: Bool = false) -> [UInt8] {
        var entries: [UInt8] = []
        for (id, flags) in cpus {
            entries += [0, id, 0x14, flags] + [UInt8](repeating: 0, count: 16)
        }
        entries += [1, 0] + Array("ISA   ".utf8)                 // a bus entry
        entries += [2, 4, 0x11, 1, 0x00, 0x00, 0xC0, 0xFE]         // I/O APIC 4 at 0xFEC00000
        var b = Bytes()
        b.data = Array("PCMP".utf8)
        let length = UInt16(44 + entries.count)
        b.data += [UInt8(length & 0xFF), UInt8(length >> 8), 4, 0]
        b.data += Array("TOROTEST".utf8) + Array("TESTTABLE   ".utf8)
        b.u32(0); b.data += [0, 0]
        b.data += [UInt8(entryCount & 0xFF), UInt8(entryCount >> 8)]
        b.u32(0xFEE0_0000)
        b.data += [0, 0, 0, 0]
        b.data += entries
        let sum = b.data.reduce(UInt8(0), &+)
        b.data[7] = 0 &- sum
        if corrupt { b.data[50] ^= 0xFF }
        return b.data
    }

    func floatingPointer(table: UInt32) -> [UInt8] {
        var b = Bytes()
        b.data = Array("_MP_".utf8)
        b.u32(table)
        b.data += [1, 4, 0, 0, 0, 0, 0, 0]
        b.data[10] = 0 &- b.data.reduce(UInt8(0), &+)
        return b.data
    }

    func testFindsProcessorsAndIOAPICLikeQboot() throws {
        var memory = FakePhysicalMemory()
        // qboot: the pointer at 0x9fc00, no EBDA pointer, an entry count of 0.
        memory.put(0x9FC00, floatingPointer(table: 0x9FC10) + configuration(cpus: [(0, 3), (1, 1), (2, 0), (3, 1)]))
        let table = try MPTable.find(reader: memory)
        XCTAssertEqual(table.floatingPointer, 0x9FC00)
        XCTAssertEqual(table.processors, [
            MPProcessor(apicID: 0, isBootstrap: true), MPProcessor(apicID: 1, isBootstrap: false),
            MPProcessor(apicID: 3, isBootstrap: false),
        ], "disabled processors are left out")
        XCTAssertEqual(table.ioAPICs, [MPIOAPIC(id: 4, address: 0xFEC0_0000)])
        XCTAssertEqual(table.localAPICAddress, 0xFEE0_0000)
    }

    func testFindsPointerInBIOSArea() throws {
        var memory = FakePhysicalMemory()
        memory.put(0xF5A50, floatingPointer(table: 0xF5A60) + configuration(cpus: [(1, 1), (0, 3)], entryCount: 4))
        let table = try MPTable.find(reader: memory)
        XCTAssertEqual(table.processors.first, MPProcessor(apicID: 0, isBootstrap: true))
        XCTAssertEqual(table.processors.count, 2)
    }

    func testRejectsBadChecksumsAndEntries() {
        var memory = FakePhysicalMemory()
        memory.put(0x9FC00, floatingPointer(table: 0x9FC10) + configuration(cpus: [(0, 3)], corrupt: true))
        XCTAssertThrowsError(try MPTable.find(reader: memory)) { XCTAssertEqual($0 as? MPTableError, .badConfigurationTable) }

        XCTAssertThrowsError(try MPTable.find(reader: FakePhysicalMemory())) { XCTAssertEqual($0 as? MPTableError, .notFound) }

        // A pointer with a wrong checksum is not a pointer.
        memory = FakePhysicalMemory()
        var pointer = floatingPointer(table: 0x9FC10)
        pointer[10] &+= 1
        memory.put(0x9FC00, pointer + configuration(cpus: [(0, 3)]))
        XCTAssertThrowsError(try MPTable.find(reader: memory)) { XCTAssertEqual($0 as? MPTableError, .notFound) }

        // An entry type the spec does not define.
        var config = configuration(cpus: [(0, 3)])
        config[44] = 9
        config[7] = 0
        config[7] = 0 &- config.reduce(UInt8(0), &+)
        memory = FakePhysicalMemory()
        memory.put(0x9FC00, floatingPointer(table: 0x9FC10) + config)
        XCTAssertThrowsError(try MPTable.find(reader: memory)) { XCTAssertEqual($0 as? MPTableError, .badEntry(offset: 44)) }
    }
}
