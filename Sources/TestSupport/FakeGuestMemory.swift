// A fake guest: a byte array standing in for guest-physical memory, for every test that
// runs a virtqueue (driver tests, device tests, host back-end tests) and for the fuzzers.
//
// It is a class (memory is shared: the driver-side and the device-side queue of a test
// hold the same object) with the bounds checks of `GuestMemory`: an access that leaves
// `base ..< base + size`, or overflows, fails and changes nothing. Tests play the hostile
// peer with the plain accessors (`store`, `write`) or `corrupt`, and check that
// unrelated memory stayed intact with `bytes(at:count:)` snapshots.
//
// Rules for callers: not thread-safe; one test thread. Addresses below `base` are
// outside, so a base above 0 also catches zero and small bogus addresses.
import VirtIO
import Wire

/// Guest memory backed by a byte array, with helpers to inspect and corrupt it.
public final class FakeGuestMemory: GuestMemory {
    /// The first guest-physical address.
    public let base: UInt64
    /// The bytes; `storage[i]` is the byte at `base + i`.
    public private(set) var storage: [UInt8]
    /// Successful `store`/`write` calls so far (a test can prove a side wrote nothing).
    public private(set) var writeCount = 0

    /// `size` zero bytes at guest-physical `base ..< base + size`.
    public init(size: Int, base: UInt64 = 0x1000) {
        self.base = base
        storage = [UInt8](repeating: 0, count: size)
    }

    public var size: Int { storage.count }

    /// The offset of `address ..< address + length` in `storage`, or nil when not all inside.
    private func offset(_ address: UInt64, _ length: UInt64) -> Int? {
        guard contains(address, length: length) else { return nil }
        return Int(address - base)
    }

    public func contains(_ address: UInt64, length: UInt64) -> Bool {
        guard address >= base else { return false }
        let (end, overflow) = address.addingReportingOverflow(length)
        return !overflow && end <= base + UInt64(storage.count)
    }

    public func load<T: FixedWidthInteger>(_ type: T.Type, at address: UInt64) -> T? {
        guard let start = offset(address, UInt64(MemoryLayout<T>.size)) else { return nil }
        return storage.loadLE(T.self, at: start)
    }

    public func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) -> Bool {
        guard let start = offset(address, UInt64(MemoryLayout<T>.size)) else { return false }
        storage.withUnsafeMutableBytes { LittleEndian.store(value, into: $0, at: start) }
        writeCount += 1
        return true
    }

    public func read(at address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard let start = offset(address, UInt64(buffer.count)) else { return false }
        for i in 0 ..< buffer.count { buffer[i] = storage[start + i] }
        return true
    }

    public func write(at address: UInt64, from buffer: UnsafeRawBufferPointer) -> Bool {
        guard let start = offset(address, UInt64(buffer.count)) else { return false }
        for i in 0 ..< buffer.count { storage[start + i] = buffer[i] }
        writeCount += 1
        return true
    }

    // MARK: test helpers

    /// The `count` bytes at `address` (trapping when outside: a test bug).
    public func bytes(at address: UInt64, count: Int) -> [UInt8] {
        guard let start = offset(address, UInt64(count)) else {
            fatalError("FakeGuestMemory.bytes: outside the fake guest")
        }
        return Array(storage[start ..< start + count])
    }

    /// Overwrites memory at `address` with `bytes`, as a hostile peer would (trapping
    /// when outside: a test bug). Not counted in `writeCount`.
    public func corrupt(at address: UInt64, with bytes: [UInt8]) {
        guard let start = offset(address, UInt64(bytes.count)) else {
            fatalError("FakeGuestMemory.corrupt: outside the fake guest")
        }
        for (i, byte) in bytes.enumerated() { storage[start + i] = byte }
    }

    /// Fills `count` bytes at `address` with `byte` (trapping when outside).
    public func fill(at address: UInt64, count: Int, with byte: UInt8) {
        corrupt(at: address, with: [UInt8](repeating: byte, count: count))
    }

    /// Stores `value` little-endian at `address` (trapping when outside): a hostile
    /// write to a ring field, not counted in `writeCount`.
    public func poke<T: FixedWidthInteger>(_ value: T, at address: UInt64) {
        var bytes: [UInt8] = []
        for i in 0 ..< MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
        corrupt(at: address, with: bytes)
    }
}
