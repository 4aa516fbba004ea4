// A device that breaks the rules, seen by the driver side: every bad value in the used
// ring fails the queue with its own error, later calls throw `deviceFailed`, nothing is
// freed (so nothing is freed twice), and no buffer's memory is touched.
import VirtIO
import XCTest
import TestSupport

final class HostileDeviceTests: XCTestCase {
    /// Three published chains: A (64 writable bytes), B (16 readable + 16 writable),
    /// C (32 readable only). Buffers hold recognisable patterns.
    struct Scene {
        var loop: LoopbackQueue
        var a: UInt16, b: UInt16, c: UInt16
        var bufferSnapshot: [UInt8]

        init() throws {
            loop = try LoopbackQueue(size: 8)
            for i in 0 ..< 4 { loop.memory.fill(at: loop.buffer(i), count: 256, with: UInt8(0xA0 + i)) }
            a = try loop.driver.addBuffer(loop.memory, address: loop.buffer(0), length: 64, deviceWritable: true)
            b = try loop.driver.addBuffer(loop.memory, chain: [
                (address: loop.buffer(1), length: 16, deviceWritable: false),
                (address: loop.buffer(2), length: 16, deviceWritable: true),
            ])
            c = try loop.driver.addBuffer(loop.memory, address: loop.buffer(3), length: 32, deviceWritable: false)
            try loop.driver.publish(loop.memory)
            bufferSnapshot = loop.memory.bytes(at: loop.bufferArea, count: 4 * 256)
        }

        /// Writes used element `slot` and sets used.idx, as a hostile device would.
        func forge(slot: UInt16, id: UInt32, length: UInt32, usedIndex: UInt16) {
            let element = VirtqueueFormat.usedSlot(slot, in: loop.layout.usedRing)
            loop.memory.poke(id, at: element)
            loop.memory.poke(length, at: element + 4)
            loop.memory.poke(usedIndex, at: loop.layout.usedRing + VirtqueueFormat.ringIndex)
        }

        /// The violation is thrown once, then `deviceFailed` everywhere; no descriptor was
        /// freed and no buffer byte changed.
        mutating func expectFailure(_ expected: VirtqueueError, freeBefore: Int,
                                    file: StaticString = #filePath, line: UInt = #line) {
            let writes = loop.memory.writeCount
            assertThrows(expected, file: file, line: line) { try loop.driver.popUsed(loop.memory) }
            XCTAssertTrue(loop.driver.isFailed, file: file, line: line)
            XCTAssertEqual(loop.driver.failure, expected, file: file, line: line)
            XCTAssertEqual(loop.driver.freeDescriptors, freeBefore, file: file, line: line)
            assertThrows(.deviceFailed, file: file, line: line) { try loop.driver.popUsed(loop.memory) }
            assertThrows(.deviceFailed, file: file, line: line) {
                try loop.driver.addBuffer(loop.memory, address: loop.buffer(5), length: 1, deviceWritable: true)
            }
            assertThrows(.deviceFailed, file: file, line: line) { try loop.driver.publish(loop.memory) }
            XCTAssertEqual(loop.driver.freeDescriptors, freeBefore, file: file, line: line)
            XCTAssertEqual(loop.memory.writeCount, writes, "the driver wrote to memory", file: file, line: line)
            XCTAssertEqual(loop.memory.bytes(at: loop.bufferArea, count: 4 * 256), bufferSnapshot, file: file, line: line)
        }
    }

    func testUsedIdOutOfRange() throws {
        var scene = try Scene()
        scene.forge(slot: 0, id: 8, length: 0, usedIndex: 1)
        scene.expectFailure(.usedIdOutOfRange(8), freeBefore: 4)

        var huge = try Scene()
        huge.forge(slot: 0, id: 0xFFFF_0001, length: 0, usedIndex: 1)      // would truncate to 1
        huge.expectFailure(.usedIdOutOfRange(0xFFFF_0001), freeBefore: 4)
    }

    func testUsedIdThatIsNotAPostedHead() throws {
        var scene = try Scene()
        // B's second descriptor: in a chain, but not its head.
        let notHead = scene.b &+ 1
        XCTAssertNotEqual(notHead, scene.c)
        scene.forge(slot: 0, id: UInt32(notHead), length: 0, usedIndex: 1)
        scene.expectFailure(.usedIdNotInFlight(notHead), freeBefore: 4)

        var free = try Scene()
        free.forge(slot: 0, id: 7, length: 0, usedIndex: 1)                 // a free descriptor
        free.expectFailure(.usedIdNotInFlight(7), freeBefore: 4)
    }

    func testUsedIdAddedButNotPublished() throws {
        var scene = try Scene()
        let hidden = try scene.loop.driver.addBuffer(scene.loop.memory, address: scene.loop.buffer(4), length: 8, deviceWritable: true)
        scene.forge(slot: 0, id: UInt32(hidden), length: 0, usedIndex: 1)
        scene.expectFailure(.usedIdNotInFlight(hidden), freeBefore: 3)
    }

    func testDuplicateCompletion() throws {
        var scene = try Scene()
        // The honest device returns A once...
        let chain = try XCTUnwrap(try scene.loop.device.popAvailable(scene.loop.memory))
        XCTAssertEqual(chain.head, scene.a)
        try scene.loop.device.addUsed(scene.loop.memory, head: scene.a, length: 0)
        XCTAssertEqual(try scene.loop.driver.popUsed(scene.loop.memory)?.id, scene.a)
        XCTAssertEqual(scene.loop.driver.freeDescriptors, 5)
        // ...then a second time.
        scene.forge(slot: 1, id: UInt32(scene.a), length: 0, usedIndex: 2)
        scene.expectFailure(.usedIdNotInFlight(scene.a), freeBefore: 5)
    }

    func testUsedLengthLargerThanWritableBytes() throws {
        var scene = try Scene()
        scene.forge(slot: 0, id: UInt32(scene.a), length: 65, usedIndex: 1)
        scene.expectFailure(.usedLengthTooLarge(id: scene.a, length: 65), freeBefore: 4)

        var chained = try Scene()                                          // 16 writable, 32 in total
        chained.forge(slot: 0, id: UInt32(chained.b), length: 17, usedIndex: 1)
        chained.expectFailure(.usedLengthTooLarge(id: chained.b, length: 17), freeBefore: 4)

        var readOnly = try Scene()
        readOnly.forge(slot: 0, id: UInt32(readOnly.c), length: 1, usedIndex: 1)
        readOnly.expectFailure(.usedLengthTooLarge(id: readOnly.c, length: 1), freeBefore: 4)

        // The exact writable length is fine.
        var exact = try Scene()
        exact.forge(slot: 0, id: UInt32(exact.a), length: 64, usedIndex: 1)
        XCTAssertEqual(try exact.loop.driver.popUsed(exact.loop.memory)?.length, 64)
    }

    func testUsedIndexJumps() throws {
        var pastSize = try Scene()
        pastSize.forge(slot: 0, id: UInt32(pastSize.a), length: 0, usedIndex: 9)
        pastSize.expectFailure(.usedIndexJumped(9), freeBefore: 4)

        // Within the queue size, but more than the three chains the device holds.
        var pastPublished = try Scene()
        pastPublished.forge(slot: 0, id: UInt32(pastPublished.a), length: 0, usedIndex: 4)
        pastPublished.expectFailure(.usedIndexJumped(4), freeBefore: 4)

        var backwards = try Scene()
        backwards.forge(slot: 0, id: UInt32(backwards.a), length: 0, usedIndex: 0xFFFF)
        backwards.expectFailure(.usedIndexJumped(0xFFFF), freeBefore: 4)
    }

    func testAScribbledDescriptorTableDoesNotCorruptTheFreeList() throws {
        var scene = try Scene()
        // The device overwrites every descriptor's `next` and flags, then completes B.
        for d in 0 ..< UInt16(8) {
            let at = VirtqueueFormat.descriptor(d, in: scene.loop.layout.descriptorTable)
            scene.loop.memory.poke(UInt16(0xFFFF), at: at + VirtqueueFormat.descriptorFlags)
            scene.loop.memory.poke(UInt16(d), at: at + VirtqueueFormat.descriptorNext)
        }
        scene.forge(slot: 0, id: UInt32(scene.b), length: 16, usedIndex: 1)
        XCTAssertEqual(try scene.loop.driver.popUsed(scene.loop.memory)?.id, scene.b)
        XCTAssertEqual(scene.loop.driver.freeDescriptors, 6)
        // All six free descriptors are distinct and none of A's or C's.
        var heads: Set<UInt16> = []
        for i in 0 ..< 6 {
            heads.insert(try scene.loop.driver.addBuffer(scene.loop.memory, address: scene.loop.buffer(i), length: 1, deviceWritable: true))
        }
        XCTAssertEqual(heads.count, 6)
        XCTAssertFalse(heads.contains(scene.a))
        XCTAssertFalse(heads.contains(scene.c))
        XCTAssertEqual(scene.loop.driver.freeDescriptors, 0)
    }
}
