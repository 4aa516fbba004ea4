// The virtio-blk device, guest side (virtio 1.2 §5.2): Core's `BlockDevice` over one request
// queue. Generic over the transport (virtio-pci on legacy, virtio-mmio on microvm) and the
// guest memory the ring lives in; the platform routes the device's interrupt to
// `handleInterrupt` and hands in the clock and the CPU's spin-wait hint. The requests
// themselves (submit, drain, collect, the waits, failing) are VirtIOBlockRequests.swift.
//
// Bring-up: VERSION_1 required; RO, FLUSH, BLK_SIZE, SIZE_MAX, SEG_MAX accepted when offered
// (never INDIRECT, EVENT_IDX, MQ, DISCARD...). Capacity (le64 at config 0) and the other
// fields are read with the generation loop (§2.5.1). `size_max` bounds one request's data;
// one data segment per request, so `seg_max` (>= 1) is always met.
//
// Memory. Data goes straight between the device and the caller's buffer when `memory` holds
// it (kernel heap and pages: identity-mapped, guest-physical == virtual); otherwise (a thread
// stack lives at its own virtual address, outside RAM's identity map) it is bounced through
// the request slot's own page, 4 KiB at a time. Headers and status bytes live in one driver
// page, one 32-byte area per slot.
//
// Rules:
//   * Several threads may call at once: each takes a free request slot (up to
//     `maximumInFlight`, at most a third of the ring), so their requests overlap at the
//     device; a caller finding every slot busy waits for one. A transfer larger than one
//     request is split into consecutive requests of the same caller.
//   * The interrupt handler acknowledges and drains the used ring: each completion is
//     matched by its head to the slot that posted it and that slot's Event is signalled. A
//     waiter drains too, so a lost interrupt costs nothing but time.
//   * Every wait has a timeout (`timeoutSeconds`, default 30). A request not answered in
//     time, a status byte other than OK/IOERR/UNSUPP, or any ring violation (a used id not in
//     flight, a used length beyond what was offered: VirtIO's SplitVirtqueue checks them)
//     fails the device: one log line, the device is reset (§2.4: it then touches none of the
//     callers' buffers again), every waiter is woken and every call throws `deviceFailed`.
//   * Before the scheduler runs, `polling` is true: waits spin on the used ring with
//     `pause` instead of sleeping on an Event. The platform clears it once threads run.
//   * The handler runs on one CPU with interrupts off, callers on any CPU: the driver's
//     state is behind a SpinLock that no one holds across a wait (threads run with
//     interrupts off, so the handler never interrupts a holder on its own CPU).
import Core
import Drivers
import VirtIO

public final class VirtIOBlockDriver<Transport: VirtIOTransport, Memory: GuestMemory>: BlockDevice {
    let transport: Transport
    var queue: DriverQueue<Memory>
    let memory: Memory

    public var sectorSize: Int { VirtIOBlock.sectorSize }
    /// The capacity read at bring-up, in 512-byte sectors (a later resize is not followed).
    public let sectorCount: UInt64
    /// VIRTIO_BLK_F_RO was offered (and accepted): every write is refused here.
    public let isReadOnly: Bool
    /// VIRTIO_BLK_F_FLUSH: the device has a write cache, and `flush` sends FLUSH.
    public let hasFlush: Bool
    /// The device's optimal block size (VIRTIO_BLK_F_BLK_SIZE), for the log; nil if not offered.
    public let blockSize: UInt32?
    /// The most data bytes one request carries (a multiple of 512).
    public let requestLimit: Int
    /// The features accepted at bring-up.
    public let features: UInt64

    let slots: [BlockRequestSlot]
    /// Free slot indices.
    var freeSlots: [Int]
    /// `slotOfHead[h]`: the slot whose chain has head `h` while it is in flight, else -1.
    var slotOfHead: [Int]
    /// Guards the ring, the slots and `failed`.
    let lock = SpinLock()
    /// Signalled when a slot is freed (a caller waiting for one re-checks).
    let slotFreed = Event()
    /// Set once, when the device broke the protocol or stopped answering.
    public internal(set) var failed = false
    /// Monotonic nanoseconds, for the deadlines.
    let clock: () -> UInt64
    /// The CPU's spin-wait hint (x86 `pause`), for the polling waits.
    let pause: () -> Void
    /// True until the scheduler runs: waits poll the used ring (see the header).
    public var polling = true
    /// How long one request may take, in nanoseconds.
    public let timeout: UInt64

    /// Brings the device up (features, capacity, the queue, the slots) or returns nil with a
    /// log line. `maximumInFlight` caps the requests in flight (the ring may allow fewer).
    public init?(transport: Transport, memory: Memory, now: @escaping () -> UInt64, pause: @escaping () -> Void,
                 timeoutSeconds: Int = VirtIOBlockLimits.defaultTimeoutSeconds,
                 maximumInFlight: Int = VirtIOBlockLimits.defaultInFlight) {
        self.transport = transport
        self.memory = memory
        clock = now
        self.pause = pause
        timeout = UInt64(max(1, timeoutSeconds)) * 1_000_000_000
        let accepted: UInt64
        do {
            accepted = try VirtIODevice.initialize(transport: transport, wanted: VirtIOBlock.wantedFeatures,
                                                   required: VirtIOFeature.version1)
        } catch {
            Log.timestamp()
            Log.write("virtio-blk: feature negotiation failed; device left unused\n")
            return nil
        }
        features = accepted
        guard let capacity = transport.configRead64(VirtIOBlock.configCapacity) else {
            transport.giveUp("virtio-blk: the configuration never settled; device left unused\n")
            return nil
        }
        sectorCount = capacity
        isReadOnly = accepted & VirtIOBlock.featureReadOnly != 0
        hasFlush = accepted & VirtIOBlock.featureFlush != 0
        blockSize = accepted & VirtIOBlock.featureBlockSize != 0 ? transport.configRead32(VirtIOBlock.configBlockSize) : nil
        var limit = VirtIOBlockLimits.largestRequest
        if accepted & VirtIOBlock.featureSizeMax != 0 {
            // §5.2.4: size_max is the largest segment; one data segment per request here.
            guard let sizeMax = transport.configRead32(VirtIOBlock.configSizeMax), sizeMax >= UInt32(VirtIOBlock.sectorSize) else {
                transport.giveUp("virtio-blk: size_max is below one sector; device left unused\n")
                return nil
            }
            limit = min(limit, Int(sizeMax) / VirtIOBlock.sectorSize * VirtIOBlock.sectorSize)
        }
        requestLimit = limit
        // Three descriptors per request (header, data, status).
        let wanted = UInt16(min(max(1, maximumInFlight), 1024) * 4)
        guard let queue = DriverQueue(transport: transport, index: VirtIOBlock.requestQueue, wanted: wanted, memory: memory),
              queue.ring.size >= 4 else {
            transport.giveUp("virtio-blk: the request queue could not be set up\n")
            return nil
        }
        self.queue = queue
        let count = min(max(1, maximumInFlight), Int(queue.ring.size) / 3,
                        4096 / VirtIOBlockLimits.controlBytes)
        guard let pages = KernelMemory.allocatePages(1 + count) else {
            transport.giveUp("virtio-blk: no memory for request slots\n")
            return nil
        }
        var slots: [BlockRequestSlot] = []
        var freeSlots: [Int] = []
        for i in 0..<count {
            slots.append(BlockRequestSlot(control: pages + UInt64(i * VirtIOBlockLimits.controlBytes),
                                          bounce: pages + UInt64((1 + i) * 4096)))
            freeSlots.append(count - 1 - i)
        }
        self.slots = slots
        self.freeSlots = freeSlots
        slotOfHead = [Int](repeating: -1, count: Int(queue.ring.size))
        VirtIODevice.finish(transport: transport)
    }

    /// The interrupt handler (interrupts off): acknowledge, then take what the device used.
    /// False when the device had nothing pending (a shared interrupt line's other device).
    @discardableResult
    public func handleInterrupt() -> Bool {
        let status = transport.interruptStatus()
        transport.acknowledge(status)
        drain()
        return status != 0
    }

    /// Monotonic nanoseconds.
    func now() -> UInt64 { clock() }

    // MARK: BlockDevice

    public func read(sector: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError) {
        try transfer(.read, sector: sector, buffer: buffer)
    }

    public func write(sector: UInt64, from buffer: UnsafeRawBufferPointer) throws(BlockDeviceError) {
        // The device only reads a write's data: the mutable view never writes.
        try transfer(.write, sector: sector, buffer: UnsafeMutableRawBufferPointer(mutating: buffer))
    }

    public func flush() throws(BlockDeviceError) {
        if failed { throw .deviceFailed }
        guard hasFlush else { return }
        let ticket = try acquire(.flush, sector: 0, buffer: UnsafeMutableRawBufferPointer(start: nil, count: 0))
        try wait(for: ticket)
    }

    /// The device's serial (GET_ID, §5.2.6: up to 20 bytes, NUL-padded), nil when the device
    /// does not offer it (UNSUPP) or fails the request.
    public func deviceID() throws(BlockDeviceError) -> [UInt8]? {
        var id = [UInt8](repeating: 0, count: VirtIOBlock.idSize)
        let answered: Result<Bool, BlockDeviceError> = id.withUnsafeMutableBytes { raw in
            do throws(BlockDeviceError) {
                let ticket = try acquire(.getID, sector: 0, buffer: raw)
                try wait(for: ticket)
                return .success(true)
            } catch {
                return error == .io ? .success(false) : .failure(error)
            }
        }
        guard try answered.get() else { return nil }
        if let end = id.firstIndex(of: 0) { id.removeSubrange(end...) }
        return id
    }

    /// Whether `sector` and `count` bytes are whole sectors inside the disk (BlockDevice's rule).
    func inRange(sector: UInt64, count: Int) -> Bool {
        guard count > 0, count % VirtIOBlock.sectorSize == 0 else { return false }
        let (end, overflow) = sector.addingReportingOverflow(UInt64(count / VirtIOBlock.sectorSize))
        return !overflow && end <= sectorCount
    }

    /// A read or write of whole sectors, in requests of at most `requestLimit` bytes (4 KiB
    /// through the bounce page when the device cannot reach `buffer`), one after the other.
    func transfer(_ type: BlockRequestType, sector: UInt64, buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError) {
        if failed { throw .deviceFailed }
        guard let base = buffer.baseAddress, inRange(sector: sector, count: buffer.count) else { throw .outOfRange }
        if type == .write && isReadOnly { throw .readOnly }
        let direct = memory.contains(UInt64(UInt(bitPattern: base)), length: UInt64(buffer.count))
        let chunk = direct ? requestLimit : min(requestLimit, VirtIOBlockLimits.bounceBytes)
        var done = 0
        while done < buffer.count {
            let n = min(chunk, buffer.count - done)
            let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[done ..< done + n])
            let ticket = try acquire(type, sector: sector + UInt64(done / VirtIOBlock.sectorSize), buffer: piece)
            try wait(for: ticket)
            done += n
        }
    }

    /// One log line: `virtio-blk: <sectors> sectors (<MiB> MiB)[, block size N][, read-only][, write cache]`.
    public func describe() {
        Log.timestamp()
        Log.write("virtio-blk: ")
        Log.decimal(sectorCount)
        Log.write(" sectors (")
        Log.decimal(sectorCount / 2048)
        Log.write(" MiB)")
        if let blockSize {
            Log.write(", block size ")
            Log.decimal(UInt64(blockSize))
        }
        if isReadOnly { Log.write(", read-only") }
        if hasFlush { Log.write(", write cache") }
        Log.put(10)
    }
}
