// The kernel's guest memory: physical addresses are pointers (the kernel runs
// identity-mapped, see PageTables.swift), limited to the ranges given at init.
//
// Rules for callers:
//   * Give only ranges that are mapped and that the device may legitimately name: the
//     RAM the queues and their buffers come from. An address outside every range is
//     refused (nil/false), so a device that writes a wild address into a ring cannot
//     make the kernel touch memory it did not hand out.
//   * An access must lie wholly inside one range (adjacent ranges are not merged).
//   * Address 0 is never accessible (it is not a pointer), whatever the ranges say.
//   * A host process can use it too, over memory it allocated (the unit tests do).
//
// Accesses are plain loads and stores (`loadUnaligned`/`storeBytes`): an aligned 2-,
// 4- or 8-byte access compiles to one `mov` on x86-64, which does not tear. The
// compiler may not move them across the fences of Fences.swift; the ring code places
// those fences where the spec asks for them. They convert with `T(littleEndian:)` on the
// spot instead of using Wire's LittleEndian, which reads buffers: VirtIO imports nothing.

/// One range of guest-physical addresses, `start ..< end` (empty when `end <= start`).
/// VirtIO's own type, so that it needs nothing from Core (whose `PhysicalRange` says the same).
public struct GuestRange: Equatable, Sendable {
    public var start: UInt64
    public var end: UInt64
    public init(start: UInt64, end: UInt64) { self.start = start; self.end = end }
    public var isEmpty: Bool { end <= start }
}

/// Guest memory in the kernel's identity-mapped address space.
public struct IdentityMemory: GuestMemory {
    /// The ranges an access may touch, as given at init.
    public let ranges: [GuestRange]

    public init(ranges: [GuestRange]) {
        self.ranges = ranges
    }

    public func contains(_ address: UInt64, length: UInt64) -> Bool {
        guard address != 0, let end = checkedEnd(address, length) else { return false }
        for range in ranges where address >= range.start && end <= range.end {
            // An empty access at the very end of a range names no byte; accept it only
            // when the range itself is non-empty.
            if !range.isEmpty { return true }
        }
        return false
    }

    /// The pointer for `length` bytes at `address`, or nil when they are not all inside.
    @inline(__always)
    private func pointer(_ address: UInt64, _ length: Int) -> UnsafeMutableRawPointer? {
        guard contains(address, length: UInt64(length)) else { return nil }
        return UnsafeMutableRawPointer(bitPattern: UInt(truncatingIfNeeded: address))
    }

    public func load<T: FixedWidthInteger>(_ type: T.Type, at address: UInt64) -> T? {
        guard let p = pointer(address, MemoryLayout<T>.size) else { return nil }
        return T(littleEndian: p.loadUnaligned(as: T.self))
    }

    public func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) -> Bool {
        guard let p = pointer(address, MemoryLayout<T>.size) else { return false }
        p.storeBytes(of: value.littleEndian, as: T.self)
        return true
    }

    public func read(at address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard let p = pointer(address, buffer.count) else { return false }
        if let destination = buffer.baseAddress {
            destination.copyMemory(from: p, byteCount: buffer.count)
        }
        return true
    }

    public func write(at address: UInt64, from buffer: UnsafeRawBufferPointer) -> Bool {
        guard let p = pointer(address, buffer.count) else { return false }
        if let source = buffer.baseAddress {
            p.copyMemory(from: source, byteCount: buffer.count)
        }
        return true
    }
}
