// Why a virtqueue operation failed, for both sides of the ring.
//
// Three kinds of case:
//   * the caller's mistakes (a bad size or alignment, a malformed buffer, a full queue,
//     returning a chain the device side does not hold): thrown, nothing changes, the
//     queue stays usable;
//   * the peer's violations (the device breaking the rules on the driver side, the
//     driver on the device side): thrown once, and the queue is marked failed;
//   * `deviceFailed` / `driverFailed`: every later call on a failed queue throws these.
//     A failed queue never touches a descriptor again: reset the device (driver side:
//     status 0 and `setUp`; device side: set DEVICE_NEEDS_RESET, virtio 1.2 §2.1.1).
//
// Rules for callers: log the first violation (`failure` on either queue type keeps it)
// and give up on the device; never retry the same call hoping for a different answer.

/// A virtqueue error: the caller's mistake, the peer's violation, or a failed queue.
public enum VirtqueueError: Error, Equatable, Sendable {
    // MARK: the caller's mistakes (the queue stays usable)

    /// The queue size is not a power of two in 1 ... 32768 (§2.7).
    case invalidSize
    /// A ring address does not have the alignment §2.7 requires (16, 2, 4).
    case misalignedRing
    /// A ring (descriptor table, available or used ring) lies outside guest memory.
    case ringOutsideMemory
    /// `addBuffer` was given no segments.
    case emptyChain
    /// `addBuffer` was given a device-readable segment after a device-writable one (§2.7.4.2).
    case readableAfterWritable
    /// Not enough free descriptors for the chain: the queue is full until `popUsed` frees some.
    case notEnoughDescriptors
    /// Device side: `addUsed` named a head the device does not hold (never popped, or returned).
    case headNotInFlight(UInt16)
    /// Device side: a chain read or write touched an address that left guest memory.
    case bufferOutsideMemory

    // MARK: the device's violations, seen by the driver (the queue is marked failed)

    /// used.idx moved past the number of chains published and not yet returned
    /// (or backwards): the device claims completions it cannot have made.
    case usedIndexJumped(UInt16)
    /// A used element's id is not a descriptor index (≥ the queue size).
    case usedIdOutOfRange(UInt32)
    /// A used element's id is not the head of a chain the device holds (never posted,
    /// already returned, or added but not yet published).
    case usedIdNotInFlight(UInt16)
    /// A used element's length exceeds the device-writable bytes posted in its chain.
    case usedLengthTooLarge(id: UInt16, length: UInt32)
    /// An earlier violation marked this queue failed; nothing more is processed.
    case deviceFailed

    // MARK: the driver's violations, seen by the device (the queue is marked failed)

    /// avail.idx moved by more than the queue can hold (or backwards).
    case availIndexJumped(UInt16)
    /// An available-ring entry is not a descriptor index (≥ the queue size).
    case availHeadOutOfRange(UInt16)
    /// An available-ring entry names a head the device already holds.
    case headAlreadyInFlight(UInt16)
    /// A descriptor's `next` is not a descriptor index (≥ the queue size).
    case nextOutOfRange(UInt16)
    /// A chain has more descriptors than the queue size: it loops (§2.7.5.2).
    case chainTooLong
    /// A chain's lengths add up to more than 2^32 bytes (§2.7.5.2).
    case chainBytesOverflow
    /// A descriptor's address + length overflows or leaves guest memory.
    case descriptorOutsideMemory(UInt16)
    /// A descriptor has VIRTQ_DESC_F_INDIRECT, which was not negotiated (§2.7.5.3.1).
    case indirectDescriptor(UInt16)
    /// A chain has a device-readable descriptor after a device-writable one (§2.7.4.2).
    case chainReadableAfterWritable
    /// An earlier violation marked this queue failed; nothing more is processed.
    case driverFailed
}
