// The VsockDevice fuzz target's guest: Core's driver-side queues over the shared fake guest
// (LoopbackQueue), wired to the device through DeviceRings as the vhost-user session wires
// real ones. It posts rx buffers from a fixed set of slots, sends tx chains (split over up
// to three descriptors), and reads back what the device put in rx buffers, checking each
// packet (main.swift's invariants). A ring the fuzzer broke makes every call a no-op.
import FuzzSupport
import Glibc
@testable import VhostUser
@testable import VirtIO
import TestSupport
@testable import Wire

final class FuzzGuest {
    static let slots = 16
    static let slotSize: UInt64 = 4096
    var rx: LoopbackQueue
    var tx: LoopbackQueue
    let rxRing: DeviceRing
    let txRing: DeviceRing
    let device: VsockDevice
    /// Posted rx buffers by head: slot and size.
    var posted: [UInt16: (slot: Int, size: UInt32)] = [:]
    var freeSlots = Array(0..<FuzzGuest.slots)
    /// Host ports of REQUESTs the device sent (host-initiated connections the guest may answer).
    var hostPorts: [UInt32] = []

    init(device: VsockDevice) throws(VirtqueueError) {
        rx = try LoopbackQueue(size: 16, memorySize: 128 * 1024)
        tx = try LoopbackQueue(size: 16, memorySize: 64 * 1024)
        rxRing = DeviceRing(name: "rx", queue: rx.device, memory: rx.memory)
        txRing = DeviceRing(name: "tx", queue: tx.device, memory: tx.memory)
        self.device = device
        device.attach(rxRing, index: VsockDevice.rxQueue)
        device.attach(txRing, index: VsockDevice.txQueue)
    }

    /// Posts up to `count` rx buffers of `size` bytes (fewer when slots run out), kicks,
    /// and checks what comes back.
    func postRX(_ count: Int, size: UInt32) {
        var added = 0
        while added < count, let slot = freeSlots.popLast() {
            let address = rx.bufferArea + UInt64(slot) * FuzzGuest.slotSize
            guard let head = try? rx.driver.addBuffer(rx.memory, address: address, length: size, deviceWritable: true) else {
                freeSlots.append(slot)
                break
            }
            posted[head] = (slot, size)
            added += 1
        }
        guard (try? rx.driver.publish(rx.memory)) != nil else { return }
        device.kicked(index: VsockDevice.rxQueue)
        receive()
    }

    /// Takes back every used rx buffer and checks the packet in it.
    func receive() {
        while true {
            let used: (UInt16, UInt32)?
            do throws(VirtqueueError) { used = try rx.driver.popUsed(rx.memory) } catch { return }
            guard let (head, length) = used else { return }
            guard let buffer = posted.removeValue(forKey: head) else { preconditionFailure("a used head that was not posted") }
            freeSlots.append(buffer.slot)
            precondition(length <= buffer.size, "used length beyond the buffer")
            if length == 0 { continue }
            precondition(Int(length) >= VsockHeader.size, "an rx packet shorter than its header")
            let bytes = rx.memory.bytes(at: rx.bufferArea + UInt64(buffer.slot) * FuzzGuest.slotSize, count: Int(length))
            guard let header = bytes.withUnsafeBytes({ try? VsockHeader.decode($0) }) else {
                preconditionFailure("the device sent a packet the guest cannot decode")
            }
            precondition(Int(length) == VsockHeader.size + Int(header.length), "used length is not header + payload")
            precondition(header.source.cid == VsockAddress.hostCID, "an rx packet not from the host")
            precondition(header.destination.cid == device.guestCID, "an rx packet for another guest")
            precondition(header.op == .rw || header.length == 0, "payload on a control packet")
            if header.op == .request && !hostPorts.contains(header.source.port) {
                if hostPorts.count >= 16 { hostPorts.removeFirst() }
                hostPorts.append(header.source.port)
            }
        }
    }

    /// Sends `bytes` as one tx chain of up to three segments (`split` picks the cuts).
    func send(_ bytes: [UInt8], split: UInt8) {
        let base = tx.bufferArea
        let room = Int(64 * 1024 - (base - tx.memory.base)) - 64
        let data = Array(bytes.prefix(room))
        tx.memory.corrupt(at: base, with: data.isEmpty ? [0] : data)
        let total = max(data.count, 1)
        var cuts = [0, min(total, Int(split & 0x3F)), min(total, Int(split >> 6) * 16 + Int(split & 0x3F))].sorted()
        cuts.append(total)
        var chain: [(address: UInt64, length: UInt32, deviceWritable: Bool)] = []
        for i in 0..<3 where cuts[i + 1] > cuts[i] {
            chain.append((base + UInt64(cuts[i]), UInt32(cuts[i + 1] - cuts[i]), false))
        }
        guard (try? tx.driver.addBuffer(tx.memory, chain: chain)) != nil,
              (try? tx.driver.publish(tx.memory)) != nil else { return }
        device.kicked(index: VsockDevice.txQueue)
        while (try? tx.driver.popUsed(tx.memory)) != nil {}
        receive()
    }
}
