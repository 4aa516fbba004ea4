// The virtio-vsock device, guest side (virtio 1.2 §5.10): three queues (0 RX, 1 TX,
// 2 event), packets of one 44-byte header plus payload. This file moves packets; the
// connection logic (handshake, credit) is `VsockConnection`'s, driven by VsockSockets.swift.
//
// Generic over the transport (virtio-mmio on microvm, virtio-pci later) and the guest
// memory the rings live in; the platform routes the device's interrupt to
// `handleInterrupt` and starts `serve` on a thread.
//
// Rules: everything runs on CPU 0. The interrupt handler only acknowledges the device
// and signals `interrupt`; the driver thread does the work. A device that breaks the
// ring protocol (VirtIO's SplitVirtqueue reports it) marks the driver failed: sockets then
// fail with `deviceFailed`, the kernel keeps running. Buffers are kernel pages, written
// and read through the kernel's identity mapping; `memory` must cover them.
import Core
import Drivers
import VirtIO
import Wire

/// The vsock driver's buffer sizes and timeouts (a generic class cannot hold them).
enum VsockDriverLimits {
    /// RX buffers are a page each: the device fills them with packets of at most that size.
    static let bufferSize = 4096
    static let rxBuffers = 64
    /// TX buffers are larger, so a bulk write (a 64 MiB file) takes 8x fewer packets, ring
    /// round trips and host wake-ups than with pages; toro-vsock accepts payloads up to
    /// 64 KiB (VsockHeader.defaultMaximumPayload), as Linux's vhost-vsock does.
    static let txBufferSize = 32 * 1024
    static let txBuffers = 32
    /// How long a sender waits for the device to return a transmit buffer before the
    /// device is declared failed: 30 s.
    static let transmitTimeout: UInt64 = 30_000_000_000
    /// The largest payload this driver sends in one packet.
    static let maximumPayload = UInt32(txBufferSize - VsockHeader.size)
    /// The largest payload a received packet may carry (it fits one RX page).
    static let maximumReceivedPayload = UInt32(bufferSize - VsockHeader.size)
}

public final class VsockDriver<Transport: VirtIOTransport, Memory: GuestMemory>: VsockPacketPort {
    let transport: Transport
    var rx: DriverQueue<Memory>
    var tx: DriverQueue<Memory>
    var events: DriverQueue<Memory>
    /// The guest's context id, from the device's config space (§5.10.4).
    public let guestCID: UInt64
    let memory: Memory
    /// The page each in-flight RX / event chain fills, by head id.
    var rxPages: [UInt64]
    var eventPages: [UInt64]
    var txPagesInFlight: [UInt64]
    var txFree: [UInt64] = []
    let interrupt = Event()
    let txSpace = Event()
    private(set) var failed = false
    /// Called on the driver thread for each well-formed received packet.
    var deliver: ((VsockHeader, UnsafeRawBufferPointer) -> Void)? = nil

    /// Brings the device up (features, queues, buffers) or returns nil with a log line.
    public init?(transport: Transport, memory: Memory) {
        self.transport = transport
        self.memory = memory
        do {
            _ = try VirtIODevice.initialize(transport: transport, wanted: 0, required: VirtIOFeature.version1)
        } catch {
            Log.timestamp()
            Log.write("vsock: feature negotiation failed; device left unused\n")
            return nil
        }
        guard let rx = DriverQueue(transport: transport, index: 0, wanted: UInt16(VsockDriverLimits.rxBuffers), memory: memory),
              let tx = DriverQueue(transport: transport, index: 1, wanted: UInt16(VsockDriverLimits.txBuffers), memory: memory),
              let events = DriverQueue(transport: transport, index: 2, wanted: 4, memory: memory) else {
            transport.giveUp("vsock: queues could not be set up\n")
            return nil
        }
        self.rx = rx
        self.tx = tx
        self.events = events
        guestCID = transport.configRead64(0) ?? 0
        rxPages = [UInt64](repeating: 0, count: Int(rx.ring.size))
        eventPages = [UInt64](repeating: 0, count: Int(events.ring.size))
        txPagesInFlight = [UInt64](repeating: 0, count: Int(tx.ring.size))
        let txPages = VsockDriverLimits.txBufferSize / 4096
        let pages = Int(rx.ring.size) + Int(events.ring.size) + Int(tx.ring.size) * txPages
        guard let pool = KernelMemory.allocatePages(pages) else {
            transport.giveUp("vsock: no memory for buffers\n")
            return nil
        }
        do {
            for i in 0..<Int(rx.ring.size) {
                let page = pool + UInt64(i) * 4096
                let head = try self.rx.ring.addBuffer(memory, address: page, length: UInt32(VsockDriverLimits.bufferSize), deviceWritable: true)
                rxPages[Int(head)] = page
            }
            for i in 0..<Int(events.ring.size) {
                let page = pool + UInt64(Int(rx.ring.size) + i) * 4096
                let head = try self.events.ring.addBuffer(memory, address: page, length: 8, deviceWritable: true)
                eventPages[Int(head)] = page
            }
        } catch {
            transport.giveUp("vsock: could not post receive buffers\n")
            return nil
        }
        let txPool = pool + UInt64(Int(rx.ring.size) + Int(events.ring.size)) * 4096
        for i in 0..<Int(tx.ring.size) {
            txFree.append(txPool + UInt64(i * VsockDriverLimits.txBufferSize))
        }
        VirtIODevice.finish(transport: transport)
        do {
            try self.rx.publishAndNotify(transport)
            try self.events.publishAndNotify(transport)
        } catch {
            markFailed("the device rejected the receive buffers")
        }
    }

    /// The interrupt handler (CPU 0, interrupts off): acknowledge, wake the driver thread.
    public func handleInterrupt() {
        let status = transport.interruptStatus()
        transport.acknowledge(status)
        interrupt.signal()
        txSpace.signal()
    }

    /// The driver thread's loop: wait for an interrupt, then drain every queue.
    public func serve() {
        while true {
            interrupt.wait()
            interrupt.reset()
            drain()
        }
    }

    func drain() {
        guard !failed else { return }
        do {
            var reposted = false
            while let (id, length) = try rx.ring.popUsed(memory) {
                let page = rxPages[Int(id)]
                let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(page)), count: Int(length))
                receive(bytes)
                let head = try rx.ring.addBuffer(memory, address: page, length: UInt32(VsockDriverLimits.bufferSize), deviceWritable: true)
                rxPages[Int(head)] = page
                reposted = true
            }
            if reposted { try rx.publishAndNotify(transport) }
            reclaimTransmitted()
            var events = false
            while let (id, _) = try self.events.ring.popUsed(memory) {
                Log.timestamp()
                Log.write("vsock: transport event (reset); connections are dropped by the host\n")
                let page = eventPages[Int(id)]
                let head = try self.events.ring.addBuffer(memory, address: page, length: 8, deviceWritable: true)
                eventPages[Int(head)] = page
                events = true
            }
            if events { try self.events.publishAndNotify(transport) }
        } catch {
            markFailed("the device broke the virtqueue protocol")
        }
    }

    /// Takes back the TX buffers the device has sent (no RX work: safe from any sender).
    func reclaimTransmitted() {
        guard !failed else { return }
        do {
            var freed = false
            while let (id, _) = try tx.ring.popUsed(memory) {
                txFree.append(txPagesInFlight[Int(id)])
                freed = true
            }
            if freed { txSpace.signal() }
        } catch {
            markFailed("the device broke the TX virtqueue")
        }
    }

    func receive(_ bytes: UnsafeRawBufferPointer) {
        do {
            let header = try VsockHeader.decode(bytes, maximumPayload: VsockDriverLimits.maximumReceivedPayload)
            guard header.destination.cid == guestCID else { return }
            let payload = UnsafeRawBufferPointer(rebasing: bytes[VsockHeader.size..<(VsockHeader.size + Int(header.length))])
            deliver?(header, payload)
        } catch {
            Log.timestamp()
            Log.write("vsock: dropped a malformed packet from the device\n")
        }
    }

    /// Queues one packet (header + up to `maximumPayload` bytes). Blocks the calling
    /// thread while every TX buffer is in flight. False when the device has failed.
    /// `restamp`: the connection whose current credit the header carries (stamped here,
    /// once the packet has its buffer, so packets leave in the order they were stamped).
    func send(_ header: VsockHeader, payload: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
              restamp: VsockConnection? = nil) -> Bool {
        while !failed {
            if let page = txFree.popLast() {
                let buffer = UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: UInt(page)), count: VsockDriverLimits.txBufferSize)
                var header = header
                restamp?.restamp(&header)
                header.length = UInt32(payload.count)
                header.encode(into: buffer)
                if payload.count > 0 {
                    UnsafeMutableRawBufferPointer(rebasing: buffer[VsockHeader.size...]).copyMemory(from: payload)
                }
                do {
                    let head = try tx.ring.addBuffer(memory, address: page, length: UInt32(VsockHeader.size + payload.count),
                                                     deviceWritable: false)
                    txPagesInFlight[Int(head)] = page
                    try tx.publishAndNotify(transport)
                    return true
                } catch {
                    markFailed("the TX queue failed")
                    return false
                }
            }
            txSpace.reset()
            reclaimTransmitted()
            // A back-end that stops taking packets must not hang every sender forever.
            if txFree.isEmpty {
                let deadline = Clock.monotonicNanoseconds() &+ VsockDriverLimits.transmitTimeout
                if !txSpace.wait(deadline: deadline) && Clock.monotonicNanoseconds() >= deadline {
                    reclaimTransmitted()
                    if txFree.isEmpty {
                        logTransmitRing()
                        markFailed("the device returned no transmit buffer for 30 s")
                    }
                }
            }
        }
        return false
    }

    /// One line with the TX ring as this side sees it, for a device that stopped returning
    /// buffers: whether it took the chains (used.idx behind avail.idx by all of them: it
    /// never ran, or lost the kick) and whether it asked not to be notified (used.flags).
    func logTransmitRing() {
        let ring = tx.ring
        Log.timestamp()
        Log.write("vsock: tx ring: ")
        Log.decimal(ring.chainsOut)
        Log.write(" chains out of ")
        Log.decimal(Int(ring.size))
        Log.write(", avail.idx ")
        Log.decimal(UInt64(ring.publishedAvailIndex))
        Log.write(", used.idx ")
        if let used = memory.load(UInt16.self, at: ring.usedRing + VirtqueueFormat.ringIndex) { Log.decimal(UInt64(used)) } else { Log.write("?") }
        Log.write(" (taken back up to ")
        Log.decimal(UInt64(ring.lastUsedIndex))
        Log.write("), used.flags ")
        if let flags = memory.load(UInt16.self, at: ring.usedRing + VirtqueueFormat.ringFlags) { Log.decimal(UInt64(flags)) } else { Log.write("?") }
        Log.put(10)
    }

    func markFailed(_ reason: StaticString) {
        guard !failed else { return }
        failed = true
        DriverLog.failure("vsock", reason)
        txSpace.signal()
        onFailure?()
    }

    var onFailure: (() -> Void)? = nil
}
