// libFuzzer target: the driver side's used-ring processing (`SplitVirtqueue.popUsed`)
// against a device that writes anything at all into the used ring (virtio 1.2 §2.7.8).
//
// The input is a script. Byte 0 picks the queue size (1, 2, 4, 8 or 16). Then records,
// each an opcode byte (low 3 bits) and its arguments:
//   0  post a chain: 1 shape byte (readable count, writable count) + a length byte per segment
//   1  publish
//   2  an honest device completes one chain (1 byte: the length it reports, clamped)
//   3  overwrite used-ring bytes: offset byte, count byte, then that many bytes
//   4  set used.idx: 2 bytes
//   5+ pop used elements until nil or an error
// A model kept here (which heads are out, published, their writable bytes, their
// descriptors) is the oracle. A violated invariant traps, which libFuzzer reports:
//   * popUsed returns only heads this driver posted, published and has not had back,
//     with a length within the chain's writable bytes;
//   * after an error the queue is failed and every later call throws `deviceFailed`;
//   * free descriptors + descriptors of chains out == queue size (nothing lost or freed
//     twice), and a new chain never reuses a descriptor of a chain that is out.
// Imports the real modules: VirtIO (the driver's queue) and TestSupport (FakeGuestMemory).
import FuzzSupport
@testable import VirtIO
import TestSupport
@testable import Wire

private struct Script {
    let bytes: UnsafeBufferPointer<UInt8>
    var offset = 0
    var isEmpty: Bool { offset >= bytes.count }
    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }
}

/// What the driver has out, as the oracle sees it.
private struct Chain {
    var writable: UInt64
    var published: Bool
    var descriptors: [UInt16]
}

private let base: UInt64 = 0x10000
private let bufferArea: UInt64 = base + 0x2000

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var script = Script(bytes: UnsafeBufferPointer(start: data, count: size))
    let queueSize = UInt16(1) << (script.byte() % 5)
    let memory = FakeGuestMemory(size: 0x4000, base: base)
    guard let layout = VirtqueueLayout(size: queueSize, base: base) else { fatalError("layout") }
    var driver: SplitVirtqueue
    var device: DeviceQueue
    do throws(VirtqueueError) {
        driver = try SplitVirtqueue(layout: layout)
        try driver.setUp(memory)
        device = try DeviceQueue(layout: layout)
    } catch {
        fatalError("queue set-up failed: \(error)")
    }

    var out: [UInt16: Chain] = [:]
    var failed = false
    var ops = 0

    func checkAccounting() {
        let held = out.values.reduce(0) { $0 + $1.descriptors.count }
        precondition(driver.freeDescriptors + held == Int(queueSize), "descriptors lost or freed twice")
        precondition(driver.isFailed == failed, "failure state differs from the model")
    }

    while !script.isEmpty && ops < 512 {
        ops += 1
        let op = script.byte() & 7
        switch op {
        case 0:
            let shape = script.byte()
            let readable = Int(shape & 3)
            let writable = Int((shape >> 2) & 3)
            var chain: [(address: UInt64, length: UInt32, deviceWritable: Bool)] = []
            var writableBytes: UInt64 = 0
            for i in 0 ..< readable + writable {
                let length = UInt32(script.byte())
                let isWritable = i >= readable
                if isWritable { writableBytes += UInt64(length) }
                chain.append((address: bufferArea + UInt64(i) * 256, length: length, deviceWritable: isWritable))
            }
            let free = driver.freeDescriptors
            do throws(VirtqueueError) {
                let head = try driver.addBuffer(memory, chain: chain)
                precondition(!failed, "a failed queue accepted a buffer")
                precondition(out[head] == nil, "head handed out twice")
                // Walk what the driver wrote (the device has not touched the table).
                var descriptors: [UInt16] = [head]
                var d = head
                while descriptors.count < chain.count {
                    let at = VirtqueueFormat.descriptor(d, in: layout.descriptorTable)
                    let flags = memory.load(UInt16.self, at: at + VirtqueueFormat.descriptorFlags)!
                    precondition(flags & VirtqueueFormat.flagNext != 0, "chain cut short")
                    d = memory.load(UInt16.self, at: at + VirtqueueFormat.descriptorNext)!
                    precondition(d < queueSize, "next out of range")
                    descriptors.append(d)
                }
                let inUse = Set(out.values.flatMap(\.descriptors))
                precondition(Set(descriptors).count == descriptors.count, "a chain reuses its own descriptor")
                precondition(inUse.isDisjoint(with: descriptors), "a chain reuses a descriptor that is out")
                out[head] = Chain(writable: writableBytes, published: false, descriptors: descriptors)
            } catch {
                switch error {
                case .deviceFailed: precondition(failed, "deviceFailed on a healthy queue")
                case .emptyChain: precondition(chain.isEmpty, "emptyChain")
                case .notEnoughDescriptors: precondition(chain.count > free, "notEnoughDescriptors with room")
                default: preconditionFailure("addBuffer: unexpected \(error)")
                }
            }
        case 1:
            do throws(VirtqueueError) {
                try driver.publish(memory)
                precondition(!failed, "a failed queue published")
                for head in out.keys { out[head]!.published = true }
            } catch {
                precondition(failed && error == .deviceFailed, "publish: unexpected \(error)")
            }
        case 2:
            let length = UInt32(script.byte())
            // The honest device may itself see a corrupted ring state; its errors are its own.
            if let chain = try? device.popAvailable(memory) {
                try? device.addUsed(memory, head: chain.head, length: min(length, UInt32(chain.writableBytes)))
            }
        case 3:
            let offset = UInt64(script.byte())
            let count = Int(script.byte() % 32)
            for i in 0 ..< count {
                let at = layout.usedRing + (offset + UInt64(i)) % VirtqueueLayout.usedRingBytes(size: queueSize)
                memory.poke(script.byte(), at: at)
            }
        case 4:
            let index = UInt16(script.byte()) | UInt16(script.byte()) << 8
            memory.poke(index, at: layout.usedRing + VirtqueueFormat.ringIndex)
        default:
            var pops = 0
            popping: while pops <= Int(queueSize) {
                pops += 1
                do throws(VirtqueueError) {
                    guard let used = try driver.popUsed(memory) else { break popping }
                    precondition(!failed, "a failed queue returned a buffer")
                    guard let chain = out[used.id] else { preconditionFailure("returned id \(used.id) was never posted") }
                    precondition(chain.published, "returned id \(used.id) was never published")
                    precondition(UInt64(used.length) <= chain.writable, "length beyond the writable bytes")
                    out[used.id] = nil
                } catch {
                    if failed {
                        precondition(error == .deviceFailed, "failed queue threw \(error)")
                    } else {
                        switch error {
                        case .usedIndexJumped, .usedIdOutOfRange, .usedIdNotInFlight, .usedLengthTooLarge:
                            precondition(driver.failure == error, "failure not recorded")
                            failed = true
                        default:
                            preconditionFailure("popUsed: unexpected \(error)")
                        }
                    }
                    break popping
                }
            }
        }
        checkAccounting()
    }

    if failed {
        do throws(VirtqueueError) {
            _ = try driver.popUsed(memory)
            preconditionFailure("a failed queue popped")
        } catch {
            precondition(error == .deviceFailed, "failed queue threw \(error)")
        }
    }
    return 0
}

fuzzMain(fuzz)
