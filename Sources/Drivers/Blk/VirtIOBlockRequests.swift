// virtio-blk requests in three steps, so that the blocking calls of VirtIOBlockDriver.swift
// are a thin wrapper and host tests can drive each step without the kernel's scheduler:
//   submit   takes a free slot, writes the header, posts header + data + status as one chain
//            (§5.2.6), publishes and notifies; nil when every slot is busy.
//   drain    (the interrupt handler, and every waiter) pops the used ring, matches each id
//            to the slot that posted it, decodes its status byte and signals its Event.
//   collect  the submitter's look at its slot: false while in flight; true once OK (a read
//            through the bounce page is copied out first); `.io` for IOERR/UNSUPP. Frees the
//            slot once done.
// `acquire` (submit, waiting for a slot) and `wait` (drain/collect until done or the
// deadline) are the blocking halves.
//
// Distrust (STYLE principle 7): the ring's checks are VirtIO's SplitVirtqueue's (used index,
// id in flight, length <= the writable bytes offered); here, a used id must name a slot in
// flight and the status byte must be 0, 1 or 2. Anything else, or a request past its
// deadline, fails the device (`fail`): logged once, the device reset, every waiter woken.
//
// Rules for callers: `submit` and `collect` for one ticket from one thread; the buffer
// handed to `submit` stays untouched until `collect` returned true or threw.
import Core
import Drivers
import VirtIO

extension VirtIOBlockDriver {
    /// Posts one request: `buffer` is the data (read: device-writable, write: device-readable,
    /// flush: ignored, getID: at most 20 bytes, filled at `collect`). The caller has checked
    /// the range and the read-only flag; this checks only what keeps the ring sound.
    /// Nil when every slot is busy (`slotFreed` is then armed). Throws `deviceFailed`, or
    /// `outOfRange` for data the request cannot carry.
    public func submit(_ type: BlockRequestType, sector: UInt64,
                       buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError) -> BlockTicket? {
        var count = 0
        var address: UInt64 = 0
        switch type {
        case .read, .write:
            guard let base = buffer.baseAddress, buffer.count > 0, buffer.count <= requestLimit,
                  buffer.count % VirtIOBlock.sectorSize == 0 else { throw .outOfRange }
            count = buffer.count
            address = UInt64(UInt(bitPattern: base))
        case .getID:
            guard buffer.baseAddress != nil, buffer.count <= VirtIOBlock.idSize else { throw .outOfRange }
            count = VirtIOBlock.idSize
        case .flush:
            break
        }
        let direct = type != .getID && memory.contains(address, length: UInt64(count))
        if count > 0 && !direct && count > VirtIOBlockLimits.bounceBytes { throw .outOfRange }

        lock.lock()
        if failed {
            lock.unlock()
            throw .deviceFailed
        }
        guard let index = freeSlots.popLast() else {
            // Armed under the lock: a slot freed after this look signals again.
            slotFreed.reset()
            lock.unlock()
            return nil
        }
        let slot = slots[index]
        slot.copyBack = nil
        slot.copyCount = 0
        var dataAddress = address
        var bounced = true
        if count > 0 && !direct {
            dataAddress = slot.bounce
            if type == .write {
                bounced = memory.write(at: slot.bounce, from: UnsafeRawBufferPointer(buffer))
            } else {
                slot.copyBack = buffer.baseAddress
                slot.copyCount = type == .getID ? buffer.count : count
            }
        }
        // §5.2.6.1: reserved 0; sector 0 for FLUSH and GET_ID. 0xFF is no status at all.
        let written = bounced && memory.store(type.rawValue, at: slot.control)
            && memory.store(UInt32(0), at: slot.control + 4)
            && memory.store(type == .read || type == .write ? sector : 0, at: slot.control + 8)
            && memory.store(UInt8(0xFF), at: slot.statusAddress)
        var chain: [(address: UInt64, length: UInt32, deviceWritable: Bool)] = [
            (address: slot.control, length: UInt32(VirtIOBlock.headerSize), deviceWritable: false),
        ]
        if count > 0 {
            chain.append((address: dataAddress, length: UInt32(count), deviceWritable: type != .write))
        }
        chain.append((address: slot.statusAddress, length: 1, deviceWritable: true))
        slot.completion.reset()
        slot.deadline = deadline(after: now())
        do throws(VirtqueueError) {
            guard written else { throw .ringOutsideMemory }
            let head = try queue.ring.addBuffer(memory, chain: chain)
            slot.head = head
            slot.state = .inFlight
            slotOfHead[Int(head)] = index
            try queue.publishAndNotify(transport)
        } catch {
            failLocked("the request queue refused a request")
            lock.unlock()
            throw .deviceFailed
        }
        lock.unlock()
        return BlockTicket(slot: index)
    }

    /// Takes every used request off the ring and wakes its submitter. Safe from the interrupt
    /// handler and from any thread.
    public func drain() {
        lock.lock()
        defer { lock.unlock() }
        guard !failed else { return }
        do throws(VirtqueueError) {
            while let (id, _) = try queue.ring.popUsed(memory) {
                let index = slotOfHead[Int(id)]
                guard index >= 0, slots[index].state == .inFlight else {
                    failLocked("the device completed a request that was not in flight")
                    return
                }
                let slot = slots[index]
                let outcome = BlockRequestStatus(byte: memory.load(UInt8.self, at: slot.statusAddress) ?? 0xFF)
                if case .invalid = outcome {
                    failLocked("the device wrote an invalid status byte")
                    return
                }
                slotOfHead[Int(id)] = -1
                slot.outcome = outcome
                slot.state = .done
                slot.completion.signal()
            }
        } catch {
            failLocked("the device broke the request queue")
        }
    }

    /// The submitter's look at its request: false while in flight, true once it completed
    /// OK (the slot is then free again). Throws `.io` (IOERR/UNSUPP; the slot is freed) or
    /// `deviceFailed`.
    public func collect(_ ticket: BlockTicket) throws(BlockDeviceError) -> Bool {
        lock.lock()
        if failed {
            lock.unlock()
            throw .deviceFailed
        }
        let slot = slots[ticket.slot]
        guard slot.state == .done else {
            lock.unlock()
            return false
        }
        let outcome = slot.outcome
        if outcome == .ok, let target = slot.copyBack {
            _ = memory.read(at: slot.bounce, into: UnsafeMutableRawBufferPointer(start: target, count: slot.copyCount))
        }
        slot.copyBack = nil
        slot.state = .free
        freeSlots.append(ticket.slot)
        lock.unlock()
        slotFreed.signal()
        if outcome != .ok { throw .io }
        return true
    }

    /// The monotonic time by which a request submitted at `start` must be answered.
    func deadline(after start: UInt64) -> UInt64 {
        let (end, overflow) = start.addingReportingOverflow(timeout)
        return overflow ? .max : end
    }

    /// `submit`, waiting (at most the timeout) while every slot is busy.
    func acquire(_ type: BlockRequestType, sector: UInt64,
                 buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError) -> BlockTicket {
        let end = deadline(after: now())
        while true {
            if let ticket = try submit(type, sector: sector, buffer: buffer) { return ticket }
            drain()
            // Slots are held by requests that have their own deadlines; past ours, those
            // have expired too.
            if now() >= end {
                fail("no request slot came free within the timeout")
                throw .deviceFailed
            }
            if polling { pause() } else { slotFreed.wait(deadline: end) }
        }
    }

    /// Waits until the request is done (drain, collect), failing the device at its deadline.
    func wait(for ticket: BlockTicket) throws(BlockDeviceError) {
        let slot = slots[ticket.slot]
        while true {
            drain()
            if try collect(ticket) { return }
            if now() >= slot.deadline {
                fail("a request got no answer within the timeout")
                throw .deviceFailed
            }
            if polling { pause() } else { slot.completion.wait(deadline: slot.deadline) }
        }
    }

    /// Fails the device (see `failLocked`).
    public func fail(_ reason: StaticString) {
        lock.lock()
        failLocked(reason)
        lock.unlock()
    }

    /// Marks the device failed (once: one log line), resets it so that it stops using every
    /// buffer it was given (§2.4), and wakes every waiter. Holding the lock.
    func failLocked(_ reason: StaticString) {
        guard !failed else { return }
        failed = true
        DriverLog.failure("virtio-blk", reason)
        transport.resetAfterFailure()
        for slot in slots { slot.completion.signal() }
        slotFreed.signal()
    }
}
