// The device side of a split virtqueue (virtio 1.2 §2.7): what a back-end uses to take
// the driver's buffers and return them. The host's vhost-user back-ends run it over the
// shared guest memory; the unit tests run it against `SplitVirtqueue` in one process.
//
// Protocol, one chain's life:
//   popAvailable  avail.idx, fence, the next avail slot, then the chain's descriptors,
//                 each checked and copied once into a `DescriptorChain` (§2.7.13, §2.7.5).
//   (the back-end reads the readable part, writes the writable part)
//   addUsed       the used element (id, len), fence, used.idx (§2.7.8).
//   needsInterrupt  full fence, then avail.flags: interrupt unless NO_INTERRUPT (§2.7.7).
//
// Distrust: the driver writes the descriptor table and the available ring, so every
// value read from them is checked before use:
//   * avail.idx may run ahead of this side by at most the descriptors not already held
//     (size − chains held); more, or a step backwards, is `availIndexJumped`;
//   * a head must be < size (`availHeadOutOfRange`) and not already held
//     (`headAlreadyInFlight`);
//   * a chain is walked at most `size` descriptors (`chainTooLong`: a loop), each `next`
//     must be < size (`nextOutOfRange`), each buffer must lie inside guest memory without
//     overflow (`descriptorOutsideMemory`), the total must not exceed 2^32 bytes
//     (`chainBytesOverflow`), INDIRECT is refused (`indirectDescriptor`, not negotiated),
//     and readable descriptors must come first (`chainReadableAfterWritable`).
// The ring addresses come from the driver too: a ring outside guest memory is a
// violation here (`ringOutsideMemory`). A violation marks the queue failed and is
// thrown; the chain is rejected whole, nothing of it reaches the back-end, and later
// calls throw `driverFailed` (the back-end should set DEVICE_NEEDS_RESET, §2.1.1).
//
// Rules for callers:
//   * Keep one copy and mutate it in place; one thread per queue.
//   * Return every popped chain exactly once with `addUsed` (`headNotInFlight` otherwise).
//   * To resume a queue (vhost-user SET_VRING_BASE) pass the indices to `init`.

/// The device side of one split virtqueue.
public struct DeviceQueue {
    /// Entries in the queue (a power of two, 1 ... 32768).
    public let size: UInt16
    /// Guest-physical address of the descriptor table (written by the driver).
    public let descriptorTable: UInt64
    /// Guest-physical address of the available ring (written by the driver).
    public let availRing: UInt64
    /// Guest-physical address of the used ring (written by this side).
    public let usedRing: UInt64

    /// The avail.idx position of the next chain to pop (free-running).
    public private(set) var nextAvailIndex: UInt16
    /// The used.idx value after the chains returned so far (free-running).
    public private(set) var nextUsedIndex: UInt16
    /// The driver's first violation, once the queue has failed.
    public private(set) var failure: VirtqueueError? = nil
    /// Chains popped and not yet returned.
    public private(set) var chainsHeld: Int = 0
    /// `held[h]`: the chain headed by `h` is with this side.
    private var held: [Bool]

    /// A queue at the given addresses. `nextAvailIndex`/`nextUsedIndex` resume a queue
    /// that was already running (both 0 for a fresh one). Allocates its one array here.
    public init(
        size: UInt16, descriptorTable: UInt64, availRing: UInt64, usedRing: UInt64,
        nextAvailIndex: UInt16 = 0, nextUsedIndex: UInt16 = 0
    ) throws(VirtqueueError) {
        guard VirtqueueLayout.isValidSize(size) else { throw .invalidSize }
        guard VirtqueueLayout.isAligned(descriptorTable: descriptorTable, availRing: availRing, usedRing: usedRing) else {
            throw .misalignedRing
        }
        self.size = size
        self.descriptorTable = descriptorTable
        self.availRing = availRing
        self.usedRing = usedRing
        self.nextAvailIndex = nextAvailIndex
        self.nextUsedIndex = nextUsedIndex
        held = [Bool](repeating: false, count: Int(size))
    }

    /// A queue laid out by `VirtqueueLayout`.
    public init(layout: VirtqueueLayout) throws(VirtqueueError) {
        try self.init(size: layout.size, descriptorTable: layout.descriptorTable,
                      availRing: layout.availRing, usedRing: layout.usedRing)
    }

    /// Whether an earlier violation by the driver has failed the queue.
    public var isFailed: Bool { failure != nil }

    /// Takes the next available chain, validated and copied; nil when the driver has
    /// published nothing new. A violation (see the header) fails the queue and is thrown.
    public mutating func popAvailable(_ memory: some GuestMemory) throws(VirtqueueError) -> DescriptorChain? {
        if failure != nil { throw .driverFailed }
        guard let availIndex = memory.load(UInt16.self, at: availRing + VirtqueueFormat.ringIndex) else {
            throw fail(.ringOutsideMemory)
        }
        // §2.7.13: the slot and the descriptors are read after the index that exposed them.
        VirtIOFence.afterReadingAvailIndex()
        let pending = availIndex &- nextAvailIndex
        if pending == 0 { return nil }
        guard Int(pending) + chainsHeld <= Int(size) else { throw fail(.availIndexJumped(availIndex)) }

        let slot = VirtqueueFormat.availSlot(nextAvailIndex & (size &- 1), in: availRing)
        guard let head = memory.load(UInt16.self, at: slot) else { throw fail(.ringOutsideMemory) }
        guard head < size else { throw fail(.availHeadOutOfRange(head)) }
        guard !held[Int(head)] else { throw fail(.headAlreadyInFlight(head)) }

        var segments: [DescriptorSegment] = []
        var index = head
        var count: UInt16 = 0
        var total: UInt64 = 0
        var sawWritable = false
        while true {
            // A chain of more than `size` descriptors must visit one twice (§2.7.5.2:
            // "loops in the descriptor chain are forbidden").
            guard count < size else { throw fail(.chainTooLong) }
            count += 1
            let at = VirtqueueFormat.descriptor(index, in: descriptorTable)
            guard let address = memory.load(UInt64.self, at: at + VirtqueueFormat.descriptorAddress),
                  let length = memory.load(UInt32.self, at: at + VirtqueueFormat.descriptorLength),
                  let flags = memory.load(UInt16.self, at: at + VirtqueueFormat.descriptorFlags),
                  let next = memory.load(UInt16.self, at: at + VirtqueueFormat.descriptorNext)
            else { throw fail(.ringOutsideMemory) }
            guard flags & VirtqueueFormat.flagIndirect == 0 else { throw fail(.indirectDescriptor(index)) }
            let writable = flags & VirtqueueFormat.flagWrite != 0
            if writable {
                sawWritable = true
            } else if sawWritable {
                throw fail(.chainReadableAfterWritable)
            }
            guard memory.contains(address, length: UInt64(length)) else {
                throw fail(.descriptorOutsideMemory(index))
            }
            total += UInt64(length)
            guard total <= 1 << 32 else { throw fail(.chainBytesOverflow) }
            segments.append(DescriptorSegment(address: address, length: length, isWritable: writable))
            if flags & VirtqueueFormat.flagNext == 0 { break }
            guard next < size else { throw fail(.nextOutOfRange(next)) }
            index = next
        }

        held[Int(head)] = true
        chainsHeld += 1
        nextAvailIndex &+= 1
        return DescriptorChain(head: head, segments: segments)
    }

    /// Returns a chain to the driver: writes the used element (id = `head`, len =
    /// `length`, the bytes written from the start of the writable part), then, after
    /// the fence, the new used.idx (§2.7.8: "The device MUST set len prior to updating
    /// the used idx"). Then ask `needsInterrupt`.
    /// Throws `headNotInFlight` (nothing written), `driverFailed`, `ringOutsideMemory`.
    public mutating func addUsed(_ memory: some GuestMemory, head: UInt16, length: UInt32) throws(VirtqueueError) {
        if failure != nil { throw .driverFailed }
        guard head < size, held[Int(head)] else { throw .headNotInFlight(head) }
        let element = VirtqueueFormat.usedSlot(nextUsedIndex & (size &- 1), in: usedRing)
        guard memory.store(UInt32(head), at: element), memory.store(length, at: element + 4) else {
            throw fail(.ringOutsideMemory)
        }
        VirtIOFence.beforePublishingUsedIndex()
        guard memory.store(nextUsedIndex &+ 1, at: usedRing + VirtqueueFormat.ringIndex) else {
            throw fail(.ringOutsideMemory)
        }
        held[Int(head)] = false
        chainsHeld -= 1
        nextUsedIndex &+= 1
    }

    /// Whether the driver wants a used-buffer notification: true unless avail.flags has
    /// VIRTQ_AVAIL_F_NO_INTERRUPT (§2.7.7; EVENT_IDX is not negotiated). Call after
    /// `addUsed`; the full fence first orders the used.idx store before this load. An
    /// unreadable flag means "interrupt" (the driver MUST handle spurious ones, §2.7.7).
    public func needsInterrupt(_ memory: some GuestMemory) -> Bool {
        VirtIOFence.beforeInterrupt()
        guard let flags = memory.load(UInt16.self, at: availRing + VirtqueueFormat.ringFlags) else { return true }
        return flags & VirtqueueFormat.availNoInterrupt == 0
    }

    /// Asks the driver not to send available-buffer notifications (used.flags
    /// VIRTQ_USED_F_NO_NOTIFY, §2.7.10), or to send them again. Advisory: after
    /// re-enabling, poll `popAvailable` once more before sleeping.
    public func setNotificationsSuppressed(_ suppressed: Bool, _ memory: some GuestMemory) throws(VirtqueueError) {
        let flags: UInt16 = suppressed ? VirtqueueFormat.usedNoNotify : 0
        guard memory.store(flags, at: usedRing + VirtqueueFormat.ringFlags) else { throw .ringOutsideMemory }
        VirtIOFence.beforeInterrupt()
    }

    /// Records the driver's first violation and returns it for throwing.
    private mutating func fail(_ error: VirtqueueError) -> VirtqueueError {
        failure = error
        return error
    }
}
