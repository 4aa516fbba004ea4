// The buffer cache against a model: a seeded random sequence of get / change / release /
// sync over a few buffers (forcing dirty evictions), compared at every read and at the end
// with a plain array of blocks. Also: all buffers held is an error, not a hang; sync writes
// in block order then flushes; device errors map to io / readOnly; statistics count.
import XCTest
@testable import Core
import TestSupport

/// A device that records the order of written blocks and can fail on demand.
final class RecordingDevice: BlockDevice {
    let inner: MemoryBlockDevice
    var written: [UInt64] = []
    var failWrites = false
    var failReads = false
    init(sectors: Int, readOnly: Bool = false) { inner = MemoryBlockDevice(bytes: [UInt8](repeating: 0, count: sectors * 512), readOnly: readOnly) }
    var sectorSize: Int { 512 }
    var sectorCount: UInt64 { inner.sectorCount }
    var isReadOnly: Bool { inner.isReadOnly }
    func read(sector: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError) {
        if failReads { throw .io }
        try inner.read(sector: sector, into: buffer)
    }
    func write(sector: UInt64, from buffer: UnsafeRawBufferPointer) throws(BlockDeviceError) {
        if failWrites { throw .deviceFailed }
        try inner.write(sector: sector, from: buffer)
        written.append(sector)
    }
    func flush() throws(BlockDeviceError) { try inner.flush() }
}

final class BufferCacheTests: XCTestCase {
    func testAgainstModel() throws {
        for (blockSize, capacity) in [(1024, 3), (4096, 4), (2048, 8), (512, 2)] {
            let blocks = 24
            let device = RecordingDevice(sectors: blocks * blockSize / 512)
            let cache = try BufferCache(device: device, blockSize: blockSize, capacity: capacity)
            var model = [[UInt8]](repeating: [UInt8](repeating: 0, count: blockSize), count: blocks)
            var rng = RNG(seed: UInt64(blockSize + capacity))
            var held: [CacheBuffer] = []
            for step in 0..<5000 {
                switch rng.below(10) {
                case 0...4 where held.count < capacity:
                    let block = rng.below(blocks)
                    let zeroed = rng.below(6) == 0
                    let buffer = zeroed ? try cache.getZeroed(UInt64(block)) : try cache.get(UInt64(block))
                    if zeroed { model[block] = [UInt8](repeating: 0, count: blockSize) }
                    XCTAssertEqual(Array(cache.bytes(buffer)), model[block], "step \(step)")
                    if rng.below(2) == 0 {
                        let at = rng.below(blockSize)
                        let value = UInt8(truncatingIfNeeded: rng.next())
                        cache.bytes(buffer)[at] = value
                        model[block][at] = value
                        cache.markDirty(buffer)
                    }
                    held.append(buffer)
                case 5...8 where !held.isEmpty:
                    cache.release(held.remove(at: rng.below(held.count)))
                case 9:
                    try cache.sync()
                default:
                    break
                }
            }
            for buffer in held { cache.release(buffer) }
            try cache.sync()
            XCTAssertEqual(cache.dirtyCount, 0)
            for block in 0..<blocks {
                XCTAssertEqual(Array(device.inner.bytes[block * blockSize..<(block + 1) * blockSize]), model[block], "block \(block)")
            }
            let statistics = cache.statistics
            XCTAssertGreaterThan(statistics.hits, 0)
            XCTAssertGreaterThan(statistics.misses, 0)
            XCTAssertGreaterThan(statistics.dirtyEvictions, 0, "capacity \(capacity)")
            XCTAssertEqual(statistics.writes, UInt64(device.written.count))
        }
    }

    func testEveryBufferHeldIsAnError() throws {
        let device = RecordingDevice(sectors: 64)
        let cache = try BufferCache(device: device, blockSize: 1024, capacity: 2)
        let first = try cache.get(0), second = try cache.get(1)
        assertFileSystemError(.outOfMemory) { try cache.get(2) }
        XCTAssertEqual(try cache.get(1).block, 1) // a hit still works
        cache.release(second)
        cache.release(second)
        XCTAssertEqual(try cache.get(2).block, 2)
        cache.release(first)
        XCTAssertEqual(cache.heldCount, 1)
    }

    func testSyncWritesInBlockOrderThenFlushes() throws {
        let device = RecordingDevice(sectors: 64)
        let cache = try BufferCache(device: device, blockSize: 1024, capacity: 8)
        for block: UInt64 in [7, 2, 5, 0, 3] {
            let buffer = try cache.get(block)
            cache.bytes(buffer)[0] = UInt8(block)
            cache.markDirty(buffer)
            cache.release(buffer)
        }
        try cache.sync()
        XCTAssertEqual(device.written, [0, 4, 6, 10, 14])
        XCTAssertEqual(device.inner.flushes, 1)
        try cache.sync()
        XCTAssertEqual(device.written.count, 5)
    }

    func testDeviceErrors() throws {
        let device = RecordingDevice(sectors: 16)
        let cache = try BufferCache(device: device, blockSize: 1024, capacity: 1)
        assertFileSystemError(.io) { try cache.get(8) } // beyond the disk
        device.failReads = true
        assertFileSystemError(.io) { try cache.get(1) }
        device.failReads = false
        let buffer = try cache.get(1)
        cache.bytes(buffer)[0] = 9
        cache.markDirty(buffer)
        cache.release(buffer)
        device.failWrites = true
        assertFileSystemError(.io) { try cache.get(2) } // the dirty eviction failed
        device.failWrites = false
        let again = try cache.get(1)
        XCTAssertEqual(cache.bytes(again)[0], 9, "the dirty block stayed cached")
        cache.release(again)
        try cache.sync()
        XCTAssertEqual(device.inner.bytes[1024], 9)

        let readOnly = RecordingDevice(sectors: 16, readOnly: true)
        let roCache = try BufferCache(device: readOnly, blockSize: 1024, capacity: 2)
        let held = try roCache.get(0)
        roCache.markDirty(held)
        roCache.release(held)
        assertFileSystemError(.readOnly) { try roCache.sync() }
        XCTAssertThrowsError(try BufferCache(device: readOnly, blockSize: 1000, capacity: 2))
        XCTAssertThrowsError(try BufferCache(device: readOnly, blockSize: 1024, capacity: 0))
    }
}
