// A driver that breaks the rules, seen by the device side: loops, wild indices, buffers
// outside guest memory, indirect tables, oversized chains. Each chain is rejected whole
// with its own error, the queue fails, and later calls throw `driverFailed`.
import VirtIO
import XCTest
import TestSupport

final class HostileDriverTests: XCTestCase {
    /// A device queue over rings the test writes by hand, as a hostile driver.
    struct Rings {
        let memory: FakeGuestMemory
        let layout: VirtqueueLayout
        var device: DeviceQueue
        var availIndex: UInt16 = 0

        init(size: UInt16 = 8, memory: FakeGuestMemory? = nil) throws {
            let memory = memory ?? FakeGuestMemory(size: 1 << 16, base: 0x10000)
            self.memory = memory
            layout = try XCTUnwrap(VirtqueueLayout(size: size, base: memory.base))
            device = try DeviceQueue(layout: layout)
        }

        var buffer: UInt64 { memory.base + 0x8000 }

        func descriptor(_ index: UInt16, address: UInt64, length: UInt32, flags: UInt16, next: UInt16 = 0) {
            let at = VirtqueueFormat.descriptor(index, in: layout.descriptorTable)
            memory.poke(address, at: at)
            memory.poke(length, at: at + 8)
            memory.poke(flags, at: at + 12)
            memory.poke(next, at: at + 14)
        }

        /// Puts `head` in the next avail slot and publishes it.
        mutating func offer(_ head: UInt16) {
            memory.poke(head, at: VirtqueueFormat.availSlot(availIndex & (layout.size - 1), in: layout.availRing))
            availIndex &+= 1
            memory.poke(availIndex, at: layout.availRing + VirtqueueFormat.ringIndex)
        }

        mutating func expectRejected(_ expected: VirtqueueError, file: StaticString = #filePath, line: UInt = #line) {
            assertThrows(expected, file: file, line: line) { try device.popAvailable(memory) }
            XCTAssertTrue(device.isFailed, file: file, line: line)
            XCTAssertEqual(device.failure, expected, file: file, line: line)
            XCTAssertEqual(device.chainsHeld, 0, file: file, line: line)
            assertThrows(.driverFailed, file: file, line: line) { try device.popAvailable(memory) }
        }
    }

    static let next = VirtqueueFormat.flagNext
    static let write = VirtqueueFormat.flagWrite

    func testAWellFormedHandWrittenChainIsAccepted() throws {
        var rings = try Rings()
        rings.descriptor(5, address: rings.buffer, length: 10, flags: Self.next, next: 2)
        rings.descriptor(2, address: rings.buffer + 100, length: 20, flags: Self.write)
        rings.offer(5)
        let chain = try XCTUnwrap(try rings.device.popAvailable(rings.memory))
        XCTAssertEqual(chain.head, 5)
        XCTAssertEqual(chain.segments, [DescriptorSegment(address: rings.buffer, length: 10, isWritable: false),
                                        DescriptorSegment(address: rings.buffer + 100, length: 20, isWritable: true)])
    }

    func testChainLoop() throws {
        var rings = try Rings()
        rings.descriptor(0, address: rings.buffer, length: 4, flags: Self.next, next: 1)
        rings.descriptor(1, address: rings.buffer, length: 4, flags: Self.next, next: 0)
        rings.offer(0)
        rings.expectRejected(.chainTooLong)

        var selfLoop = try Rings()
        selfLoop.descriptor(3, address: selfLoop.buffer, length: 4, flags: Self.next, next: 3)
        selfLoop.offer(3)
        selfLoop.expectRejected(.chainTooLong)
    }

    func testChainLongerThanTheQueue() throws {
        // Every descriptor once is the longest legal chain...
        var full = try Rings(size: 4)
        for d in 0 ..< UInt16(3) { full.descriptor(d, address: full.buffer, length: 1, flags: Self.next, next: d + 1) }
        full.descriptor(3, address: full.buffer, length: 1, flags: 0)
        full.offer(0)
        XCTAssertEqual(try full.device.popAvailable(full.memory)?.segments.count, 4)

        // ...one step more must revisit a descriptor.
        var long = try Rings(size: 4)
        for d in 0 ..< UInt16(4) { long.descriptor(d, address: long.buffer, length: 1, flags: Self.next, next: (d + 1) % 4) }
        long.offer(2)
        long.expectRejected(.chainTooLong)
    }

    func testNextOutOfRange() throws {
        var rings = try Rings()
        rings.descriptor(0, address: rings.buffer, length: 4, flags: Self.next, next: 8)
        rings.offer(0)
        rings.expectRejected(.nextOutOfRange(8))
    }

    func testBufferOutsideMemory() throws {
        var below = try Rings()
        below.descriptor(0, address: 0, length: 4, flags: 0)
        below.offer(0)
        below.expectRejected(.descriptorOutsideMemory(0))

        var straddling = try Rings()
        straddling.descriptor(0, address: straddling.buffer, length: 4, flags: Self.next, next: 1)
        straddling.descriptor(1, address: straddling.memory.base + 0xFFF0, length: 0x20, flags: Self.write)
        straddling.offer(0)
        straddling.expectRejected(.descriptorOutsideMemory(1))

        var overflowing = try Rings()
        overflowing.descriptor(0, address: UInt64.max - 3, length: 16, flags: 0)
        overflowing.offer(0)
        overflowing.expectRejected(.descriptorOutsideMemory(0))
    }

    func testIndirectDescriptorIsRefused() throws {
        var rings = try Rings()
        rings.descriptor(0, address: rings.buffer, length: 32, flags: VirtqueueFormat.flagIndirect)
        rings.offer(0)
        rings.expectRejected(.indirectDescriptor(0))
    }

    func testReadableAfterWritable() throws {
        var rings = try Rings()
        rings.descriptor(0, address: rings.buffer, length: 4, flags: Self.write | Self.next, next: 1)
        rings.descriptor(1, address: rings.buffer, length: 4, flags: 0)
        rings.offer(0)
        rings.expectRejected(.chainReadableAfterWritable)
    }

    func testChainOfMoreThanFourGiB() throws {
        var rings = try Rings(memory: nil)
        let big = Unbounded(ring: rings.memory)
        rings.descriptor(0, address: 0x1_0000_0000, length: UInt32.max, flags: Self.next, next: 1)
        rings.descriptor(1, address: 0x2_0000_0000, length: 2, flags: 0)
        rings.offer(0)
        assertThrows(.chainBytesOverflow) { try rings.device.popAvailable(big) }
        XCTAssertTrue(rings.device.isFailed)
    }

    func testAvailIndexJumpsAndWildHeads() throws {
        var jump = try Rings()
        jump.memory.poke(UInt16(9), at: jump.layout.availRing + VirtqueueFormat.ringIndex)
        jump.expectRejected(.availIndexJumped(9))

        var backwards = try Rings()
        backwards.memory.poke(UInt16(0xFFFF), at: backwards.layout.availRing + VirtqueueFormat.ringIndex)
        backwards.expectRejected(.availIndexJumped(0xFFFF))

        var wild = try Rings()
        wild.offer(8)
        wild.expectRejected(.availHeadOutOfRange(8))
    }

    func testHeadOfferedTwiceWhileHeld() throws {
        var rings = try Rings()
        rings.descriptor(0, address: rings.buffer, length: 4, flags: 0)
        rings.offer(0)
        rings.offer(0)
        XCTAssertEqual(try rings.device.popAvailable(rings.memory)?.head, 0)
        assertThrows(.headAlreadyInFlight(0)) { try rings.device.popAvailable(rings.memory) }
        XCTAssertTrue(rings.device.isFailed)
        assertThrows(.driverFailed) { try rings.device.addUsed(rings.memory, head: 0, length: 0) }
    }

    func testMoreOffersThanFreeDescriptors() throws {
        // Seven chains held, then the driver claims two more: 9 > 8 descriptors.
        var rings = try Rings()
        for d in 0 ..< UInt16(8) { rings.descriptor(d, address: rings.buffer, length: 1, flags: 0) }
        for d in 0 ..< UInt16(7) { rings.offer(d) }
        for _ in 0 ..< 7 { XCTAssertNotNil(try rings.device.popAvailable(rings.memory)) }
        rings.offer(7)
        rings.memory.poke(rings.availIndex &+ 1, at: rings.layout.availRing + VirtqueueFormat.ringIndex)
        assertThrows(.availIndexJumped(9)) { try rings.device.popAvailable(rings.memory) }
    }

    func testReturningAChainTheDeviceDoesNotHold() throws {
        var rings = try Rings()
        rings.descriptor(0, address: rings.buffer, length: 4, flags: Self.write)
        rings.offer(0)
        assertThrows(.headNotInFlight(0)) { try rings.device.addUsed(rings.memory, head: 0, length: 0) }
        assertThrows(.headNotInFlight(9)) { try rings.device.addUsed(rings.memory, head: 9, length: 0) }
        XCTAssertFalse(rings.device.isFailed)                              // the caller's bug, not the driver's
        let chain = try XCTUnwrap(try rings.device.popAvailable(rings.memory))
        try rings.device.addUsed(rings.memory, head: chain.head, length: 4)
        assertThrows(.headNotInFlight(0)) { try rings.device.addUsed(rings.memory, head: 0, length: 4) }
        XCTAssertEqual(rings.memory.load(UInt16.self, at: rings.layout.usedRing + VirtqueueFormat.ringIndex), 1)
    }

    func testRingsOutsideMemory() throws {
        let memory = FakeGuestMemory(size: 4096, base: 0x10000)
        var device = try DeviceQueue(size: 8, descriptorTable: 0x10000, availRing: 0x20000, usedRing: 0x10100)
        assertThrows(.ringOutsideMemory) { try device.popAvailable(memory) }
        XCTAssertTrue(device.isFailed)
        XCTAssertTrue(device.needsInterrupt(memory))                       // unreadable flags: interrupt
    }
}

/// Guest memory that claims every non-overflowing range (for a chain of more than 4 GiB)
/// and backs the rings with a fake guest; buffer bytes are never touched by `popAvailable`.
struct Unbounded: GuestMemory {
    let ring: FakeGuestMemory
    func load<T: FixedWidthInteger>(_ type: T.Type, at address: UInt64) -> T? { ring.load(type, at: address) }
    func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) -> Bool { ring.store(value, at: address) }
    func read(at address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool { ring.read(at: address, into: buffer) }
    func write(at address: UInt64, from buffer: UnsafeRawBufferPointer) -> Bool { ring.write(at: address, from: buffer) }
    func contains(_ address: UInt64, length: UInt64) -> Bool { !address.addingReportingOverflow(length).overflow }
}
