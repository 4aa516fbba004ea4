// The virtio-fs device, guest side (virtio 1.2 §5.11): FUSE requests over virtqueues.
// Queue 0 is the high-priority queue, used here only for FORGET (which has no reply);
// queue 1 is the (single) request queue. The config space holds the tag (36 bytes,
// NUL-padded) and num_request_queues (le32). `FUSEFileSystem` does the FUSE part;
// this file moves bytes. Generic over the transport and the guest memory the rings live
// in; the platform routes the device's interrupt to `handleInterrupt` and hands in the
// clock and the CPU's spin-wait hint.
//
// Rules:
//   * A request is one chain: the request bytes (device-readable) then the reply buffer
//     (device-writable), both in identity-mapped RAM (heap memory, never a thread stack).
//   * One request is in flight on queue 1 at a time: `FUSEFileSystem` serialises its
//     callers. The caller waits on the interrupt event with a deadline; before the
//     scheduler runs (INIT at boot) it polls the used ring instead.
//   * Every wait has a timeout (`timeoutSeconds`, kernel argument `fs-timeout=SECONDS`,
//     default 30). `FUSEStallGuard` keeps the rules: a request with no reply in
//     time fails with `.io` and the device is stalled (logged once): until the device
//     gives that chain back, every request fails at once without being posted, so the
//     buffers the timed-out chain names are never rewritten or reused while the device
//     may still write them, and no later caller waits another timeout. The late reply
//     ends the stall. A timeout while polling at boot (INIT) instead fails the device and
//     resets it (§2.4: a reset device stops using the buffers), since a failed mount frees
//     the file system's buffers.
//   * The used length is checked by VirtIO's `SplitVirtqueue` against the writable space; a
//     used id that is not the request's, or any ring violation, marks the device failed:
//     every later request throws `.io`, the kernel carries on.
//   * FORGETs are copied into small slots of one page (the driver's own, so a FORGET the
//     device never returns holds no one else's memory); when all are in flight the sender
//     waits for the device to return some, at most the timeout, then drops the FORGET
//     (logged once; a lost FORGET costs the host one cached descriptor). While the device
//     returns none, further FORGETs are dropped at once.
import Core
import Drivers
import VirtIO

public final class VirtIOFSDriver<Transport: VirtIOTransport, Memory: GuestMemory>: FUSEChannel, FUSERequestQueue {
    // Computed: a generic class cannot hold static stored properties.
    static var tagLength: Int { 36 }
    static var forgetSlotSize: Int { 64 }
    static var forgetSlots: Int { 4096 / forgetSlotSize }

    let transport: Transport
    var hiprio: DriverQueue<Memory>
    var requests: DriverQueue<Memory>
    let memory: Memory
    /// The tag the host gave the share (`tag=` of vhost-user-fs-device).
    public let tag: [UInt8]
    let interrupt = Event()
    var forgetFree: [UInt64] = []
    var forgetInFlight: [UInt64]
    private(set) var failed = false
    /// Monotonic nanoseconds, for the deadlines.
    let clock: () -> UInt64
    /// The CPU's spin-wait hint (x86 `pause`), for the polling loops.
    let pause: () -> Void
    /// True until the scheduler runs: requests poll the used ring.
    public var polling = true
    /// The timeout on every wait and what follows one.
    let stallGuard: FUSEStallGuard
    /// True once a FORGET found every slot in flight for a whole timeout; cleared when the
    /// device returns one.
    private(set) var forgetsStalled = false

    /// Brings the device up (features, both queues) or returns nil with a log line.
    public init?(transport: Transport, memory: Memory, now: @escaping () -> UInt64, pause: @escaping () -> Void,
                 timeoutSeconds: Int = FUSEStallGuard.defaultTimeoutSeconds) {
        self.transport = transport
        self.memory = memory
        self.clock = now
        self.pause = pause
        stallGuard = FUSEStallGuard(timeoutSeconds: timeoutSeconds)
        do {
            _ = try VirtIODevice.initialize(transport: transport, wanted: 0, required: VirtIOFeature.version1)
        } catch {
            Log.timestamp()
            Log.write("virtio-fs: feature negotiation failed; device left unused\n")
            return nil
        }
        guard let hiprio = DriverQueue(transport: transport, index: 0, wanted: UInt16(VirtIOFSDriver.forgetSlots), memory: memory),
              let requests = DriverQueue(transport: transport, index: 1, wanted: 8, memory: memory),
              let page = KernelMemory.allocatePages(1) else {
            transport.giveUp("virtio-fs: queues could not be set up\n")
            return nil
        }
        self.hiprio = hiprio
        self.requests = requests
        var tag: [UInt8] = []
        for offset in 0..<VirtIOFSDriver.tagLength {
            let byte = transport.configRead(offset)
            if byte == 0 { break }
            tag.append(byte)
        }
        self.tag = tag
        for slot in 0..<VirtIOFSDriver.forgetSlots {
            forgetFree.append(page + UInt64(slot * VirtIOFSDriver.forgetSlotSize))
        }
        forgetInFlight = [UInt64](repeating: 0, count: Int(hiprio.ring.size))
        VirtIODevice.finish(transport: transport)
    }

    /// The interrupt handler (CPU 0, interrupts off): acknowledge, wake the waiting thread.
    public func handleInterrupt() {
        let status = transport.interruptStatus()
        transport.acknowledge(status)
        interrupt.signal()
    }

    static func address(_ pointer: UnsafeRawPointer?) -> UInt64 {
        UInt64(UInt(bitPattern: pointer))
    }

    // MARK: FUSEChannel

    public func exchange(_ request: UnsafeRawBufferPointer, reply: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        guard !failed else { throw .io }
        do {
            return try stallGuard.exchange(self, request: request, reply: reply)
        } catch {
            if polling && stallGuard.isStalled {
                // At boot a failed mount frees the buffers the stalled chain names: stop the
                // device from ever writing them.
                markFailed("no answer from the host at mount")
                resetDevice()
            }
            throw error
        }
    }

    public func prepare() throws(FileSystemError) {
        guard !failed else { throw .io }
        try stallGuard.prepare(self)
    }

    public func post(_ request: UnsafeRawBufferPointer) throws(FileSystemError) {
        guard request.count <= VirtIOFSDriver.forgetSlotSize else { throw .invalidPath }
        guard !failed else { throw .io }
        reclaimForgets()
        if forgetFree.isEmpty {
            guard !forgetsStalled else { throw .io }
            let deadline = now() &+ stallGuard.timeout
            while forgetFree.isEmpty {
                interrupt.reset()
                reclaimForgets()
                if failed { throw .io }
                if !forgetFree.isEmpty { break }
                if now() >= deadline {
                    forgetsStalled = true
                    Log.timestamp()
                    Log.write("virtio-fs: the host returns no FORGET within the timeout; FORGETs are dropped until it does\n")
                    throw .io
                }
                waitForDevice(until: deadline)
            }
        }
        guard let slot = forgetFree.popLast() else { throw .io }
        UnsafeMutableRawPointer(bitPattern: UInt(slot))!.copyMemory(from: request.baseAddress!, byteCount: request.count)
        do {
            let head = try hiprio.ring.addBuffer(memory, address: slot, length: UInt32(request.count), deviceWritable: false)
            forgetInFlight[Int(head)] = slot
            try hiprio.publishAndNotify(transport)
        } catch {
            markFailed("the high-priority queue refused a FORGET")
            throw .io
        }
    }

    // MARK: FUSERequestQueue (for FUSEStallGuard)

    public func submit(request: UnsafeRawBufferPointer, reply: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> UInt16 {
        guard !failed else { throw .io }
        do {
            let head = try requests.ring.addBuffer(memory, chain: [
                (address: VirtIOFSDriver.address(request.baseAddress), length: UInt32(request.count), deviceWritable: false),
                (address: VirtIOFSDriver.address(reply.baseAddress), length: UInt32(reply.count), deviceWritable: true),
            ])
            try requests.publishAndNotify(transport)
            return head
        } catch {
            markFailed("the request queue refused a request")
            throw .io
        }
    }

    public func takeUsed() throws(FileSystemError) -> (id: UInt16, length: UInt32)? {
        // Reset first: an interrupt after the look below keeps the event signalled.
        interrupt.reset()
        reclaimForgets()
        guard !failed else { throw .io }
        do {
            return try requests.ring.popUsed(memory)
        } catch {
            markFailed("the device broke the request queue")
            throw .io
        }
    }

    public func waitForDevice(until deadline: UInt64) {
        if polling {
            pause()
        } else {
            interrupt.wait(deadline: deadline)
        }
    }

    public func now() -> UInt64 { clock() }

    public func fail(_ reason: StaticString) { markFailed(reason) }

    /// Takes back the FORGET slots the device has consumed.
    func reclaimForgets() {
        guard !failed else { return }
        do {
            while let (id, _) = try hiprio.ring.popUsed(memory) {
                forgetFree.append(forgetInFlight[Int(id)])
                forgetsStalled = false
            }
        } catch {
            markFailed("the device broke the high-priority queue")
        }
    }

    func markFailed(_ reason: StaticString) {
        guard !failed else { return }
        failed = true
        DriverLog.failure("virtio-fs", reason)
    }

    /// Resets the device (§4.2.2: writing 0 to Status); after the reset it no longer
    /// touches the rings or the buffers they name. Waits, boundedly, for the reset to show.
    func resetDevice() {
        transport.status = DeviceStatus(rawValue: 0)
        var spins = 0
        while transport.status.rawValue != 0 && spins < 1_000_000 {
            pause()
            spins += 1
        }
    }
}
