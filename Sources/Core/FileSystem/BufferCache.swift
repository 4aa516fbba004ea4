// A write-back buffer cache over a `BlockDevice`: fixed-size blocks (1-4 KiB, a multiple of
// the 512-byte sector), a fixed number of buffers, hashed lookup, LRU eviction of buffers
// nobody holds, and reference counts. ext2 reads and writes every block through it.
//
// How it works:
//   * All buffers live in one allocation of `capacity * blockSize` bytes. Lookup is open
//     hashing over arrays (a bucket head per hash, a `next` link per buffer): no Dictionary.
//   * A buffer with no reference sits on the LRU list (least recent at the head); `get`
//     takes it off, the last `release` puts it back at the tail. Never-used buffers start
//     on the list, holding no block.
//   * A miss reuses the LRU head; when that buffer is dirty it is written first (a "dirty
//     eviction"). A write that fails leaves the buffer dirty and cached, and the `get` fails.
//   * `sync` writes every dirty block in block order, then flushes the device.
//
// Rules for callers:
//   * Every `get`/`getZeroed` is paired with one `release`; the bytes (`bytes(_:)`) are
//     valid only while the buffer is held. Change them only after `get`, and call
//     `markDirty` before `release`, or the change may be lost.
//   * When every buffer is held, `get` of an uncached block throws `outOfMemory` (the cache is
//     too small for the caller's working set), never waits.
//   * Device errors become `FileSystemError.io`, a read-only disk's refusal `.readOnly`;
//     a block beyond the disk's end is `.io` (a disk image pointing outside itself).
// Not thread-safe: its owner (one mounted file system) serialises calls.

/// Counters for the exit report. Written by the cache only.
public struct BufferCacheStatistics: Equatable, Sendable {
    /// `get` found the block cached.
    public var hits: UInt64 = 0
    /// `get` had to read the block (or `getZeroed` had to take a buffer).
    public var misses: UInt64 = 0
    /// Dirty buffers written because their buffer was reused for another block.
    public var dirtyEvictions: UInt64 = 0
    /// Blocks written to the device, for any reason.
    public var writes: UInt64 = 0
    /// Blocks read from the device.
    public var reads: UInt64 = 0

    public init() {}
}

/// A held buffer: which slot, and which block it holds. Valid until `release`.
public struct CacheBuffer: Equatable, Sendable {
    let slot: Int32
    /// The block number the buffer holds.
    public let block: UInt64
}

public final class BufferCache {
    public let device: any BlockDevice
    /// Bytes per block.
    public let blockSize: Int
    /// Buffers in the cache.
    public let capacity: Int
    /// Whole blocks on the device.
    public let blockCount: UInt64
    public private(set) var statistics = BufferCacheStatistics()

    let sectorsPerBlock: UInt64
    let storage: UnsafeMutableRawBufferPointer
    /// The block each slot holds, or `noBlock`.
    var blockOf: [UInt64]
    var references: [Int32]
    var dirty: [Bool]
    /// Hash chains: `buckets[hash]` is the first slot, `chain[slot]` the next; -1 ends.
    var buckets: [Int32]
    var chain: [Int32]
    /// The LRU list of unheld slots: `lruHead` is evicted first; -1 ends.
    var lruPrevious: [Int32]
    var lruNext: [Int32]
    var lruHead: Int32 = -1
    var lruTail: Int32 = -1

    static let noBlock = UInt64.max

    /// Why a cache cannot be made with these figures.
    public enum ConfigurationError: Error, Equatable, Sendable {
        /// `blockSize` is not 1, 2 or 4 KiB-ish (a multiple of the sector size, 512-4096).
        case badBlockSize
        /// `capacity` is below 1 or above 1<<20 buffers.
        case badCapacity
    }

    public init(device: any BlockDevice, blockSize: Int, capacity: Int) throws(ConfigurationError) {
        let sector = device.sectorSize
        guard sector > 0, blockSize >= 512, blockSize <= 4096, blockSize % sector == 0 else {
            throw .badBlockSize
        }
        guard capacity >= 1, capacity <= 1 << 20 else { throw .badCapacity }
        self.device = device
        self.blockSize = blockSize
        self.capacity = capacity
        sectorsPerBlock = UInt64(blockSize / sector)
        blockCount = device.sectorCount / sectorsPerBlock
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity * blockSize, alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        blockOf = Array(repeating: BufferCache.noBlock, count: capacity)
        references = Array(repeating: 0, count: capacity)
        dirty = Array(repeating: false, count: capacity)
        var bucketCount = 1
        while bucketCount < capacity * 2 { bucketCount <<= 1 }
        buckets = Array(repeating: -1, count: bucketCount)
        chain = Array(repeating: -1, count: capacity)
        lruPrevious = Array(repeating: -1, count: capacity)
        lruNext = Array(repeating: -1, count: capacity)
        for slot in 0..<Int32(capacity) { appendToLRU(slot) }
    }

    deinit { storage.deallocate() }

    // MARK: Holding blocks

    /// Holds `block`, reading it from the device on a miss.
    public func get(_ block: UInt64) throws(FileSystemError) -> CacheBuffer {
        if let slot = find(block) {
            statistics.hits += 1
            hold(slot)
            return CacheBuffer(slot: slot, block: block)
        }
        statistics.misses += 1
        let slot = try takeFreeSlot(for: block)
        do throws(BlockDeviceError) {
            try device.read(sector: block * sectorsPerBlock, into: bytes(slot))
        } catch {
            forget(slot)
            throw BufferCache.map(error)
        }
        statistics.reads += 1
        insert(slot, block: block)
        return CacheBuffer(slot: slot, block: block)
    }

    /// Holds `block` as all zeros and dirty, without reading it: for a block just allocated.
    public func getZeroed(_ block: UInt64) throws(FileSystemError) -> CacheBuffer {
        let slot: Int32
        if let cached = find(block) {
            statistics.hits += 1
            hold(cached)
            slot = cached
        } else {
            statistics.misses += 1
            slot = try takeFreeSlot(for: block)
            insert(slot, block: block)
        }
        bytes(slot).initializeMemory(as: UInt8.self, repeating: 0)
        dirty[Int(slot)] = true
        return CacheBuffer(slot: slot, block: block)
    }

    /// The held buffer's bytes (`blockSize` of them), valid until `release`.
    public func bytes(_ buffer: CacheBuffer) -> UnsafeMutableRawBufferPointer { bytes(buffer.slot) }

    /// Records that the held buffer's bytes changed; they reach the device at eviction or sync.
    public func markDirty(_ buffer: CacheBuffer) { dirty[Int(buffer.slot)] = true }

    /// Lets go of a buffer from `get`; at the last reference it becomes evictable.
    public func release(_ buffer: CacheBuffer) {
        let slot = buffer.slot
        precondition(references[Int(slot)] > 0 && blockOf[Int(slot)] == buffer.block, "BufferCache: release of a buffer not held")
        references[Int(slot)] -= 1
        if references[Int(slot)] == 0 { appendToLRU(slot) }
    }

    /// Buffers currently held (for tests and leak checks).
    public var heldCount: Int { references.reduce(0) { $0 + ($1 > 0 ? 1 : 0) } }
    /// Dirty buffers not yet written.
    public var dirtyCount: Int { dirty.reduce(0) { $0 + ($1 ? 1 : 0) } }

    // MARK: Writing back

    /// Writes every dirty block, lowest block first, then flushes the device. On an error the
    /// blocks not yet written stay dirty.
    public func sync() throws(FileSystemError) {
        var slots: [Int32] = []
        for slot in 0..<capacity where dirty[slot] { slots.append(Int32(slot)) }
        slots.sort { blockOf[Int($0)] < blockOf[Int($1)] }
        for slot in slots { try writeBack(slot) }
        do throws(BlockDeviceError) { try device.flush() } catch { throw BufferCache.map(error) }
    }

    // MARK: Internals

    func bytes(_ slot: Int32) -> UnsafeMutableRawBufferPointer {
        let start = Int(slot) * blockSize
        return UnsafeMutableRawBufferPointer(rebasing: storage[start..<start + blockSize])
    }

    static func map(_ error: BlockDeviceError) -> FileSystemError {
        error == .readOnly ? .readOnly : .io
    }

    func bucket(_ block: UInt64) -> Int {
        Int(truncatingIfNeeded: (block &* 0x9E37_79B9_7F4A_7C15) >> 32) & (buckets.count - 1)
    }

    func find(_ block: UInt64) -> Int32? {
        var slot = buckets[bucket(block)]
        while slot >= 0 {
            if blockOf[Int(slot)] == block { return slot }
            slot = chain[Int(slot)]
        }
        return nil
    }

    func hold(_ slot: Int32) {
        if references[Int(slot)] == 0 { removeFromLRU(slot) }
        references[Int(slot)] += 1
    }

    /// The LRU head, written back if dirty and unhashed, now held once; for `block`.
    func takeFreeSlot(for block: UInt64) throws(FileSystemError) -> Int32 {
        guard block < blockCount else { throw .io }
        let slot = lruHead
        guard slot >= 0 else { throw .outOfMemory }
        if dirty[Int(slot)] {
            try writeBack(slot)
            statistics.dirtyEvictions += 1
        }
        removeFromLRU(slot)
        unhash(slot)
        references[Int(slot)] = 1
        return slot
    }

    func writeBack(_ slot: Int32) throws(FileSystemError) {
        let block = blockOf[Int(slot)]
        do throws(BlockDeviceError) {
            try device.write(sector: block * sectorsPerBlock, from: UnsafeRawBufferPointer(bytes(slot)))
        } catch {
            throw BufferCache.map(error)
        }
        statistics.writes += 1
        dirty[Int(slot)] = false
    }

    func insert(_ slot: Int32, block: UInt64) {
        blockOf[Int(slot)] = block
        let head = bucket(block)
        chain[Int(slot)] = buckets[head]
        buckets[head] = slot
    }

    func unhash(_ slot: Int32) {
        let block = blockOf[Int(slot)]
        guard block != BufferCache.noBlock else { return }
        let head = bucket(block)
        if buckets[head] == slot {
            buckets[head] = chain[Int(slot)]
        } else {
            var previous = buckets[head]
            while previous >= 0 && chain[Int(previous)] != slot { previous = chain[Int(previous)] }
            if previous >= 0 { chain[Int(previous)] = chain[Int(slot)] }
        }
        chain[Int(slot)] = -1
        blockOf[Int(slot)] = BufferCache.noBlock
    }

    /// A held slot whose read failed: back to the LRU head, holding nothing.
    func forget(_ slot: Int32) {
        references[Int(slot)] = 0
        dirty[Int(slot)] = false
        lruNext[Int(slot)] = lruHead
        lruPrevious[Int(slot)] = -1
        if lruHead >= 0 { lruPrevious[Int(lruHead)] = slot } else { lruTail = slot }
        lruHead = slot
    }

    func appendToLRU(_ slot: Int32) {
        lruPrevious[Int(slot)] = lruTail
        lruNext[Int(slot)] = -1
        if lruTail >= 0 { lruNext[Int(lruTail)] = slot } else { lruHead = slot }
        lruTail = slot
    }

    func removeFromLRU(_ slot: Int32) {
        let previous = lruPrevious[Int(slot)], next = lruNext[Int(slot)]
        if previous >= 0 { lruNext[Int(previous)] = next } else { lruHead = next }
        if next >= 0 { lruPrevious[Int(next)] = previous } else { lruTail = previous }
        lruPrevious[Int(slot)] = -1
        lruNext[Int(slot)] = -1
    }
}
