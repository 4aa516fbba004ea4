// The driver side of a split virtqueue (virtio 1.2 §2.7): post buffers, publish them,
// decide whether to notify, take back what the device used.
//
// The queue is a value holding addresses, indices and the driver's private bookkeeping;
// every operation takes the guest memory as a parameter (rust-vmm style), so the same
// code runs in the kernel (`IdentityMemory`) and in the unit tests (a byte array).
//
// Protocol, one buffer's life:
//   addBuffer   takes free descriptors, writes them (§2.7.13.1) and the next avail slot
//               (§2.7.13.2); the device cannot see either yet.
//   publish     fence, then avail.idx = the driver's count (§2.7.13.3).
//   needsNotification  full fence, then used.flags: kick unless NO_NOTIFY (§2.7.13.4, §2.7.10).
//   popUsed     used.idx, fence, one used element (§2.7.14); the chain's descriptors go
//               back to the free list.
//
// Distrust (STYLE principle 7; Linux's virtio_ring.c does the same checks). The device
// writes only the used ring, and every value read from it is checked against what this
// driver posted, kept in arrays the device cannot reach:
//   * used.idx may run ahead of the driver's position by at most the number of chains
//     published and not yet returned; more (or a step backwards) is `usedIndexJumped`;
//   * a used id must be < size (`usedIdOutOfRange`) and the head of a published chain
//     still with the device (`usedIdNotInFlight`, which also catches duplicates);
//   * a used length must not exceed the chain's device-writable bytes (`usedLengthTooLarge`).
// The first violation marks the queue failed and is thrown; nothing is freed, so no
// descriptor is ever freed twice, and later calls throw `deviceFailed`. The free list
// and chain links live in `link`, never read back from the descriptor table.
//
// Rules for callers:
//   * Keep one copy of a queue and mutate it in place: a copy would fork the bookkeeping.
//   * Call `setUp` before handing the addresses to the device (it zeroes the rings,
//     §2.7.10: "The driver MUST initialize flags in the used ring to 0"), and again
//     after every device reset.
//   * Readable segments first, then writable ones (§2.7.4.2); `addBuffer` enforces it.
//   * Not thread-safe: one CPU (or a lock) per queue. The device runs concurrently; the
//     fences in Fences.swift order this side's accesses against it.
//   * EVENT_IDX, INDIRECT_DESC and IN_ORDER are not implemented: never negotiate them.

/// The driver side of one split virtqueue.
public struct SplitVirtqueue {
    /// Entries in the queue (a power of two, 1 ... 32768).
    public let size: UInt16
    /// Guest-physical address of the descriptor table (written by the driver).
    public let descriptorTable: UInt64
    /// Guest-physical address of the available ring (written by the driver).
    public let availRing: UInt64
    /// Guest-physical address of the used ring (written by the device).
    public let usedRing: UInt64

    /// The avail.idx value after the chains added so far (free-running, wraps at 2^16).
    public private(set) var nextAvailIndex: UInt16 = 0
    /// The avail.idx value last written to memory by `publish`.
    public private(set) var publishedAvailIndex: UInt16 = 0
    /// How many used elements have been consumed (free-running): the next one read is
    /// `used.ring[lastUsedIndex % size]`.
    public private(set) var lastUsedIndex: UInt16 = 0
    /// The first violation by the device, once the queue has failed.
    public private(set) var failure: VirtqueueError? = nil

    /// Descriptors not in any chain.
    private var freeCount: UInt16
    /// First free descriptor (meaningless when `freeCount` is 0).
    private var freeHead: UInt16
    /// `link[d]`: the descriptor after `d`, in the free list or in `d`'s chain. The
    /// driver's own copy: a device scribbling on the descriptor table changes nothing here.
    private var link: [UInt16]
    /// `chainLength[h]`: descriptors in the chain headed by `h` while it is out; else 0.
    private var chainLength: [UInt16]
    /// `writableBytes[h]`: device-writable bytes of the chain headed by `h`.
    private var writableBytes: [UInt64]
    /// `headState[h]`: whether `h` heads a chain, and whether the device can see it.
    private var headState: [HeadState]
    /// `availShadow[i % size]`: the head written to avail slot `i`, so `publish` knows
    /// which heads it exposes without reading the ring back.
    private var availShadow: [UInt16]

    private enum HeadState: UInt8 {
        /// Not the head of a chain that is out.
        case idle
        /// Added to the avail ring, not yet published: the device may not return it.
        case added
        /// Published: the device holds it and may return it once.
        case published
    }

    /// A queue of `size` entries at the given addresses (see `VirtqueueLayout`). The
    /// bookkeeping arrays are allocated here, once; no later call allocates.
    public init(size: UInt16, descriptorTable: UInt64, availRing: UInt64, usedRing: UInt64) throws(VirtqueueError) {
        guard VirtqueueLayout.isValidSize(size) else { throw .invalidSize }
        guard VirtqueueLayout.isAligned(descriptorTable: descriptorTable, availRing: availRing, usedRing: usedRing) else {
            throw .misalignedRing
        }
        self.size = size
        self.descriptorTable = descriptorTable
        self.availRing = availRing
        self.usedRing = usedRing
        let n = Int(size)
        freeCount = 0
        freeHead = 0
        link = [UInt16](repeating: 0, count: n)
        chainLength = [UInt16](repeating: 0, count: n)
        writableBytes = [UInt64](repeating: 0, count: n)
        headState = [HeadState](repeating: .idle, count: n)
        availShadow = [UInt16](repeating: 0, count: n)
        resetBookkeeping()
    }

    /// A queue laid out by `VirtqueueLayout`.
    public init(layout: VirtqueueLayout) throws(VirtqueueError) {
        try self.init(size: layout.size, descriptorTable: layout.descriptorTable,
                      availRing: layout.availRing, usedRing: layout.usedRing)
    }

    /// Zeroes the three rings and forgets every chain: the state right after a device
    /// reset. Throws `ringOutsideMemory` (state unchanged) when a ring is not in `memory`.
    public mutating func setUp(_ memory: some GuestMemory) throws(VirtqueueError) {
        guard memory.zero(at: descriptorTable, count: VirtqueueLayout.descriptorTableBytes(size: size)),
              memory.zero(at: availRing, count: VirtqueueLayout.availRingBytes(size: size)),
              memory.zero(at: usedRing, count: VirtqueueLayout.usedRingBytes(size: size))
        else { throw .ringOutsideMemory }
        resetBookkeeping()
    }

    private mutating func resetBookkeeping() {
        for d in 0 ..< Int(size) {
            link[d] = UInt16(truncatingIfNeeded: d + 1)
            chainLength[d] = 0
            writableBytes[d] = 0
            headState[d] = .idle
        }
        freeHead = 0
        freeCount = size
        nextAvailIndex = 0
        publishedAvailIndex = 0
        lastUsedIndex = 0
        failure = nil
    }

    /// Whether an earlier violation by the device has failed the queue.
    public var isFailed: Bool { failure != nil }
    /// Descriptors available for new chains.
    public var freeDescriptors: Int { Int(freeCount) }
    /// Chains added and not yet returned by `popUsed` (published or not).
    public var chainsOut: Int { Int(nextAvailIndex &- lastUsedIndex) }

    /// Posts one buffer as a descriptor chain and returns its head (the id `popUsed` will
    /// report). The chain is invisible to the device until `publish`. Segments are
    /// device-readable ones first, then device-writable ones (§2.7.4.2); each becomes one
    /// descriptor, linked with VIRTQ_DESC_F_NEXT (§2.7.13.1).
    /// Throws, changing nothing: `emptyChain`, `readableAfterWritable`,
    /// `notEnoughDescriptors` (full: pop used buffers first), `ringOutsideMemory`,
    /// `deviceFailed`.
    public mutating func addBuffer(
        _ memory: some GuestMemory,
        chain: [(address: UInt64, length: UInt32, deviceWritable: Bool)]
    ) throws(VirtqueueError) -> UInt16 {
        if failure != nil { throw .deviceFailed }
        guard !chain.isEmpty else { throw .emptyChain }
        var sawWritable = false
        var writable: UInt64 = 0
        for segment in chain {
            if segment.deviceWritable {
                sawWritable = true
                writable += UInt64(segment.length)
            } else if sawWritable {
                throw .readableAfterWritable
            }
        }
        guard chain.count <= Int(freeCount) else { throw .notEnoughDescriptors }

        // Write the descriptors along the free list; the list itself changes only once
        // every store has succeeded.
        let head = freeHead
        var d = head
        for (i, segment) in chain.enumerated() {
            let isLast = i == chain.count - 1
            var flags: UInt16 = segment.deviceWritable ? VirtqueueFormat.flagWrite : 0
            if !isLast { flags |= VirtqueueFormat.flagNext }
            let next = isLast ? 0 : link[Int(d)]
            let at = VirtqueueFormat.descriptor(d, in: descriptorTable)
            guard memory.store(segment.address, at: at + VirtqueueFormat.descriptorAddress),
                  memory.store(segment.length, at: at + VirtqueueFormat.descriptorLength),
                  memory.store(flags, at: at + VirtqueueFormat.descriptorFlags),
                  memory.store(next, at: at + VirtqueueFormat.descriptorNext)
            else { throw .ringOutsideMemory }
            if !isLast { d = next }
        }
        let slot = nextAvailIndex & (size &- 1)
        guard memory.store(head, at: VirtqueueFormat.availSlot(slot, in: availRing)) else {
            throw .ringOutsideMemory
        }

        freeHead = link[Int(d)]
        freeCount -= UInt16(chain.count)
        chainLength[Int(head)] = UInt16(chain.count)
        writableBytes[Int(head)] = writable
        headState[Int(head)] = .added
        availShadow[Int(slot)] = head
        nextAvailIndex &+= 1
        return head
    }

    /// Posts a buffer of one segment; see `addBuffer(_:chain:)`.
    public mutating func addBuffer(
        _ memory: some GuestMemory, address: UInt64, length: UInt32, deviceWritable: Bool
    ) throws(VirtqueueError) -> UInt16 {
        try addBuffer(memory, chain: [(address: address, length: length, deviceWritable: deviceWritable)])
    }

    /// Makes every chain added so far visible to the device: fence, then avail.idx
    /// (§2.7.13.3). Cheap when nothing was added. Throws `deviceFailed`, `ringOutsideMemory`.
    public mutating func publish(_ memory: some GuestMemory) throws(VirtqueueError) {
        if failure != nil { throw .deviceFailed }
        if publishedAvailIndex == nextAvailIndex { return }
        VirtIOFence.beforePublishingAvailIndex()
        guard memory.store(nextAvailIndex, at: availRing + VirtqueueFormat.ringIndex) else {
            throw .ringOutsideMemory
        }
        var i = publishedAvailIndex
        while i != nextAvailIndex {
            headState[Int(availShadow[Int(i & (size &- 1))])] = .published
            i &+= 1
        }
        publishedAvailIndex = nextAvailIndex
    }

    /// Whether the device wants an available-buffer notification: true unless used.flags
    /// has VIRTQ_USED_F_NO_NOTIFY (§2.7.10; EVENT_IDX is not negotiated). Call after
    /// `publish`; the full fence first is §2.7.13.4's. An unreadable flag means "notify"
    /// (a spurious notification is harmless, §2.7.10: the device MUST handle them).
    public func needsNotification(_ memory: some GuestMemory) -> Bool {
        VirtIOFence.beforeNotify()
        guard let flags = memory.load(UInt16.self, at: usedRing + VirtqueueFormat.ringFlags) else { return true }
        return flags & VirtqueueFormat.usedNoNotify == 0
    }

    /// Asks the device not to send used-buffer notifications (avail.flags
    /// VIRTQ_AVAIL_F_NO_INTERRUPT, §2.7.7), or to send them again. Advisory: after
    /// re-enabling, check `hasUsed` once more before sleeping, as §2.7.14's note shows.
    public func setInterruptsSuppressed(_ suppressed: Bool, _ memory: some GuestMemory) throws(VirtqueueError) {
        let flags: UInt16 = suppressed ? VirtqueueFormat.availNoInterrupt : 0
        guard memory.store(flags, at: availRing + VirtqueueFormat.ringFlags) else { throw .ringOutsideMemory }
        // Order the flag store before the used.idx load of a following `hasUsed`.
        VirtIOFence.beforeNotify()
    }

    /// Whether used.idx shows elements not yet popped (a hint: `popUsed` validates).
    public func hasUsed(_ memory: some GuestMemory) -> Bool {
        guard let index = memory.load(UInt16.self, at: usedRing + VirtqueueFormat.ringIndex) else { return false }
        return index != lastUsedIndex
    }

    /// Takes the next used element, if any: the head id of a chain this driver posted
    /// and the bytes the device wrote into it (§2.7.8; at most the chain's writable bytes).
    /// Its descriptors return to the free list. Nil when the device has returned nothing
    /// new. A violation by the device (see the header) fails the queue and is thrown.
    public mutating func popUsed(_ memory: some GuestMemory) throws(VirtqueueError) -> (id: UInt16, length: UInt32)? {
        if failure != nil { throw .deviceFailed }
        guard let usedIndex = memory.load(UInt16.self, at: usedRing + VirtqueueFormat.ringIndex) else {
            throw .ringOutsideMemory
        }
        // §2.7.14: read the element only after the index that covers it.
        VirtIOFence.afterReadingUsedIndex()
        let pending = usedIndex &- lastUsedIndex
        if pending == 0 { return nil }
        let withDevice = publishedAvailIndex &- lastUsedIndex
        guard pending <= withDevice else { throw fail(.usedIndexJumped(usedIndex)) }

        let element = VirtqueueFormat.usedSlot(lastUsedIndex & (size &- 1), in: usedRing)
        guard let rawID = memory.load(UInt32.self, at: element),
              let length = memory.load(UInt32.self, at: element + 4)
        else { throw .ringOutsideMemory }
        guard rawID < UInt32(size) else { throw fail(.usedIdOutOfRange(rawID)) }
        let id = UInt16(truncatingIfNeeded: rawID)
        guard headState[Int(id)] == .published else { throw fail(.usedIdNotInFlight(id)) }
        guard UInt64(length) <= writableBytes[Int(id)] else {
            throw fail(.usedLengthTooLarge(id: id, length: length))
        }

        // Return the chain to the free list, following the driver's own links.
        let count = chainLength[Int(id)]
        var tail = id
        var walked: UInt16 = 1
        while walked < count {
            tail = link[Int(tail)]
            walked += 1
        }
        link[Int(tail)] = freeHead
        freeHead = id
        freeCount += count
        chainLength[Int(id)] = 0
        writableBytes[Int(id)] = 0
        headState[Int(id)] = .idle
        lastUsedIndex &+= 1
        return (id: id, length: length)
    }

    /// Records the device's first violation and returns it for throwing.
    private mutating func fail(_ error: VirtqueueError) -> VirtqueueError {
        failure = error
        return error
    }
}
