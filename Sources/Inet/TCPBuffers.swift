// The byte storage behind one TCP connection: what the service wrote and the peer has not
// acknowledged (TCPSendBuffer), and what the peer sent that the service has not read,
// with the out-of-order bytes beside it (TCPReceiveBuffer).
//
// Both grow only when used, from one page, doubling up to their capacity; every growth is
// asked of the memory budget first (MemoryBudget.grow: the connection was admitted). A
// growth refused is not an error: the sender takes fewer bytes (its service waits), the
// receiver drops the segment (its peer retransmits). A connection that never moved data
// costs no buffer; one that did keeps its storage until it closes (no churn per request).
//
// Rules: one connection's buffers are touched by one thread at a time (the network thread
// or its service's thread, cooperatively on one CPU).
import Core

/// A ring of bytes whose storage grows on demand (the common part of both buffers).
struct ByteRing {
    static let initialStorage = 4096

    private(set) var storage: [UInt8] = []
    /// Index of byte 0 (the oldest) in `storage`.
    private(set) var head = 0
    let capacity: Int

    init(capacity: Int) {
        precondition(capacity > 0, "TCP buffer needs room")
        self.capacity = capacity
    }

    var allocated: Int { storage.count }

    /// Makes the storage hold at least `needed` bytes, keeping bytes 0..<`keep` in order.
    /// False when the budget refused (nothing changed).
    mutating func reserve(_ needed: Int, keeping keep: Int) -> Bool {
        if needed <= storage.count { return true }
        var size = max(storage.count, ByteRing.initialStorage)
        while size < needed { size *= 2 }
        size = min(size, capacity)
        guard size >= needed, MemoryBudget.grow(size - storage.count, for: "a TCP buffer") else { return false }
        var larger = [UInt8](repeating: 0, count: size)
        if keep > 0 {
            larger.withUnsafeMutableBytes { copy(from: 0, into: UnsafeMutableRawBufferPointer(rebasing: $0[0 ..< keep])) }
        }
        storage = larger
        head = 0
        return true
    }

    /// Copies bytes `offset..<offset + buffer.count` out (they must be within storage).
    func copy(from offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        let size = storage.count
        guard buffer.count > 0, size > 0 else { return }
        let start = (head + offset) % size
        let first = min(buffer.count, size - start)
        storage.withUnsafeBytes { ring in
            UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< first])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: ring[start ..< start + first]))
            if first < buffer.count {
                UnsafeMutableRawBufferPointer(rebasing: buffer[first...])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: ring[0 ..< buffer.count - first]))
            }
        }
    }

    /// Writes `bytes` at `offset` (within storage).
    mutating func store(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        let size = storage.count
        guard bytes.count > 0, size > 0 else { return }
        let start = (head + offset) % size
        let first = min(bytes.count, size - start)
        storage.withUnsafeMutableBytes { ring in
            UnsafeMutableRawBufferPointer(rebasing: ring[start ..< start + first])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0 ..< first]))
            if first < bytes.count {
                UnsafeMutableRawBufferPointer(rebasing: ring[0 ..< bytes.count - first])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[first...]))
            }
        }
    }

    /// Forgets the oldest `count` bytes.
    mutating func advance(_ count: Int) {
        guard storage.count > 0 else { return }
        head = (head + count) % storage.count
    }

    /// Gives the storage back (the connection is done with it).
    mutating func release() {
        storage = []
        head = 0
    }
}

/// What the service wrote: byte 0 is the oldest unacknowledged (SND.UNA's).
struct TCPSendBuffer {
    private var ring: ByteRing
    /// Bytes held (sent and unacknowledged, then unsent).
    private(set) var count = 0

    init(capacity: Int) { ring = ByteRing(capacity: capacity) }

    var capacity: Int { ring.capacity }
    var free: Int { ring.capacity - count }
    var allocated: Int { ring.allocated }

    /// Appends as much of `bytes` as fits (and as memory allows); returns how many.
    mutating func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        var take = min(bytes.count, free)
        guard take > 0 else { return 0 }
        if count + take > ring.allocated && !ring.reserve(count + take, keeping: count) {
            take = min(take, ring.allocated - count)
            if take <= 0 { return 0 }
        }
        ring.store(UnsafeRawBufferPointer(rebasing: bytes[0 ..< take]), at: count)
        count += take
        return take
    }

    /// Copies bytes `offset..<offset + buffer.count` (a segment's data) into `buffer`.
    func copy(from offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        precondition(offset >= 0 && offset + buffer.count <= count, "TCP send buffer range")
        ring.copy(from: offset, into: buffer)
    }

    /// The peer acknowledged the oldest `acknowledged` bytes.
    mutating func drop(_ acknowledged: Int) {
        let n = min(acknowledged, count)
        ring.advance(n)
        count -= n
    }

    mutating func release() {
        ring.release()
        count = 0
    }
}

/// What the peer sent: `readable` in-order bytes from byte 0, then room up to the window
/// for segments that arrived ahead of a gap (at most `maximumIntervals` runs of them).
struct TCPReceiveBuffer {
    /// Runs of out-of-order data kept; a segment that would need another is dropped.
    static let maximumIntervals = 8

    private var ring: ByteRing
    /// In-order bytes not yet read.
    private(set) var readable = 0
    /// Out-of-order runs, as offsets from the first byte after `readable` (RCV.NXT),
    /// sorted, disjoint and not touching.
    private(set) var intervals: [(start: Int, end: Int)] = []

    init(capacity: Int) { ring = ByteRing(capacity: capacity) }

    var capacity: Int { ring.capacity }
    var allocated: Int { ring.allocated }
    /// The window: room from RCV.NXT to the end of the capacity.
    var window: Int { ring.capacity - readable }
    /// Bytes held ahead of a gap.
    var outOfOrderBytes: Int { intervals.reduce(0) { $0 + $1.end - $1.start } }

    /// Stores `bytes`, which start `offset` bytes after RCV.NXT and end within the window.
    /// Returns how far RCV.NXT moves (0 for a segment ahead of a gap), or nil when the
    /// segment was dropped (memory refused, or too many gaps).
    mutating func store(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Int? {
        let end = offset + bytes.count
        precondition(offset >= 0 && end <= window, "TCP receive buffer window")
        guard !bytes.isEmpty else { return 0 }
        let extent = readable + max(end, intervals.last?.end ?? 0)
        if extent > ring.allocated {
            // Keep every byte up to the furthest one held.
            let keep = readable + (intervals.last?.end ?? 0)
            guard ring.reserve(extent, keeping: keep) else { return nil }
        }
        if offset > 0 {
            guard insertInterval(offset, end) else { return nil }
            ring.store(bytes, at: readable + offset)
            return 0
        }
        ring.store(bytes, at: readable)
        var advance = end
        // Runs now reached join the in-order bytes.
        while let first = intervals.first, first.start <= advance {
            advance = max(advance, first.end)
            intervals.removeFirst()
        }
        readable += advance
        for i in intervals.indices {
            intervals[i].start -= advance
            intervals[i].end -= advance
        }
        if intervals.isEmpty { intervals = [] }
        return advance
    }

    /// Records run `start..<end`, merging with its neighbours. False when that would need
    /// more than `maximumIntervals` runs.
    private mutating func insertInterval(_ start: Int, _ end: Int) -> Bool {
        var merged = (start: start, end: end)
        var kept: [(start: Int, end: Int)] = []
        var placed = false
        for run in intervals {
            if run.end < merged.start {
                kept.append(run)
            } else if run.start > merged.end {
                if !placed { kept.append(merged); placed = true }
                kept.append(run)
            } else {
                merged = (min(merged.start, run.start), max(merged.end, run.end))
            }
        }
        if !placed { kept.append(merged) }
        guard kept.count <= TCPReceiveBuffer.maximumIntervals else { return false }
        intervals = kept
        return true
    }

    /// Moves up to `buffer.count` in-order bytes out; returns how many.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(buffer.count, readable)
        guard n > 0 else { return 0 }
        ring.copy(from: 0, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< n]))
        ring.advance(n)
        readable -= n
        return n
    }

    mutating func release() {
        ring.release()
        readable = 0
        intervals = []
    }
}
