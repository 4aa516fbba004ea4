// A virtio-net device for in-process tests (virtio 1.2 §5.1): the device side of the
// receive and transmit queues over VirtIO's DeviceQueue (through VhostUser's DeviceRing),
// plugged into DeviceTransport like the real host back-ends.
//
// Receive: `deliver(_:)` takes the next buffer the driver posted, writes a 12-byte header
// (num_buffers 1) and the frame, and uses it with length 12 + frame; false when the driver
// has no buffer posted (the frame is lost, as on a real NIC). `usedLength` forges the
// used length (a too-short or too-long completion).
// Transmit: every chain the driver posts is read (header + frame, recorded in `sent`) and
// used with length 0, or kept in `heldTransmits` while `holdTransmits` is set until the
// test calls `completeTransmits()`.
// Each `deliver` and each transmit completion raises the used-buffer interrupt, which the
// test delivers by calling the driver's `handleInterrupt`. DeviceTransport's
// `rewriteLastUsed` forges a used id.
//
// Rules for callers: one test thread; the device runs only when DeviceTransport serves a
// kick or the test calls it.
import VhostUser
import VirtIO

final class NetTestDevice: VhostUserDevice {
    let offered: UInt64
    var mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
    var linkStatus: UInt16 = 1
    var holdTransmits = false
    private(set) var rings: [Int: DeviceRing] = [:]
    /// What the driver transmitted: each chain's readable bytes (header + frame).
    private(set) var sent: [[UInt8]] = []
    private(set) var heldTransmits: [DescriptorChain] = []

    init(features: UInt64) { offered = features }

    var queueCount: Int { 2 }
    var deviceFeatures: UInt64 { offered }
    func queueName(_ index: Int) -> String { index == 0 ? "receiveq" : "transmitq" }

    /// §5.1.4: u8 mac[6], le16 status, le16 max_virtqueue_pairs, le16 mtu.
    func readConfig(offset: UInt32, size: UInt32) -> [UInt8] {
        let space = mac + [UInt8(truncatingIfNeeded: linkStatus), UInt8(linkStatus >> 8), 1, 0, 0xDC, 0x05]
        let start = min(Int(offset), space.count)
        return Array(space[start ..< min(space.count, start + Int(size))])
    }

    func attach(_ ring: DeviceRing?, index: Int) {
        rings[index] = ring
        if ring == nil && index == 1 { heldTransmits = [] }
    }

    func kicked(index: Int) {
        guard index == 1, let ring = rings[1] else { return }
        while let chain = ring.pop() {
            sent.append((try? chain.readableContents(ring.memory)) ?? [])
            if holdTransmits {
                heldTransmits.append(chain)
            } else {
                ring.complete(chain.head, length: 0)
            }
        }
        ring.notifyIfNeeded()
    }

    /// Uses every held transmit chain and interrupts.
    func completeTransmits() {
        guard let ring = rings[1] else { return }
        for chain in heldTransmits { ring.complete(chain.head, length: 0) }
        heldTransmits = []
        ring.notifyIfNeeded()
    }

    /// Delivers one frame into the next posted receive buffer (see the header).
    @discardableResult
    func deliver(_ frame: [UInt8], usedLength: UInt32? = nil) -> Bool {
        guard let ring = rings[0], let chain = ring.pop() else { return false }
        var header = [UInt8](repeating: 0, count: 12)
        header[10] = 1
        let bytes = header + frame
        let written = bytes.withUnsafeBytes { (try? chain.writeWritable(ring.memory, from: $0)) ?? 0 }
        ring.complete(chain.head, length: usedLength ?? UInt32(written))
        ring.notifyIfNeeded()
        return written == bytes.count
    }
}
