// The driver-side queue against the device-side queue in one process, over one fake
// guest: buffers go out and come back intact, chains keep their shape, indices wrap,
// a full queue refuses and recovers, notification flags are honoured.
import VirtIO
import XCTest
import TestSupport

final class VirtqueueRoundTripTests: XCTestCase {
    func testSingleRequestAndReply() throws {
        var loop = try LoopbackQueue(size: 8)
        let request = loop.buffer(0), reply = loop.buffer(1)
        loop.memory.corrupt(at: request, with: bytes("ping"))
        let head = try loop.driver.addBuffer(loop.memory, chain: [
            (address: request, length: 4, deviceWritable: false),
            (address: reply, length: 64, deviceWritable: true),
        ])
        XCTAssertEqual(loop.driver.freeDescriptors, 6)

        // Nothing is visible before publish.
        XCTAssertNil(try loop.device.popAvailable(loop.memory))
        try loop.driver.publish(loop.memory)
        XCTAssertTrue(loop.driver.needsNotification(loop.memory))

        let chain = try XCTUnwrap(try loop.device.popAvailable(loop.memory))
        XCTAssertEqual(chain.head, head)
        XCTAssertEqual(chain.segments, [
            DescriptorSegment(address: request, length: 4, isWritable: false),
            DescriptorSegment(address: reply, length: 64, isWritable: true),
        ])
        XCTAssertEqual(chain.readableBytes, 4)
        XCTAssertEqual(chain.writableBytes, 64)
        XCTAssertEqual(try chain.readableContents(loop.memory), bytes("ping"))
        let written = try bytes("pong!").withUnsafeBytes { (raw) throws(VirtqueueError) in
            try chain.writeWritable(loop.memory, from: raw)
        }
        XCTAssertEqual(written, 5)
        XCTAssertNil(try loop.driver.popUsed(loop.memory))                 // not returned yet
        try loop.device.addUsed(loop.memory, head: chain.head, length: 5)
        XCTAssertTrue(loop.device.needsInterrupt(loop.memory))

        let used = try XCTUnwrap(try loop.driver.popUsed(loop.memory))
        XCTAssertEqual(used.id, head)
        XCTAssertEqual(used.length, 5)
        XCTAssertEqual(loop.memory.bytes(at: reply, count: 5), bytes("pong!"))
        XCTAssertEqual(loop.driver.freeDescriptors, 8)
        XCTAssertEqual(loop.driver.chainsOut, 0)
        XCTAssertNil(try loop.driver.popUsed(loop.memory))
        XCTAssertNil(try loop.device.popAvailable(loop.memory))
    }

    func testChainedBuffersKeepTheirShape() throws {
        var loop = try LoopbackQueue(size: 16)
        let parts = [bytes("head-"), bytes("middle-"), bytes("tail")]
        var chain: [(address: UInt64, length: UInt32, deviceWritable: Bool)] = []
        for (i, part) in parts.enumerated() {
            loop.memory.corrupt(at: loop.buffer(i), with: part)
            chain.append((address: loop.buffer(i), length: UInt32(part.count), deviceWritable: false))
        }
        chain.append((address: loop.buffer(3), length: 3, deviceWritable: true))
        chain.append((address: loop.buffer(4), length: 10, deviceWritable: true))
        let head = try loop.driver.addBuffer(loop.memory, chain: chain)
        try loop.driver.publish(loop.memory)

        let popped = try XCTUnwrap(try loop.device.popAvailable(loop.memory))
        XCTAssertEqual(popped.segments.count, 5)
        XCTAssertEqual(popped.readableBytes, 16)
        XCTAssertEqual(popped.writableBytes, 13)
        XCTAssertEqual(try popped.readableContents(loop.memory), bytes("head-middle-tail"))

        // A read at an offset crossing segment boundaries.
        var window = [UInt8](repeating: 0, count: 9)
        let got = try window.withUnsafeMutableBytes { (raw) throws(VirtqueueError) in
            try popped.readReadable(loop.memory, at: 3, into: raw)
        }
        XCTAssertEqual(got, 9)
        XCTAssertEqual(window, bytes("d-middle-"))

        // A write spanning both writable segments, stopping at their end.
        let reply = bytes("0123456789ABCDEF")
        let put = try reply.withUnsafeBytes { (raw) throws(VirtqueueError) in
            try popped.writeWritable(loop.memory, at: 1, from: raw)
        }
        XCTAssertEqual(put, 12)
        XCTAssertEqual(loop.memory.bytes(at: loop.buffer(3), count: 3), [0] + bytes("01"))
        XCTAssertEqual(loop.memory.bytes(at: loop.buffer(4), count: 10), bytes("23456789AB"))
        // Readable buffers were not written.
        XCTAssertEqual(loop.memory.bytes(at: loop.buffer(0), count: 5), bytes("head-"))

        try loop.device.addUsed(loop.memory, head: popped.head, length: 13)
        let used = try XCTUnwrap(try loop.driver.popUsed(loop.memory))
        XCTAssertEqual(used.id, head)
        XCTAssertEqual(used.length, 13)
        XCTAssertEqual(loop.driver.freeDescriptors, 16)
    }

    func testOutOfOrderCompletionFreesTheRightDescriptors() throws {
        var loop = try LoopbackQueue(size: 8)
        var heads: [UInt16] = []
        for i in 0 ..< 3 {
            heads.append(try loop.driver.addBuffer(loop.memory, chain: [
                (address: loop.buffer(2 * i), length: 8, deviceWritable: false),
                (address: loop.buffer(2 * i + 1), length: 8, deviceWritable: true),
            ]))
        }
        try loop.driver.publish(loop.memory)
        var chains: [DescriptorChain] = []
        while let chain = try loop.device.popAvailable(loop.memory) { chains.append(chain) }
        XCTAssertEqual(chains.map(\.head), heads)
        for chain in chains.reversed() { try loop.device.addUsed(loop.memory, head: chain.head, length: 8) }
        var returned: [UInt16] = []
        while let used = try loop.driver.popUsed(loop.memory) { returned.append(used.id) }
        XCTAssertEqual(returned, heads.reversed())
        XCTAssertEqual(loop.driver.freeDescriptors, 8)

        // Every descriptor is usable again: one chain of all eight.
        let all = (0 ..< 8).map { (address: loop.buffer($0), length: UInt32(4), deviceWritable: $0 >= 4) }
        _ = try loop.driver.addBuffer(loop.memory, chain: all)
        try loop.driver.publish(loop.memory)
        let big = try XCTUnwrap(try loop.device.popAvailable(loop.memory))
        XCTAssertEqual(Set(big.segments.map(\.address)), Set((0 ..< 8).map { loop.buffer($0) }))
    }

    func testWraparoundOverManyOperations() throws {
        var loop = try LoopbackQueue(size: 8)
        var rng = RNG(seed: 42)
        var expected: [(id: UInt16, tag: UInt8, length: UInt32)] = []    // FIFO device order
        var chainCount = 0
        var totalPops = 0
        for round in 0 ..< 40_000 {
            // Post one to three chains while descriptors last.
            let batch = Int(rng.next() % 3) + 1
            for b in 0 ..< batch {
                let readable = Int(rng.next() % 2) + 1
                let writable = Int(rng.next() % 2)
                guard readable + writable <= loop.driver.freeDescriptors else { break }
                let tag = UInt8(truncatingIfNeeded: round &* 7 &+ b)
                let slot = chainCount % 8
                var chain: [(address: UInt64, length: UInt32, deviceWritable: Bool)] = []
                for r in 0 ..< readable {
                    let address = loop.buffer(slot * 4 + r, stride: 64)
                    loop.memory.fill(at: address, count: 4, with: tag)
                    chain.append((address: address, length: 4, deviceWritable: false))
                }
                for w in 0 ..< writable {
                    chain.append((address: loop.buffer(slot * 4 + 2 + w, stride: 64), length: 4, deviceWritable: true))
                }
                let id = try loop.driver.addBuffer(loop.memory, chain: chain)
                expected.append((id: id, tag: tag, length: writable == 0 ? 0 : 4))
                chainCount += 1
            }
            try loop.driver.publish(loop.memory)

            // The device takes everything and returns it in order.
            while let chain = try loop.device.popAvailable(loop.memory) {
                let contents = try chain.readableContents(loop.memory)
                XCTAssertTrue(contents.allSatisfy { $0 == contents.first })
                var reply = [UInt8](repeating: contents.first ?? 0, count: Int(chain.writableBytes))
                let n = try reply.withUnsafeMutableBytes { (raw) throws(VirtqueueError) in
                    try chain.writeWritable(loop.memory, from: UnsafeRawBufferPointer(raw))
                }
                try loop.device.addUsed(loop.memory, head: chain.head, length: UInt32(n))
            }
            // The driver drains (sometimes only part of) the used ring.
            let drain = rng.next() % 4 == 0 ? 1 : Int.max
            var taken = 0
            while taken < drain, let used = try loop.driver.popUsed(loop.memory) {
                let want = expected.removeFirst()
                XCTAssertEqual(used.id, want.id)
                XCTAssertEqual(used.length, want.length)
                taken += 1
                totalPops += 1
            }
        }
        while let used = try loop.driver.popUsed(loop.memory) {
            XCTAssertEqual(used.id, expected.removeFirst().id)
            totalPops += 1
        }
        XCTAssertTrue(expected.isEmpty)
        XCTAssertEqual(totalPops, chainCount)
        XCTAssertGreaterThan(chainCount, 65536)                            // the 16-bit indices wrapped
        XCTAssertEqual(loop.driver.nextAvailIndex, UInt16(truncatingIfNeeded: chainCount))
        XCTAssertEqual(loop.device.nextUsedIndex, UInt16(truncatingIfNeeded: chainCount))
        XCTAssertEqual(loop.driver.freeDescriptors, 8)
        XCTAssertFalse(loop.driver.isFailed)
        XCTAssertFalse(loop.device.isFailed)
    }

    func testFullQueueRefusesAndRecovers() throws {
        var loop = try LoopbackQueue(size: 4)
        var heads: [UInt16] = []
        for i in 0 ..< 3 { heads.append(try loop.driver.addBuffer(loop.memory, address: loop.buffer(i), length: 8, deviceWritable: true)) }
        let descriptorsBefore = loop.memory.bytes(at: loop.layout.descriptorTable, count: 64)
        assertThrows(.notEnoughDescriptors) {
            try loop.driver.addBuffer(loop.memory, chain: [
                (address: loop.buffer(5), length: 1, deviceWritable: false),
                (address: loop.buffer(6), length: 1, deviceWritable: true),
            ])
        }
        XCTAssertEqual(loop.memory.bytes(at: loop.layout.descriptorTable, count: 64), descriptorsBefore)
        heads.append(try loop.driver.addBuffer(loop.memory, address: loop.buffer(3), length: 8, deviceWritable: true))
        XCTAssertEqual(loop.driver.freeDescriptors, 0)
        assertThrows(.notEnoughDescriptors) {
            try loop.driver.addBuffer(loop.memory, address: loop.buffer(4), length: 8, deviceWritable: true)
        }
        XCTAssertFalse(loop.driver.isFailed)
        try loop.driver.publish(loop.memory)

        let chain = try XCTUnwrap(try loop.device.popAvailable(loop.memory))
        try loop.device.addUsed(loop.memory, head: chain.head, length: 8)
        XCTAssertEqual(try loop.driver.popUsed(loop.memory)?.id, heads[0])
        let again = try loop.driver.addBuffer(loop.memory, address: loop.buffer(4), length: 8, deviceWritable: true)
        XCTAssertEqual(again, heads[0])                                    // the freed descriptor
        try loop.driver.publish(loop.memory)
        var seen: [UInt16] = []
        while let chain = try loop.device.popAvailable(loop.memory) { seen.append(chain.head) }
        XCTAssertEqual(seen, [heads[1], heads[2], heads[3], again])
    }

    func testBuffersAreCheckedBeforeAnythingIsWritten() throws {
        var loop = try LoopbackQueue(size: 4)
        let writes = loop.memory.writeCount
        assertThrows(.emptyChain) { try loop.driver.addBuffer(loop.memory, chain: []) }
        assertThrows(.readableAfterWritable) {
            try loop.driver.addBuffer(loop.memory, chain: [
                (address: loop.buffer(0), length: 1, deviceWritable: true),
                (address: loop.buffer(1), length: 1, deviceWritable: false),
            ])
        }
        XCTAssertEqual(loop.memory.writeCount, writes)
        XCTAssertEqual(loop.driver.freeDescriptors, 4)
    }

    func testNotificationSuppressionFlags() throws {
        var loop = try LoopbackQueue(size: 4)
        _ = try loop.driver.addBuffer(loop.memory, address: loop.buffer(0), length: 8, deviceWritable: true)
        try loop.driver.publish(loop.memory)
        XCTAssertTrue(loop.driver.needsNotification(loop.memory))
        try loop.device.setNotificationsSuppressed(true, loop.memory)
        XCTAssertFalse(loop.driver.needsNotification(loop.memory))
        try loop.device.setNotificationsSuppressed(false, loop.memory)
        XCTAssertTrue(loop.driver.needsNotification(loop.memory))

        let chain = try XCTUnwrap(try loop.device.popAvailable(loop.memory))
        try loop.driver.setInterruptsSuppressed(true, loop.memory)
        try loop.device.addUsed(loop.memory, head: chain.head, length: 0)
        XCTAssertFalse(loop.device.needsInterrupt(loop.memory))
        XCTAssertTrue(loop.driver.hasUsed(loop.memory))
        try loop.driver.setInterruptsSuppressed(false, loop.memory)
        XCTAssertTrue(loop.device.needsInterrupt(loop.memory))
        XCTAssertNotNil(try loop.driver.popUsed(loop.memory))
        XCTAssertFalse(loop.driver.hasUsed(loop.memory))
    }

    func testSetUpZeroesTheRingsAndForgetsChains() throws {
        var loop = try LoopbackQueue(size: 4)
        _ = try loop.driver.addBuffer(loop.memory, address: loop.buffer(0), length: 8, deviceWritable: true)
        try loop.driver.publish(loop.memory)
        loop.memory.fill(at: loop.layout.usedRing, count: Int(VirtqueueLayout.usedRingBytes(size: 4)), with: 0xFF)
        try loop.driver.setUp(loop.memory)
        XCTAssertEqual(loop.memory.bytes(at: loop.layout.descriptorTable, count: Int(loop.layout.totalBytes)),
                       [UInt8](repeating: 0, count: Int(loop.layout.totalBytes)))
        XCTAssertEqual(loop.driver.freeDescriptors, 4)
        XCTAssertEqual(loop.driver.nextAvailIndex, 0)
        XCTAssertNil(try loop.driver.popUsed(loop.memory))
    }

    func testQueueConfigurationIsChecked() {
        assertThrows(.invalidSize) {
            try SplitVirtqueue(size: 6, descriptorTable: 0, availRing: 0, usedRing: 0)
        }
        assertThrows(.invalidSize) {
            try DeviceQueue(size: 0, descriptorTable: 0, availRing: 0, usedRing: 0)
        }
        assertThrows(.misalignedRing) {
            try SplitVirtqueue(size: 4, descriptorTable: 8, availRing: 0, usedRing: 0)
        }
        assertThrows(.misalignedRing) {
            try DeviceQueue(size: 4, descriptorTable: 0, availRing: 0, usedRing: 2)
        }
        let memory = FakeGuestMemory(size: 4096, base: 0x1000)
        assertThrows(.ringOutsideMemory) {
            var queue = try SplitVirtqueue(size: 4, descriptorTable: 0x1000, availRing: 0x1040, usedRing: 0x1FFC)
            try queue.setUp(memory)
        }
    }
}
