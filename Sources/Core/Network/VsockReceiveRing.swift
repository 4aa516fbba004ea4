// The bounded byte ring behind one vsock connection's receive buffer (virtio 1.2 §5.10.6.3).
//
// Its capacity is the buf_alloc the connection advertises, so the credit rules
// (`VsockCredit.recordReceived`) guarantee every accepted payload fits: `write` treats an
// overflow as a broken kernel invariant, not as something the peer can cause. The storage
// is allocated once, when the connection is made; nothing grows afterwards.

struct VsockReceiveRing {
    private var storage: [UInt8]
    /// Index of the oldest unread byte.
    private var head = 0
    /// Unread bytes.
    private(set) var count = 0

    init(capacity: Int) {
        precondition(capacity > 0, "vsock receive ring needs room")
        storage = [UInt8](repeating: 0, count: capacity)
    }

    var capacity: Int { storage.count }
    var free: Int { storage.count - count }

    /// Appends all of `bytes`; the caller checked `bytes.count <= free`.
    mutating func write(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count <= free, "vsock receive ring overflow")
        if bytes.isEmpty { return }
        let capacity = storage.count
        let tail = (head + count) % capacity
        let first = min(bytes.count, capacity - tail)
        storage.withUnsafeMutableBytes { ring in
            UnsafeMutableRawBufferPointer(rebasing: ring[tail ..< tail + first])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0 ..< first]))
            if first < bytes.count {
                UnsafeMutableRawBufferPointer(rebasing: ring[0 ..< bytes.count - first])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[first ..< bytes.count]))
            }
        }
        count += bytes.count
    }

    /// Moves up to `buffer.count` of the oldest bytes into `buffer`; returns how many.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let total = min(buffer.count, count)
        if total == 0 { return 0 }
        let capacity = storage.count
        let first = min(total, capacity - head)
        storage.withUnsafeBytes { ring in
            UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< first])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: ring[head ..< head + first]))
            if first < total {
                UnsafeMutableRawBufferPointer(rebasing: buffer[first ..< total])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: ring[0 ..< total - first]))
            }
        }
        head = (head + total) % capacity
        count -= total
        return total
    }
}
