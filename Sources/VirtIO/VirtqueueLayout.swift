// The split virtqueue's memory format and layout (virtio 1.2 §2.7, §2.7.5, §2.7.6,
// §2.7.8), shared by the driver side (SplitVirtqueue) and the device side (DeviceQueue).
//
//   descriptor table  16·N bytes, align 16   { le64 addr; le32 len; le16 flags; le16 next }
//   available ring    6+2·N bytes, align 2   { le16 flags; le16 idx; le16 ring[N]; le16 used_event }
//   used ring         6+8·N bytes, align 4   { le16 flags; le16 idx; {le32 id; le32 len}[N]; le16 avail_event }
//
// The descriptor table and the available ring are written by the driver only, the used
// ring by the device only (§2.7). `used_event`/`avail_event` exist only with
// VIRTIO_F_EVENT_IDX, which this implementation does not negotiate; the sizes above
// include them anyway, as the spec's table does.
//
// Rules for callers: N is a power of two, 1 ... 32768 (§2.7); `VirtqueueLayout.isValidSize`
// says so. `VirtqueueLayout(size:base:)` places all three parts in one block (the way a
// driver allocates them); the two queue types accept any three addresses that respect
// the alignments.

/// Offsets and flag values of the split-ring structures.
public enum VirtqueueFormat {
    /// Bytes per descriptor (`struct virtq_desc`, §2.7.5).
    public static let descriptorBytes: UInt64 = 16
    /// Offsets inside a descriptor.
    public static let descriptorAddress: UInt64 = 0
    public static let descriptorLength: UInt64 = 8
    public static let descriptorFlags: UInt64 = 12
    public static let descriptorNext: UInt64 = 14

    /// VIRTQ_DESC_F_NEXT: the chain continues at `next` (§2.7.5).
    public static let flagNext: UInt16 = 1
    /// VIRTQ_DESC_F_WRITE: the buffer is device-writable (otherwise device-readable).
    public static let flagWrite: UInt16 = 2
    /// VIRTQ_DESC_F_INDIRECT: the buffer is a table of descriptors (§2.7.5.3); refused
    /// here, since VIRTIO_F_INDIRECT_DESC is never negotiated.
    public static let flagIndirect: UInt16 = 4

    /// Offsets shared by both rings: `flags`, then `idx`, then the entries (§2.7.6, §2.7.8).
    public static let ringFlags: UInt64 = 0
    public static let ringIndex: UInt64 = 2
    public static let ringEntries: UInt64 = 4
    /// Bytes per available-ring entry (a le16 head index).
    public static let availEntryBytes: UInt64 = 2
    /// Bytes per used-ring element (`struct virtq_used_elem`: le32 id, le32 len).
    public static let usedElementBytes: UInt64 = 8

    /// VIRTQ_AVAIL_F_NO_INTERRUPT in avail.flags: the driver asks for no used-buffer
    /// notifications (§2.7.7). Advisory only.
    public static let availNoInterrupt: UInt16 = 1
    /// VIRTQ_USED_F_NO_NOTIFY in used.flags: the device asks for no available-buffer
    /// notifications (§2.7.10). Advisory only.
    public static let usedNoNotify: UInt16 = 1

    /// Address of descriptor `index` in a table at `table`.
    @inline(__always)
    public static func descriptor(_ index: UInt16, in table: UInt64) -> UInt64 {
        table &+ UInt64(index) &* descriptorBytes
    }

    /// Address of available-ring slot `slot` (already reduced modulo the size).
    @inline(__always)
    public static func availSlot(_ slot: UInt16, in ring: UInt64) -> UInt64 {
        ring &+ ringEntries &+ UInt64(slot) &* availEntryBytes
    }

    /// Address of used-ring element `slot` (already reduced modulo the size).
    @inline(__always)
    public static func usedSlot(_ slot: UInt16, in ring: UInt64) -> UInt64 {
        ring &+ ringEntries &+ UInt64(slot) &* usedElementBytes
    }
}

/// Where the three parts of one split virtqueue of `size` entries lie.
public struct VirtqueueLayout: Equatable, Sendable {
    /// Minimum alignment of each part (§2.7, the table under "Each virtqueue consists of").
    public static let descriptorTableAlignment: UInt64 = 16
    public static let availRingAlignment: UInt64 = 2
    public static let usedRingAlignment: UInt64 = 4
    /// The largest queue size the split format allows (§2.7).
    public static let maximumSize: UInt16 = 32768

    /// Whether `size` is a valid split-queue size: a power of two, 1 ... 32768.
    public static func isValidSize(_ size: UInt16) -> Bool {
        size != 0 && size & (size &- 1) == 0 && size <= maximumSize
    }

    /// Bytes of the descriptor table: 16·N.
    public static func descriptorTableBytes(size: UInt16) -> UInt64 { 16 * UInt64(size) }
    /// Bytes of the available ring: 6 + 2·N (with `used_event`).
    public static func availRingBytes(size: UInt16) -> UInt64 { 6 + 2 * UInt64(size) }
    /// Bytes of the used ring: 6 + 8·N (with `avail_event`).
    public static func usedRingBytes(size: UInt16) -> UInt64 { 6 + 8 * UInt64(size) }

    /// Entries in the queue.
    public let size: UInt16
    /// Guest-physical address of the descriptor table (16-aligned).
    public let descriptorTable: UInt64
    /// Guest-physical address of the available ring, the "driver area" (2-aligned).
    public let availRing: UInt64
    /// Guest-physical address of the used ring, the "device area" (4-aligned).
    public let usedRing: UInt64
    /// Bytes from `descriptorTable` to the end of the used ring.
    public let totalBytes: UInt64

    /// The three parts packed in one block at `base` (16-aligned): table, then the avail
    /// ring right after it, then the used ring at the next multiple of 4. Nil for an
    /// invalid size, a misaligned base, or a block that would overflow the address space.
    public init?(size: UInt16, base: UInt64) {
        guard VirtqueueLayout.isValidSize(size), base % VirtqueueLayout.descriptorTableAlignment == 0 else {
            return nil
        }
        let avail = base &+ VirtqueueLayout.descriptorTableBytes(size: size)
        let availEnd = avail &+ VirtqueueLayout.availRingBytes(size: size)
        let used = (availEnd &+ 3) & ~3
        let usedEnd = used &+ VirtqueueLayout.usedRingBytes(size: size)
        // The block is under 400 KiB, so one wrap check on the end covers every sum.
        guard usedEnd > base else { return nil }
        self.size = size
        descriptorTable = base
        availRing = avail
        usedRing = used
        totalBytes = usedEnd - base
    }

    /// Whether the three addresses respect the alignments of §2.7 (§2.7.1: "The driver
    /// MUST ensure that the physical address of the first byte of each virtqueue part is
    /// a multiple of the specified alignment value").
    public static func isAligned(descriptorTable: UInt64, availRing: UInt64, usedRing: UInt64) -> Bool {
        descriptorTable % descriptorTableAlignment == 0
            && availRing % availRingAlignment == 0
            && usedRing % usedRingAlignment == 0
    }
}
