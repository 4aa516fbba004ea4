// The virtio-net device, guest side (virtio 1.2 §5.1): Ethernet frames in and out over one
// receive queue and one transmit queue. Generic over the transport (virtio-pci on legacy,
// virtio-mmio on microvm) and the guest memory the rings and buffers live in; the platform
// routes the device's interrupt to `handleInterrupt`, or to `acknowledgeInterrupt` and a
// thread that calls `drain` (legacy: LegacyNet/AttachNet.swift). The frame paths (drain,
// send, reclaim, failing) are VirtIONetQueues.swift.
//
// Bring-up: VERSION_1 required; MAC and STATUS accepted when offered; never a checksum or
// GSO offload, MRG_RXBUF, the control queue or multiqueue, so every frame is one buffer
// with the 12-byte header before it and nothing in the header matters. The MAC (6 bytes at
// config 0) is read between two equal generation counts (§2.5.1); without VIRTIO_NET_F_MAC
// the driver uses `VirtIONetLimits.fallbackMAC` (§5.1.5).
//
// Memory. Buffers are the driver's own, in kernel pages, two per page (2 KiB each):
//   receive   up to 64 (never more than the ring), each posted device-writable as header +
//             1514 bytes (§5.1.6.3: "SHOULD populate the receive queue(s) with buffers"),
//             posted before DRIVER_OK and reposted as soon as its frame is copied out;
//   transmit  a pool of up to 32, a frame copied into a free one behind a zero header.
// A received frame is copied to a driver-owned scratch buffer before `onFrame` sees it, so
// the buffer is back with the device at once and the callback never races the device.
//
// Rules:
//   * `onFrame` is called from `drain` (the interrupt handler, or a poller) with the frame
//     without its header; the bytes are valid during the call only. It may call `send`; a
//     `drain` it starts returns at once (one delivery at a time: a second CPU's `drain`
//     leaves the receive side to the one already delivering).
//   * `send` never blocks: false when the frame is refused (outside 14...1514 bytes), when
//     every transmit buffer is still with the device (after reclaiming what it returned),
//     or when the device has failed; each counted.
//   * The driver never waits on the device, so it has no polling mode: before the scheduler
//     runs (interrupts off), whoever wants frames calls `drain()` in its loop.
//   * Distrust: a frame shorter than header + 14 bytes is dropped and counted
//     (`droppedFrames`); ring violations (a used id not posted, a used length beyond the
//     buffer, used.idx jumping: VirtIO's SplitVirtqueue checks them) fail the device: one
//     log line, the device reset (§2.4), every later call refused.
//   * The handler runs on one CPU with interrupts off, callers on any CPU: the queues and
//     counters are behind a SpinLock that nobody holds across `onFrame`.
import Core
import Drivers
import VirtIO

public final class VirtIONetDriver<Transport: VirtIOTransport, Memory: GuestMemory> {
    let transport: Transport
    let memory: Memory
    var receiveQueue: DriverQueue<Memory>
    var transmitQueue: DriverQueue<Memory>

    /// The station address: the device's (VIRTIO_NET_F_MAC) or the fallback.
    public let mac: [UInt8]
    /// The features accepted at bring-up.
    public let features: UInt64
    /// Called by `drain` with each good frame (see the header).
    public var onFrame: ((UnsafeRawBufferPointer) -> Void)?

    /// Guest-physical address of receive buffer 0; buffer i is `bufferStride` further on.
    let receiveBase: UInt64
    let receiveCount: Int
    /// `receiveOfHead[h]`: the receive buffer whose descriptor is `h` while posted, else -1.
    var receiveOfHead: [Int]
    let transmitBase: UInt64
    let transmitCount: Int
    /// `transmitOfHead[h]`: the transmit buffer whose descriptor is `h` while with the device.
    var transmitOfHead: [Int]
    /// Transmit buffers free for `send`.
    var freeTransmit: [Int]
    /// Where a received frame is copied for `onFrame` (`maximumFrame` bytes).
    let scratch: UnsafeMutableRawBufferPointer
    /// True while one `drain` delivers frames (see the header).
    var receiving = false
    /// Receive buffers reposted and not yet published (`drain` publishes them).
    var repostPending = false

    /// Guards the queues, the buffer maps, the counters and `failed`.
    let lock = SpinLock()
    /// Set once, when the device broke the protocol.
    public internal(set) var failed = false

    // Counters (written under the lock; read them for reports, not for decisions).
    /// Frames handed to `onFrame`.
    public internal(set) var framesReceived: UInt64 = 0
    /// Frames the device delivered malformed (shorter than header + 14 bytes): dropped.
    public internal(set) var droppedFrames: UInt64 = 0
    /// Frames handed to the device.
    public internal(set) var framesSent: UInt64 = 0
    /// `send` calls refused because every transmit buffer was with the device.
    public internal(set) var transmitBusy: UInt64 = 0
    /// `send` calls refused for the frame's size (outside 14...1514 bytes).
    public internal(set) var refusedFrames: UInt64 = 0

    /// Brings the device up (features, MAC, both queues, the buffers, receive buffers
    /// posted) or returns nil with a log line.
    public init?(transport: Transport, memory: Memory) {
        self.transport = transport
        self.memory = memory
        let accepted: UInt64
        do {
            accepted = try VirtIODevice.initialize(transport: transport, wanted: VirtIONet.wantedFeatures,
                                                   required: VirtIOFeature.version1)
        } catch {
            Log.timestamp()
            Log.write("virtio-net: feature negotiation failed; device left unused\n")
            return nil
        }
        features = accepted
        if accepted & VirtIONet.featureMAC != 0 {
            guard let mac = Self.readMAC(transport) else {
                transport.giveUp("virtio-net: the configuration never settled; device left unused\n")
                return nil
            }
            self.mac = mac
        } else {
            mac = VirtIONetLimits.fallbackMAC
        }
        guard var receive = DriverQueue(transport: transport, index: VirtIONet.receiveQueue,
                                        wanted: UInt16(VirtIONetLimits.receiveBuffers), memory: memory),
              let transmit = DriverQueue(transport: transport, index: VirtIONet.transmitQueue,
                                         wanted: UInt16(VirtIONetLimits.transmitBuffers), memory: memory) else {
            transport.giveUp("virtio-net: the queues could not be set up\n")
            return nil
        }
        // One descriptor per buffer, so a ring of n entries takes n buffers.
        receiveCount = min(Int(receive.ring.size), VirtIONetLimits.receiveBuffers)
        transmitCount = min(Int(transmit.ring.size), VirtIONetLimits.transmitBuffers)
        let perPage = 4096 / VirtIONetLimits.bufferStride
        let receivePages = (receiveCount + perPage - 1) / perPage
        let transmitPages = (transmitCount + perPage - 1) / perPage
        guard let pages = KernelMemory.allocatePages(receivePages + transmitPages) else {
            transport.giveUp("virtio-net: no memory for frame buffers\n")
            return nil
        }
        receiveBase = pages
        transmitBase = pages + UInt64(receivePages * 4096)
        receiveOfHead = [Int](repeating: -1, count: Int(receive.ring.size))
        transmitOfHead = [Int](repeating: -1, count: Int(transmit.ring.size))
        freeTransmit = (0 ..< transmitCount).reversed().map { $0 }
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: VirtIONet.maximumFrame, alignment: 16)
        // §5.1.5 step 4 (fill the receive queue), published before DRIVER_OK; the kick
        // waits until the device is live (§3.1.1: no notification before DRIVER_OK).
        do throws(VirtqueueError) {
            for index in 0 ..< receiveCount {
                let head = try receive.ring.addBuffer(memory, address: receiveBase + UInt64(index * VirtIONetLimits.bufferStride),
                                                      length: UInt32(VirtIONet.bufferBytes), deviceWritable: true)
                receiveOfHead[Int(head)] = index
            }
            try receive.ring.publish(memory)
        } catch {
            scratch.deallocate()
            transport.giveUp("virtio-net: the receive queue refused its buffers\n")
            return nil
        }
        receiveQueue = receive
        transmitQueue = transmit
        VirtIODevice.finish(transport: transport)
        if receiveQueue.ring.needsNotification(memory) { transport.notify(VirtIONet.receiveQueue) }
    }

    deinit { scratch.deallocate() }

    /// The MAC (6 bytes at config 0), read between two equal generation counts (§2.5.1);
    /// nil when the configuration never settles.
    static func readMAC(_ transport: Transport) -> [UInt8]? {
        var attempt = 0
        while attempt < 16 {
            attempt += 1
            let before = transport.configGeneration()
            var mac = [UInt8](repeating: 0, count: 6)
            for i in 0 ..< 6 { mac[i] = transport.configRead(VirtIONet.configMAC + i) }
            if transport.configGeneration() == before { return mac }
        }
        return nil
    }

    /// Whether the link is up: the STATUS field when negotiated (§5.1.4), else always true.
    public var linkUp: Bool {
        guard features & VirtIONet.featureStatus != 0 else { return true }
        return (transport.configRead16(VirtIONet.configStatus) ?? 0) & VirtIONet.statusLinkUp != 0
    }

    /// The interrupt handler (interrupts off): acknowledge, then drain both queues. False
    /// when the device had nothing pending (a shared INTx line's other device).
    @discardableResult
    public func handleInterrupt() -> Bool {
        let pending = acknowledgeInterrupt()
        drain()
        return pending
    }

    /// The interrupt handler's half when a thread takes the frames (legacy's network
    /// thread): acknowledge the device (on virtio-pci, reading the ISR deasserts INTx,
    /// §4.1.4.5) and nothing else. True when the device had something pending; the caller
    /// then wakes the thread, which calls `drain`.
    public func acknowledgeInterrupt() -> Bool {
        let status = transport.interruptStatus()
        transport.acknowledge(status)
        return status != 0
    }

    /// One log line: `virtio-net: MAC 52:54:00:12:34:56, N receive and M transmit buffers[, link down]`.
    public func describe() {
        Log.timestamp()
        Log.write("virtio-net: MAC ")
        for (i, byte) in mac.enumerated() {
            if i > 0 { Log.put(58) }
            for nibble in [byte >> 4, byte & 0xF] { Log.put(nibble < 10 ? 48 + nibble : 87 + nibble) }
        }
        Log.write(", ")
        Log.decimal(receiveCount)
        Log.write(" receive and ")
        Log.decimal(transmitCount)
        Log.write(" transmit buffers")
        if !linkUp { Log.write(", link down") }
        Log.put(10)
    }

    /// Guest-physical address of receive buffer `index`.
    func receiveAddress(_ index: Int) -> UInt64 { receiveBase + UInt64(index * VirtIONetLimits.bufferStride) }
    /// Guest-physical address of transmit buffer `index`.
    func transmitAddress(_ index: Int) -> UInt64 { transmitBase + UInt64(index * VirtIONetLimits.bufferStride) }
}
