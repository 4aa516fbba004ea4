// Guest memory: the flat physical address space that virtqueues live in.
//
// A virtqueue (virtio 1.2 §2.7) is three areas in the guest's physical memory, plus the
// buffers its descriptors point to. Ring code never holds a pointer: it names addresses
// and asks a `GuestMemory` to load or store at them (as rust-vmm's `vm-memory` does), so
// one queue implementation runs over the kernel's own RAM (`IdentityMemory`), over a
// vhost-user back-end's mapping of the guest, and over a byte array in the unit tests.
//
// Rules for conformers:
//   * Every access is bounds-checked: an address (or address + length) outside the
//     memory, or one that overflows 64 bits, returns nil/false and changes nothing. A
//     conformer never traps on an address, because addresses come from the other side
//     of the queue and are not trusted (STYLE principle 7).
//   * Multi-byte values are little-endian in memory (virtio 1.2 §1.4: `le16`, `le32`,
//     `le64` for every 1.x field); `load`/`store` convert to and from host order.
//   * A `GuestMemory` is a *view* of memory shared with the other side: its methods are
//     non-mutating and conformers have reference semantics (a copy sees the same bytes).
//   * An aligned 2-, 4- or 8-byte `load`/`store` is a single access (no tearing): ring
//     indices are read while the other side writes them. Ordering between accesses is
//     the caller's business, through the fences in Fences.swift.
//
// Rules for callers: check every result. A nil from a ring address means the queue was
// configured outside memory; a nil from a buffer address means the peer lied.

/// A flat, bounds-checked, little-endian physical address space.
public protocol GuestMemory {
    /// The little-endian integer at `address`, or nil when any of its bytes lies outside.
    func load<T: FixedWidthInteger>(_ type: T.Type, at address: UInt64) -> T?

    /// Stores `value` little-endian at `address`; false (nothing written) when outside.
    func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) -> Bool

    /// Copies `buffer.count` bytes from `address`; false (buffer unspecified) when outside.
    func read(at address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool

    /// Copies `buffer` to `address`; false (nothing written) when outside.
    func write(at address: UInt64, from buffer: UnsafeRawBufferPointer) -> Bool

    /// Whether every byte of `address ..< address + length` is inside the memory (false
    /// when the sum overflows). A zero length is inside when `address` is inside or ends it.
    func contains(_ address: UInt64, length: UInt64) -> Bool
}

extension GuestMemory {
    /// Writes `count` zero bytes from `address`; false (possibly partly written) when outside.
    public func zero(at address: UInt64, count: UInt64) -> Bool {
        guard contains(address, length: count) else { return false }
        let chunk = 256
        return withUnsafeTemporaryAllocation(byteCount: chunk, alignment: 8) { scratch in
            scratch.initializeMemory(as: UInt8.self, repeating: 0)
            var done: UInt64 = 0
            while done < count {
                let n = Int(min(UInt64(chunk), count - done))
                guard write(at: address + done, from: UnsafeRawBufferPointer(rebasing: scratch[0 ..< n])) else {
                    return false
                }
                done += UInt64(n)
            }
            return true
        }
    }
}

/// `start ..< start + length` as a checked end address: nil when the sum overflows.
@inline(__always)
func checkedEnd(_ start: UInt64, _ length: UInt64) -> UInt64? {
    let (end, overflow) = start.addingReportingOverflow(length)
    return overflow ? nil : end
}
