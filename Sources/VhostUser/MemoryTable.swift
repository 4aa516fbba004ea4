// The guest's memory as the front-end shares it: SET_MEM_TABLE's regions, each mmapped from
// the file descriptor that came with it, seen as VirtIO's `GuestMemory`.
//
// QEMU docs/interop/vhost-user.rst "Memory region description" and SET_MEM_TABLE: a region
// is guest_phys_addr, memory_size, userspace_addr (QEMU's own virtual address, the unit of
// SET_VRING_ADDR) and mmap_offset (where the region starts in its fd). Guest memory must be
// `share=on` or the mapping is a private copy that never sees the guest's writes
// (DESIGN.md). QEMU microvm splits RAM around the 0xf0000–0x100000 hole, so one guest has
// several regions.
//
// Rules: every access lies inside ONE region (an access straddling two regions is refused
// even when they are adjacent in guest-physical space, because their host mappings are
// not); addresses come from the guest and are never trusted (virtio 1.2 §2.7.5: the device
// reads descriptors the driver wrote). Mappings live as long as the table.
import VirtIO
import Glibc

/// One mapped region.
public struct MappedRegion: Sendable {
    public let guestPhysicalAddress: UInt64
    public let size: UInt64
    public let userAddress: UInt64
    /// Host address of the region's first byte.
    let base: UInt
    /// What to munmap: the mapping's start and length (nil: not ours to unmap).
    let mapping: (start: UInt, length: Int)?

    /// Whether `address ..< address + length` lies inside this region.
    func contains(_ address: UInt64, _ length: UInt64) -> Bool {
        guard address >= guestPhysicalAddress else { return false }
        let offset = address - guestPhysicalAddress
        return offset <= size && length <= size - offset
    }
}

/// The mapped memory table: guest-physical and QEMU-virtual address translation.
public final class MemoryTable: GuestMemory, @unchecked Sendable {
    public let regions: [MappedRegion]

    /// Maps each region from its fd (closing every fd, mapped or not) or throws.
    public init(regions: [VhostUserMemoryRegion], fds: [Int32]) throws(VhostUserError) {
        defer { for fd in fds { close(fd) } }
        guard regions.count == fds.count else {
            throw .missingFileDescriptors(request: VhostUserRequest.setMemTable.rawValue,
                                          needed: regions.count, got: fds.count)
        }
        try MemoryTable.validate(regions)
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        var mapped: [MappedRegion] = []
        for (region, fd) in zip(regions, fds) {
            let fileOffset = region.mmapOffset & ~(page - 1)
            let delta = region.mmapOffset - fileOffset
            let (length, overflow) = region.size.addingReportingOverflow(delta)
            guard !overflow, length <= UInt64(Int.max), fileOffset <= UInt64(Int.max) else {
                for region in mapped { region.unmap() }
                throw .badRegion("region at 0x\(String(region.guestPhysicalAddress, radix: 16)) is too large")
            }
            let pointer = mmap(nil, Int(length), PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(fileOffset))
            guard let pointer, pointer != MAP_FAILED else {
                let error = errno
                for region in mapped { region.unmap() }
                throw .mapFailed(errno: error)
            }
            let start = UInt(bitPattern: pointer)
            mapped.append(MappedRegion(guestPhysicalAddress: region.guestPhysicalAddress, size: region.size,
                                       userAddress: region.userAddress, base: start + UInt(delta),
                                       mapping: (start, Int(length))))
        }
        self.regions = mapped
    }

    /// A table over memory the caller owns and keeps alive (tests, in-process guests).
    public init(unmanaged regions: [(guestPhysicalAddress: UInt64, userAddress: UInt64,
                                     memory: UnsafeMutableRawBufferPointer)]) {
        self.regions = regions.map {
            MappedRegion(guestPhysicalAddress: $0.guestPhysicalAddress, size: UInt64($0.memory.count),
                         userAddress: $0.userAddress, base: UInt(bitPattern: $0.memory.baseAddress), mapping: nil)
        }
    }

    deinit { for region in regions { region.unmap() } }

    /// Regions must be non-empty, not wrap around 64 bits, and not overlap in guest-physical
    /// or QEMU-virtual space.
    static func validate(_ regions: [VhostUserMemoryRegion]) throws(VhostUserError) {
        for (index, region) in regions.enumerated() {
            let name = "region \(index) at 0x\(String(region.guestPhysicalAddress, radix: 16))"
            guard region.size > 0 else { throw .badRegion("\(name) is empty") }
            guard checkedSum(region.guestPhysicalAddress, region.size) != nil,
                  checkedSum(region.userAddress, region.size) != nil,
                  checkedSum(region.mmapOffset, region.size) != nil else {
                throw .badRegion("\(name) wraps around the address space")
            }
            for other in regions[..<index] {
                if overlaps(region.guestPhysicalAddress, region.size, other.guestPhysicalAddress, other.size)
                    || overlaps(region.userAddress, region.size, other.userAddress, other.size) {
                    throw .badRegion("\(name) overlaps another region")
                }
            }
        }
    }

    static func checkedSum(_ a: UInt64, _ b: UInt64) -> UInt64? {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : sum
    }

    static func overlaps(_ a: UInt64, _ aSize: UInt64, _ b: UInt64, _ bSize: UInt64) -> Bool {
        a < b &+ bSize && b < a &+ aSize
    }

    /// The guest-physical address of QEMU virtual address `address` (SET_VRING_ADDR), with
    /// `length` bytes after it in the same region; nil when no region holds them.
    public func guestPhysical(forUserAddress address: UInt64, length: UInt64 = 1) -> UInt64? {
        for region in regions where address >= region.userAddress {
            let offset = address - region.userAddress
            if offset < region.size, length <= region.size - offset { return region.guestPhysicalAddress + offset }
        }
        return nil
    }

    /// The host pointer for `length` bytes at guest-physical `address`, all in one region.
    @inline(__always)
    func pointer(_ address: UInt64, _ length: UInt64) -> UnsafeMutableRawPointer? {
        for region in regions where region.contains(address, length) {
            return UnsafeMutableRawPointer(bitPattern: region.base + UInt(address - region.guestPhysicalAddress))
        }
        return nil
    }

    // MARK: GuestMemory

    public func contains(_ address: UInt64, length: UInt64) -> Bool {
        pointer(address, length) != nil
    }

    // Ring indices are shared with a guest that writes them while we read (avail.idx),
    // so an aligned load or store must be one access (virtio 1.2 §2.7: the rings' fields
    // are naturally aligned). `loadUnaligned(as: T)` for a generic T is a memcpy, and
    // glibc's memcpy of 2 bytes reads the low byte, then the word: a guest store between
    // the two (the back-end preempted there, the guest crossing a multiple of 256) made
    // avail.idx read 256 ahead, `availIndexJumped`, and broke the tx ring under load.
    // `pointee` of a concretely typed pointer is one load or store, even unoptimised.

    public func load<T: FixedWidthInteger>(_ type: T.Type, at address: UInt64) -> T? {
        let size = MemoryLayout<T>.size
        guard let p = pointer(address, UInt64(size)) else { return nil }
        guard UInt(bitPattern: p) % UInt(size) == 0 else { return T(littleEndian: p.loadUnaligned(as: T.self)) }
        switch size {
        case 1: return T(truncatingIfNeeded: p.assumingMemoryBound(to: UInt8.self).pointee)
        case 2: return T(truncatingIfNeeded: UInt16(littleEndian: p.assumingMemoryBound(to: UInt16.self).pointee))
        case 4: return T(truncatingIfNeeded: UInt32(littleEndian: p.assumingMemoryBound(to: UInt32.self).pointee))
        case 8: return T(truncatingIfNeeded: UInt64(littleEndian: p.assumingMemoryBound(to: UInt64.self).pointee))
        default: return T(littleEndian: p.loadUnaligned(as: T.self))
        }
    }

    public func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) -> Bool {
        let size = MemoryLayout<T>.size
        guard let p = pointer(address, UInt64(size)) else { return false }
        guard UInt(bitPattern: p) % UInt(size) == 0 else {
            p.storeBytes(of: value.littleEndian, as: T.self)
            return true
        }
        switch size {
        case 1: p.assumingMemoryBound(to: UInt8.self).pointee = UInt8(truncatingIfNeeded: value)
        case 2: p.assumingMemoryBound(to: UInt16.self).pointee = UInt16(truncatingIfNeeded: value).littleEndian
        case 4: p.assumingMemoryBound(to: UInt32.self).pointee = UInt32(truncatingIfNeeded: value).littleEndian
        case 8: p.assumingMemoryBound(to: UInt64.self).pointee = UInt64(truncatingIfNeeded: value).littleEndian
        default: p.storeBytes(of: value.littleEndian, as: T.self)
        }
        return true
    }

    public func read(at address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard let p = pointer(address, UInt64(buffer.count)) else { return false }
        if let destination = buffer.baseAddress { destination.copyMemory(from: p, byteCount: buffer.count) }
        return true
    }

    public func write(at address: UInt64, from buffer: UnsafeRawBufferPointer) -> Bool {
        guard let p = pointer(address, UInt64(buffer.count)) else { return false }
        if let source = buffer.baseAddress { p.copyMemory(from: source, byteCount: buffer.count) }
        return true
    }
}

extension MappedRegion {
    func unmap() {
        if let mapping { munmap(UnsafeMutableRawPointer(bitPattern: mapping.start), mapping.length) }
    }
}
