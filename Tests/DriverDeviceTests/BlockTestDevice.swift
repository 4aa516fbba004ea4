// A virtio-blk device for in-process tests (virtio 1.2 §5.2), backed by a byte array: the
// device side of the request queue over VirtIO's DeviceQueue (through VhostUser's
// DeviceRing), plugged into DeviceTransport like the real host back-ends.
//
// What it does with a chain: the first 16 readable bytes are the header; IN copies disk
// bytes into the writable part and puts the status byte after them; OUT copies the readable
// bytes after the header onto the disk; FLUSH counts (UNSUPP when the feature is not
// offered); GET_ID writes the serial (UNSUPP without one); a request beyond the disk or
// with a malformed chain gets IOERR, an unknown type UNSUPP. The used length is the bytes
// written (data + status).
//
// Knobs for a slow or hostile device: `holds` keeps every chain until the test calls
// `complete(order:)` (several in flight, answered out of order, or never); `statusOverride`
// answers with any status byte; `failSectors` answers IOERR for requests touching them.
// DeviceTransport's `afterService` / `rewriteLastUsed` forge the used id or length.
//
// Rules for callers: one test thread; the device runs only when DeviceTransport serves a kick.
import VhostUser
import VirtIO

final class BlockTestDevice: VhostUserDevice {
    /// One request as the device saw it.
    struct Request: Equatable {
        var type: UInt32
        var sector: UInt64
        /// Data bytes (IN: writable ones before the status; OUT: readable ones after the header).
        var bytes: Int
    }

    var disk: [UInt8]
    let offered: UInt64
    var serial: [UInt8]? = nil
    var sizeMax: UInt32 = 0
    var blockSize: UInt32 = 4096
    var holds = false
    var statusOverride: UInt8? = nil
    var failSectors: Set<UInt64> = []
    private(set) var ring: DeviceRing?
    private(set) var requests: [Request] = []
    private(set) var held: [DescriptorChain] = []

    init(sectors: Int, features: UInt64) {
        disk = (0 ..< sectors * 512).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        offered = features
    }

    var queueCount: Int { 1 }
    var deviceFeatures: UInt64 { offered }
    func queueName(_ index: Int) -> String { "requestq" }

    /// §5.2.4: le64 capacity, le32 size_max, le32 seg_max, geometry (4), le32 blk_size, ...
    func readConfig(offset: UInt32, size: UInt32) -> [UInt8] {
        var space: [UInt8] = []
        func le(_ value: UInt64, _ bytes: Int) { for i in 0 ..< bytes { space.append(UInt8(truncatingIfNeeded: value >> (8 * i))) } }
        le(UInt64(disk.count / 512), 8)
        le(UInt64(sizeMax), 4)
        le(1, 4)
        le(0, 4)
        le(UInt64(blockSize), 4)
        space += [UInt8](repeating: 0, count: 40)
        let start = min(Int(offset), space.count)
        return Array(space[start ..< min(space.count, start + Int(size))])
    }

    func attach(_ ring: DeviceRing?, index: Int) {
        self.ring = ring
        // A reset: the device forgets every chain it held (§2.4).
        if ring == nil { held = [] }
    }

    func kicked(index: Int) {
        guard let ring else { return }
        while let chain = ring.pop() {
            if holds {
                requests.append(record(chain, ring.memory).0)
                held.append(chain)
            } else {
                answer(chain, ring)
            }
        }
        ring.notifyIfNeeded()
    }

    /// Answers the held chains in `order` (indices into `held` as it is now) and interrupts.
    func complete(order: [Int]) {
        guard let ring else { return }
        let chains = held
        held = []
        for i in order { answer(chains[i], ring, recorded: true) }
        for i in chains.indices where !order.contains(i) { held.append(chains[i]) }
        ring.notifyIfNeeded()
    }

    @discardableResult
    private func record(_ chain: DescriptorChain, _ memory: any GuestMemory) -> (Request, Bool) {
        var header = [UInt8](repeating: 0, count: 16)
        let got = header.withUnsafeMutableBytes { (try? chain.readReadable(memory, into: $0)) ?? 0 }
        func field(_ at: Int, _ bytes: Int) -> UInt64 {
            (0 ..< bytes).reduce(0) { $0 | UInt64(header[at + $1]) << (8 * $1) }
        }
        let type = UInt32(field(0, 4))
        let bytes = type == 1 ? Int(chain.readableBytes) - 16 : max(0, Int(chain.writableBytes) - 1)
        let request = Request(type: type, sector: field(8, 8), bytes: bytes)
        return (request, got == 16 && chain.writableBytes >= 1)
    }

    private func answer(_ chain: DescriptorChain, _ ring: DeviceRing, recorded: Bool = false) {
        let memory = ring.memory
        let (request, wellFormed) = record(chain, memory)
        if !recorded { requests.append(request) }
        let dataBytes = Int(chain.writableBytes) - 1
        var status: UInt8 = 0
        var written = 0
        let start = Int(request.sector) * 512
        let touched = (request.sector ..< request.sector + UInt64(max(1, request.bytes / 512)))
        if !wellFormed {
            status = 1
        } else if request.type == 0 || request.type == 1 {
            if start + request.bytes > disk.count || request.bytes % 512 != 0 || touched.contains(where: failSectors.contains) {
                status = 1
            } else if request.type == 0 {
                written = disk.withUnsafeBytes { raw in
                    (try? chain.writeWritable(memory, from: UnsafeRawBufferPointer(rebasing: raw[start ..< start + request.bytes]))) ?? 0
                }
            } else if offered & (1 << 5) != 0 {
                status = 1
            } else {
                var data = [UInt8](repeating: 0, count: request.bytes)
                _ = data.withUnsafeMutableBytes { try? chain.readReadable(memory, at: 16, into: $0) }
                disk.replaceSubrange(start ..< start + request.bytes, with: data)
            }
        } else if request.type == 4 {
            status = offered & (1 << 9) != 0 ? 0 : 2
        } else if request.type == 8, let serial, dataBytes >= 20 {
            let padded = Array((serial + [UInt8](repeating: 0, count: 20)).prefix(20))
            written = padded.withUnsafeBytes { (try? chain.writeWritable(memory, from: $0)) ?? 0 }
        } else {
            status = 2
        }
        status = statusOverride ?? status
        if chain.writableBytes >= 1 {
            _ = withUnsafeBytes(of: status) { try? chain.writeWritable(memory, at: UInt64(dataBytes), from: $0) }
        }
        ring.complete(chain.head, length: UInt32(written + (chain.writableBytes >= 1 ? 1 : 0)))
    }
}
