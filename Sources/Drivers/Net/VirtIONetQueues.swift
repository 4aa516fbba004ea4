// virtio-net's frame paths: receive (`drain`), transmit (`send`), the reclaiming of
// transmit buffers, and failing the device.
//
// Receive, one frame (§5.1.6.4): pop a used element from the receive queue, match its id to
// the buffer posted under that descriptor, check the length, copy the frame (after the
// 12-byte header) to the scratch buffer, repost the buffer, then call `onFrame` with the
// lock released. Reposted buffers are published (and the device kicked) once per `drain`,
// after the loop, and only when there are some: the
// device can hand back at most the buffers it held when the drain began, so one interrupt
// delivers a bounded number of frames however fast the device sends.
//
// Transmit, one frame (§5.1.6.2): take a free pool buffer (reclaiming what the device has
// used first), write the zero header and the frame, post it device-readable, publish and
// notify. The device's used length for a transmit buffer must be 0 (it writes nothing);
// SplitVirtqueue enforces that, since no byte of the chain is device-writable.
//
// Distrust (STYLE principle 7): SplitVirtqueue checks used.idx, the id (in range, in
// flight) and the length (<= the writable bytes posted); here, a used id must also name a
// buffer of this driver, and a receive length must hold a header and an Ethernet header.
// A short frame is the device's to get wrong without breaking the ring: dropped, counted,
// the buffer reposted. Anything the ring rejects fails the device (`failLocked`).
//
// Rules for callers: see VirtIONetDriver.swift; nothing here blocks or allocates.
import Core
import Drivers
import VirtIO

extension VirtIONetDriver {
    /// Takes every frame the device delivered (handing each to `onFrame`) and every
    /// transmit buffer it returned. Safe from the interrupt handler and from any thread.
    public func drain() {
        lock.lock()
        reclaimLocked()
        guard !failed, !receiving else {
            lock.unlock()
            return
        }
        receiving = true
        while let count = nextFrameLocked() {
            lock.unlock()
            onFrame?(UnsafeRawBufferPointer(rebasing: scratch[0 ..< count]))
            lock.lock()
        }
        receiving = false
        if !failed && repostPending {
            repostPending = false
            do throws(VirtqueueError) {
                try receiveQueue.publishAndNotify(transport)
            } catch {
                failLocked("the receive queue refused its buffers")
            }
        }
        lock.unlock()
    }

    /// The next good frame copied to `scratch` (its length), its buffer reposted; malformed
    /// ones are dropped on the way. Nil when there is none or the device failed. Holding the lock.
    func nextFrameLocked() -> Int? {
        while !failed {
            let used: (id: UInt16, length: UInt32)?
            do throws(VirtqueueError) {
                used = try receiveQueue.ring.popUsed(memory)
            } catch {
                failLocked("the device broke the receive queue")
                return nil
            }
            guard let (id, length) = used else { return nil }
            let index = receiveOfHead[Int(id)]
            guard index >= 0 else {
                failLocked("the device returned a receive buffer that was not posted")
                return nil
            }
            receiveOfHead[Int(id)] = -1
            var count = Int(length) - VirtIONet.headerSize
            if count < VirtIONet.minimumFrame || count > VirtIONet.maximumFrame
                || !memory.read(at: receiveAddress(index) + UInt64(VirtIONet.headerSize),
                                into: UnsafeMutableRawBufferPointer(rebasing: scratch[0 ..< count])) {
                droppedFrames += 1
                count = -1
            }
            do throws(VirtqueueError) {
                let head = try receiveQueue.ring.addBuffer(memory, address: receiveAddress(index),
                                                           length: UInt32(VirtIONet.bufferBytes), deviceWritable: true)
                receiveOfHead[Int(head)] = index
                repostPending = true
            } catch {
                failLocked("the receive queue refused a buffer")
                return nil
            }
            if count >= 0 {
                framesReceived += 1
                return count
            }
        }
        return nil
    }

    /// Hands one Ethernet frame (without FCS) to the device; false when it is refused (size
    /// outside 14...1514), no transmit buffer is free, or the device has failed. The bytes
    /// are copied: `frame` is the caller's again on return.
    public func send(_ frame: UnsafeRawBufferPointer) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard frame.count >= VirtIONet.minimumFrame && frame.count <= VirtIONet.maximumFrame else {
            refusedFrames += 1
            return false
        }
        reclaimLocked()
        if failed { return false }
        guard let index = freeTransmit.popLast() else {
            transmitBusy += 1
            return false
        }
        let address = transmitAddress(index)
        // §5.1.6.2: flags 0 and gso_type NONE (no offload negotiated); the rest is unused.
        guard memory.zero(at: address, count: UInt64(VirtIONet.headerSize)),
              memory.write(at: address + UInt64(VirtIONet.headerSize), from: frame) else {
            freeTransmit.append(index)
            failLocked("a transmit buffer lies outside guest memory")
            return false
        }
        do throws(VirtqueueError) {
            let head = try transmitQueue.ring.addBuffer(memory, address: address,
                                                        length: UInt32(VirtIONet.headerSize + frame.count), deviceWritable: false)
            transmitOfHead[Int(head)] = index
            try transmitQueue.publishAndNotify(transport)
        } catch {
            failLocked("the transmit queue refused a frame")
            return false
        }
        framesSent += 1
        return true
    }

    /// Puts every transmit buffer the device has returned back in the pool. Holding the lock.
    func reclaimLocked() {
        while !failed {
            let used: (id: UInt16, length: UInt32)?
            do throws(VirtqueueError) {
                used = try transmitQueue.ring.popUsed(memory)
            } catch {
                failLocked("the device broke the transmit queue")
                return
            }
            guard let (id, _) = used else { return }
            let index = transmitOfHead[Int(id)]
            guard index >= 0 else {
                failLocked("the device returned a transmit buffer that was not in flight")
                return
            }
            transmitOfHead[Int(id)] = -1
            freeTransmit.append(index)
        }
    }

    /// Fails the device (see `failLocked`).
    public func fail(_ reason: StaticString) {
        lock.lock()
        failLocked(reason)
        lock.unlock()
    }

    /// Marks the device failed (once: one log line) and resets it, so that it stops using
    /// every buffer it was given (§2.4). Holding the lock.
    func failLocked(_ reason: StaticString) {
        guard !failed else { return }
        failed = true
        DriverLog.failure("virtio-net", reason)
        transport.resetAfterFailure()
    }
}
