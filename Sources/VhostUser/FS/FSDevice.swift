// The virtio-fs device (virtio 1.2 §5.11) on the host: queue 0 is the high-priority queue
// (the guest sends only FORGET / BATCH_FORGET there; no reply), queue 1 the request queue.
// No feature bits; QEMU builds the config space (tag, num_request_queues) itself.
//
// Each chain is one FUSE request (§5.11.6): its device-readable part is the request
// (in header, body, WRITE data), its device-writable part the space for the reply. The
// readable bytes are gathered, FUSEServer answers, the reply is scattered over the
// writable segments and the chain returned with the reply's length (0 for no reply).
//
// The guest is hostile: VirtIO's DeviceQueue refuses a chain that loops, leaves guest memory
// or puts readable after writable descriptors; DeviceRing then logs it once and stops
// using the ring until reset. A request larger than the largest one accepted is logged
// and returned unanswered.
import VirtIO
import Wire

public final class FSDevice: VhostUserDevice {
    public static let hiprioQueue = 0
    public static let requestQueue = 1
    /// The largest request read: headers, names and a max_write WRITE.
    public static let maximumRequest = Int(FUSEServer.maximumWrite) + 4096
    /// The largest reply space used: an out header and a max_write READ (or listing).
    public static let maximumReply = Int(FUSEServer.maximumWrite) + FUSE.outHeaderSize

    public let server: FUSEServer
    var rings: [DeviceRing?] = [nil, nil]
    var requestBytes: [UInt8] = []
    var replyBytes: [UInt8] = []

    public init(server: FUSEServer) { self.server = server }

    // MARK: VhostUserDevice

    public var queueCount: Int { 2 }
    public var deviceFeatures: UInt64 { 0 }
    public func queueName(_ index: Int) -> String { index == FSDevice.hiprioQueue ? "hiprio" : "request \(index)" }

    /// QEMU's vhost-user-fs-device answers config reads itself (tag, queue count), so the
    /// CONFIG protocol feature is not offered.
    public var hasConfigSpace: Bool { false }

    public func readConfig(offset: UInt32, size: UInt32) -> [UInt8] { [UInt8](repeating: 0, count: Int(size)) }

    public func attach(_ ring: DeviceRing?, index: Int) {
        guard rings.indices.contains(index) else { return }
        rings[index] = ring
        process(index)
    }

    public func kicked(index: Int) { process(index) }

    // MARK: requests

    /// Serves every chain the guest has posted on queue `index`, then interrupts it.
    public func process(_ index: Int) {
        guard rings.indices.contains(index), let ring = rings[index] else { return }
        var served = 0
        while let chain = ring.pop() {
            ring.complete(chain.head, length: UInt32(serve(chain, ring.memory)))
            served += 1
            if served % 64 == 0 { ring.notifyIfNeeded() }
        }
        ring.notifyIfNeeded()
    }

    /// Answers one chain; the bytes written into its writable part.
    func serve(_ chain: DescriptorChain, _ memory: any GuestMemory) -> Int {
        guard chain.readableBytes <= UInt64(FSDevice.maximumRequest) else {
            BackendLog.limited("fuse-too-large", "FUSE request of \(chain.readableBytes) bytes (chain \(chain.head)) exceeds \(FSDevice.maximumRequest); dropped")
            return 0
        }
        let requestCount = Int(chain.readableBytes)
        let replyCount = Int(min(chain.writableBytes, UInt64(FSDevice.maximumReply)))
        if requestBytes.count < requestCount { requestBytes = [UInt8](repeating: 0, count: requestCount) }
        if replyBytes.count < replyCount { replyBytes = [UInt8](repeating: 0, count: replyCount) }
        let copied: Int? = requestBytes.withUnsafeMutableBytes { raw in
            do throws(VirtqueueError) {
                return try chain.readReadable(memory, into: UnsafeMutableRawBufferPointer(rebasing: raw[..<requestCount]))
            } catch { return nil }
        }
        guard copied == requestCount else {
            BackendLog.limited("fuse-unreadable", "FUSE request chain \(chain.head): unreadable buffer; dropped")
            return 0
        }
        let length: Int? = requestBytes.withUnsafeBytes { request in
            replyBytes.withUnsafeMutableBytes { reply in
                server.handle(UnsafeRawBufferPointer(rebasing: request[..<requestCount]),
                              reply: UnsafeMutableRawBufferPointer(rebasing: reply[..<replyCount]))
            }
        }
        guard let length, length > 0 else { return 0 }
        let written: Int? = replyBytes.withUnsafeBytes { raw in
            do throws(VirtqueueError) {
                return try chain.writeWritable(memory, from: UnsafeRawBufferPointer(rebasing: raw[..<length]))
            } catch { return nil }
        }
        guard let written, written == length else {
            BackendLog.limited("fuse-unwritable", "FUSE reply to chain \(chain.head) could not be written; returned empty")
            return 0
        }
        return written
    }
}
