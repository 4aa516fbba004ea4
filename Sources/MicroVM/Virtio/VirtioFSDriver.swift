// The virtio-fs device, guest side (virtio 1.2 §5.11): FUSE requests over virtqueues.
// Queue 0 is the high-priority queue, used here only for FORGET (which has no reply);
// queue 1 is the (single) request queue. The config space holds the tag (36 bytes,
// NUL-padded) and num_request_queues (le32). Core's `FUSEFileSystem` does the FUSE part;
// this file moves bytes.
//
// Rules:
//   * A request is one chain: the request bytes (device-readable) then the reply buffer
//     (device-writable), both in identity-mapped RAM (heap memory, never a thread stack).
//   * One request is in flight on queue 1 at a time: `FUSEFileSystem` serialises its
//     callers. The caller waits on the interrupt event; before the scheduler runs (INIT at
//     boot) it polls the used ring instead, with a deadline.
//   * The used length is checked by Core's `SplitVirtqueue` against the writable space; a
//     used id that is not the request's, or any ring violation, marks the device failed:
//     every later request throws `.io`, the kernel carries on.
//   * FORGETs are copied into small slots of one page; when all are in flight the sender
//     waits for the device to return some.
import Core
import X86
import Arch

final class VirtioFSDriver: FUSEChannel {
    static let deviceID: UInt32 = 26
    static let tagLength = 36
    static let forgetSlotSize = 64
    static let forgetSlots = 4096 / forgetSlotSize

    let transport: VirtioMMIO
    var hiprio: DriverQueue
    var requests: DriverQueue
    let memory: IdentityMemory
    /// The tag the host gave the share (`tag=` of vhost-user-fs-device).
    let tag: [UInt8]
    let interrupt = Event()
    var forgetFree: [UInt64] = []
    var forgetInFlight: [UInt64]
    private(set) var failed = false
    /// Monotonic nanoseconds, for the boot-time polling deadline.
    let now: () -> UInt64
    /// True until the scheduler runs: requests poll the used ring.
    var polling = true
    static let pollingLimit: UInt64 = 10_000_000_000

    /// Brings the device up (features, both queues) or returns nil with a log line.
    init?(transport: VirtioMMIO, memory: IdentityMemory, now: @escaping () -> UInt64) {
        self.transport = transport
        self.memory = memory
        self.now = now
        do {
            _ = try VirtioDevice.initialize(transport: transport, wanted: 0, required: VirtioFeature.version1)
        } catch {
            Log.timestamp()
            Log.write("virtio-fs: feature negotiation failed; device left unused\n")
            return nil
        }
        guard let hiprio = DriverQueue(transport: transport, index: 0, wanted: UInt16(VirtioFSDriver.forgetSlots), memory: memory),
              let requests = DriverQueue(transport: transport, index: 1, wanted: 8, memory: memory),
              let page = KernelMemory.allocatePages(1) else {
            transport.giveUp("virtio-fs: queues could not be set up\n")
            return nil
        }
        self.hiprio = hiprio
        self.requests = requests
        var tag: [UInt8] = []
        for offset in 0..<VirtioFSDriver.tagLength {
            let byte = transport.configRead(offset)
            if byte == 0 { break }
            tag.append(byte)
        }
        self.tag = tag
        for slot in 0..<VirtioFSDriver.forgetSlots {
            forgetFree.append(page + UInt64(slot * VirtioFSDriver.forgetSlotSize))
        }
        forgetInFlight = [UInt64](repeating: 0, count: Int(hiprio.ring.size))
        VirtioDevice.finish(transport: transport)
    }

    /// The interrupt handler (CPU 0, interrupts off): acknowledge, wake the waiting thread.
    func handleInterrupt() {
        let status = transport.read(.interruptStatus)
        transport.write(.interruptAcknowledge, status)
        interrupt.signal()
    }

    static func address(_ pointer: UnsafeRawPointer?) -> UInt64 {
        UInt64(UInt(bitPattern: pointer))
    }

    func exchange(_ request: UnsafeRawBufferPointer, reply: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        guard !failed else { throw .io }
        let head: UInt16
        do {
            head = try requests.ring.addBuffer(memory, chain: [
                (address: VirtioFSDriver.address(request.baseAddress), length: UInt32(request.count), deviceWritable: false),
                (address: VirtioFSDriver.address(reply.baseAddress), length: UInt32(reply.count), deviceWritable: true),
            ])
            try requests.publishAndNotify(transport)
        } catch {
            markFailed("the request queue refused a request")
            throw .io
        }
        let started = now()
        while true {
            interrupt.reset()
            reclaimForgets()
            let used: (id: UInt16, length: UInt32)?
            do {
                used = try requests.ring.popUsed(memory)
            } catch {
                markFailed("the device broke the request queue")
                throw .io
            }
            if let used {
                guard used.id == head else {
                    markFailed("the device completed a request that was not in flight")
                    throw .io
                }
                return Int(used.length)
            }
            if failed { throw .io }
            if polling {
                guard now() - started < VirtioFSDriver.pollingLimit else {
                    markFailed("no answer from the host within 10 s")
                    throw .io
                }
                arch_pause()
            } else {
                interrupt.wait()
            }
        }
    }

    func post(_ request: UnsafeRawBufferPointer) throws(FileSystemError) {
        guard request.count <= VirtioFSDriver.forgetSlotSize else { throw .invalidPath }
        while !failed {
            reclaimForgets()
            if let slot = forgetFree.popLast() {
                UnsafeMutableRawPointer(bitPattern: UInt(slot))!.copyMemory(from: request.baseAddress!, byteCount: request.count)
                do {
                    let head = try hiprio.ring.addBuffer(memory, address: slot, length: UInt32(request.count), deviceWritable: false)
                    forgetInFlight[Int(head)] = slot
                    try hiprio.publishAndNotify(transport)
                    return
                } catch {
                    markFailed("the high-priority queue refused a FORGET")
                    throw .io
                }
            }
            interrupt.reset()
            reclaimForgets()
            if forgetFree.isEmpty {
                if polling { arch_pause() } else { interrupt.wait() }
            }
        }
        throw .io
    }

    /// Takes back the FORGET slots the device has consumed.
    func reclaimForgets() {
        guard !failed else { return }
        do {
            while let (id, _) = try hiprio.ring.popUsed(memory) {
                forgetFree.append(forgetInFlight[Int(id)])
            }
        } catch {
            markFailed("the device broke the high-priority queue")
        }
    }


    func markFailed(_ reason: StaticString) {
        guard !failed else { return }
        failed = true
        VirtioMMIO.logFailure("virtio-fs", reason)
    }
}
