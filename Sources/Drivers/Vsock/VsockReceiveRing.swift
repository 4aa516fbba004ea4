// The bounded byte ring behind one vsock connection's receive buffer (virtio 1.2 §5.10.6.3).
//
// Its capacity is the buf_alloc the connection advertises, so the credit rules
// (`VsockCredit.recordReceived`) guarantee every accepted payload fits within it. The
// storage grows only when used: nothing is allocated until the first byte arrives, then
// it doubles from 4 KiB as the unread bytes need it, up to the capacity. An idle
// connection costs no buffer, a request/response one a page. Each growth is checked
// against the memory budget first (`MemoryBudget.grow`: the connection was admitted, so it
// may use the upper half of the reserve): when even that is short, `write` refuses and the
// connection is reset instead of the allocation trapping.
import Core
import Drivers

struct VsockReceiveRing {
    /// The first allocation: one page.
    static let initialStorage = 4096

    private var storage: [UInt8] = []
    /// Index of the oldest unread byte.
    private var head = 0
    /// Unread bytes.
    private(set) var count = 0
    /// The most bytes the ring will ever hold (the advertised buf_alloc).
    let capacity: Int

    init(capacity: Int) {
        precondition(capacity > 0, "vsock receive ring needs room")
        self.capacity = capacity
    }

    var free: Int { capacity - count }
    /// Bytes allocated now (0 until the first write).
    var allocated: Int { storage.count }

    /// Appends all of `bytes`; the caller checked `bytes.count <= free`. False, changing
    /// nothing, when the storage had to grow and the memory budget refused.
    mutating func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        precondition(bytes.count <= free, "vsock receive ring overflow")
        if bytes.isEmpty { return true }
        if count + bytes.count > storage.count {
            guard grow(toHold: count + bytes.count) else { return false }
        }
        let size = storage.count
        let tail = (head + count) % size
        let first = min(bytes.count, size - tail)
        storage.withUnsafeMutableBytes { ring in
            UnsafeMutableRawBufferPointer(rebasing: ring[tail ..< tail + first])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0 ..< first]))
            if first < bytes.count {
                UnsafeMutableRawBufferPointer(rebasing: ring[0 ..< bytes.count - first])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[first ..< bytes.count]))
            }
        }
        count += bytes.count
        return true
    }

    /// Moves up to `buffer.count` of the oldest bytes into `buffer`; returns how many.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let total = min(buffer.count, count)
        if total == 0 { return 0 }
        let size = storage.count
        let first = min(total, size - head)
        storage.withUnsafeBytes { ring in
            UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< first])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: ring[head ..< head + first]))
            if first < total {
                UnsafeMutableRawBufferPointer(rebasing: buffer[first ..< total])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: ring[0 ..< total - first]))
            }
        }
        head = (head + total) % size
        count -= total
        if count == 0 { head = 0 }
        return total
    }

    /// Re-lays the unread bytes at the start of a larger storage.
    private mutating func grow(toHold needed: Int) -> Bool {
        var size = max(storage.count, VsockReceiveRing.initialStorage)
        while size < needed { size *= 2 }
        size = min(size, capacity)
        guard MemoryBudget.grow(size, for: "a socket receive buffer") else { return false }
        var larger = [UInt8](repeating: 0, count: size)
        let moved = larger.withUnsafeMutableBytes { raw in read(into: raw) }
        storage = larger
        head = 0
        count = moved
        return true
    }
}
