// The back-end's half of a vhost-user conversation: feature negotiation, the memory table,
// and each ring's configuration, handed to a device once the ring runs.
//
// QEMU docs/interop/vhost-user.rst:
//   "Front-end message types" — what each request means and which ones reply
//     (GET_FEATURES, GET_PROTOCOL_FEATURES, GET_VRING_BASE, GET_CONFIG, GET_QUEUE_NUM);
//   "Ring states" — a ring is started by SET_VRING_KICK and stopped by GET_VRING_BASE;
//     with VHOST_USER_F_PROTOCOL_FEATURES negotiated it starts disabled until
//     SET_VRING_ENABLE 1, without it it starts enabled;
//   "REPLY_ACK" — with the protocol feature negotiated and NEED_REPLY set, a request
//     without a reply of its own is answered with a u64: 0 success, non-zero failure;
//   "Memory regions" — SET_VRING_ADDR's addresses are QEMU virtual addresses, translated
//     through the memory table's userspace_addr.
// QEMU 7.2's order (DESIGN.md): GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES,
// SET_OWNER, SET_VRING_CALL/ERR, GET_CONFIG; at DRIVER_OK SET_FEATURES, SET_MEM_TABLE, per
// ring SET_VRING_NUM/BASE/ADDR/KICK, SET_VRING_ENABLE; on reset SET_VRING_ENABLE 0 and
// GET_VRING_BASE.
import VirtIO
import Glibc

/// What a vhost-user device implements on top of the session.
public protocol VhostUserDevice: AnyObject {
    var queueCount: Int { get }
    /// Device feature bits offered besides VERSION_1 and PROTOCOL_FEATURES.
    var deviceFeatures: UInt64 { get }
    /// `size` bytes of the device config space from `offset` (GET_CONFIG).
    func readConfig(offset: UInt32, size: UInt32) -> [UInt8]
    /// The ring `index` started running (non-nil) or stopped (nil).
    func attach(_ ring: DeviceRing?, index: Int)
    /// The guest kicked ring `index` (its kick eventfd fired).
    func kicked(index: Int)
    /// Ring `index`'s name in log lines.
    func queueName(_ index: Int) -> String
    /// Whether the device has a config space for GET_CONFIG (vsock: the CID). QEMU's
    /// vhost-user-fs-device builds virtio-fs's config itself and warns when the back-end
    /// offers VHOST_USER_PROTOCOL_F_CONFIG.
    var hasConfigSpace: Bool { get }
}

extension VhostUserDevice {
    public var hasConfigSpace: Bool { true }

    /// vsock's names (virtio 1.2 §5.10.2), the default.
    public func queueName(_ index: Int) -> String {
        ["rx", "tx", "event"].indices.contains(index) ? ["rx", "tx", "event"][index] : "queue \(index)"
    }
}

public final class VhostUserSession {
    /// One ring's configuration as the front-end has given it so far.
    struct Vring {
        var size: UInt16 = 0
        var base: UInt16 = 0
        var address: VhostUserVringAddress?
        var kickFD: Int32 = -1
        var callFD: Int32 = -1
        var errFD: Int32 = -1
        var started = false
        var enabled = false
        var ring: DeviceRing?
    }

    public let device: any VhostUserDevice
    public private(set) var ackedFeatures: UInt64 = 0
    public private(set) var ackedProtocolFeatures: UInt64 = 0
    public private(set) var memory: MemoryTable?
    var vrings: [Vring]

    /// The protocol features offered: REPLY_ACK, and CONFIG when the device has a config space.
    public var protocolFeatures: UInt64 {
        VhostUserProtocolFeatures.replyAck | (device.hasConfigSpace ? VhostUserProtocolFeatures.config : 0)
    }

    public init(device: any VhostUserDevice) {
        self.device = device
        vrings = Array(repeating: Vring(), count: device.queueCount)
    }

    deinit {
        for vring in vrings { for fd in [vring.kickFD, vring.callFD, vring.errFD] where fd >= 0 { close(fd) } }
    }

    public var offeredFeatures: UInt64 {
        VhostUserFeatures.virtioVersion1 | VhostUserFeatures.protocolFeatures | device.deviceFeatures
    }

    /// The kick eventfds of started rings, to poll.
    public var kickFDs: [(fd: Int32, index: Int)] {
        vrings.indices.compactMap { vrings[$0].started && vrings[$0].kickFD >= 0 ? (vrings[$0].kickFD, $0) : nil }
    }

    /// Whether `fd` is still ring `index`'s kick eventfd.
    public func isKickFD(_ fd: Int32, of index: Int) -> Bool { index < vrings.count && vrings[index].kickFD == fd }

    /// Ring `index`'s kick eventfd fired: drain it (the count may be >1) and tell the device.
    public func serviceKick(index: Int) {
        guard index < vrings.count, vrings[index].kickFD >= 0 else { return }
        Posix.drain(eventFD: vrings[index].kickFD)
        guard let ring = vrings[index].ring else { return }
        ring.noteKick()
        device.kicked(index: index)
    }

    /// The event loop's periodic check (VhostUserServer, every `ringRecheckInterval`): a
    /// running ring with chains the guest published and no kick announced for a whole
    /// interval is served as if kicked, with a log line (DeviceRing.recheck). A lost kick
    /// then costs at most two intervals instead of the ring.
    public func recheckRings() {
        for index in vrings.indices {
            guard let ring = vrings[index].ring else { continue }
            let served = ring.queue.nextAvailIndex
            guard let published = ring.recheck() else { continue }
            BackendLog.limited("unannounced-\(index)", "\(ring.name) queue: the guest published chains up to avail.idx \(published) "
                               + "(served up to \(served)) and no kick came for them; serving them now")
            device.kicked(index: index)
        }
    }

    /// Handles one message; returns the reply's bytes, if the request has one. A throw is
    /// a protocol violation: log it and drop the connection.
    public func handle(_ message: VhostUserMessage) throws(VhostUserError) -> [UInt8]? {
        for fd in message.unusedFDs { close(fd) }
        let code = message.header.request
        var failed = false
        switch message.command {
        case .getFeatures:
            return VhostUserEncoder.reply(to: code, payload: VhostUserEncoder.u64(offeredFeatures))
        case .setFeatures(let features):
            if features & ~offeredFeatures != 0 {
                BackendLog.line("SET_FEATURES: front-end acked unoffered bits 0x\(String(features & ~offeredFeatures, radix: 16))")
            }
            ackedFeatures = features & offeredFeatures
        case .getProtocolFeatures:
            return VhostUserEncoder.reply(to: code, payload: VhostUserEncoder.u64(protocolFeatures))
        case .setProtocolFeatures(let features):
            ackedProtocolFeatures = features & protocolFeatures
        case .setOwner:
            break
        case .resetOwner:
            for index in vrings.indices { stop(index) }
        case .setMemTable(let regions, let fds):
            let table = try MemoryTable(regions: regions, fds: fds)
            memory = table
            BackendLog.debug("memory table: " + table.regions.map {
                "0x\(String($0.guestPhysicalAddress, radix: 16))+0x\(String($0.size, radix: 16))" }.joined(separator: ", "))
            for index in vrings.indices where vrings[index].started { restart(index) }
        case .setVringNum(let index, let num):
            let i = try ringIndex(index, code)
            guard num >= 1, num <= 32768, num & (num - 1) == 0 else { throw .badVringSize(num) }
            vrings[i].size = UInt16(num)
        case .setVringBase(let index, let num):
            let i = try ringIndex(index, code)
            vrings[i].base = UInt16(truncatingIfNeeded: num)
        case .setVringAddr(let address):
            let i = try ringIndex(address.index, code)
            vrings[i].address = address
            if vrings[i].started { restart(i) }
        case .getVringBase(let index):
            let i = try ringIndex(index, code)
            let next = vrings[i].ring?.queue.nextAvailIndex ?? vrings[i].base
            stop(i)
            vrings[i].base = next
            return VhostUserEncoder.reply(to: code, payload: VhostUserEncoder.vringState(index: index, num: UInt32(next)))
        case .setVringKick(let index, let fd):
            let i = try ringIndex(index, code, closing: fd)
            replace(&vrings[i].kickFD, with: fd)
            if let fd { Posix.setNonBlocking(fd) }
            start(i)
        case .setVringCall(let index, let fd):
            let i = try ringIndex(index, code, closing: fd)
            replace(&vrings[i].callFD, with: fd)
            vrings[i].ring?.callFD = fd ?? -1
        case .setVringErr(let index, let fd):
            let i = try ringIndex(index, code, closing: fd)
            replace(&vrings[i].errFD, with: fd)
        case .setVringEnable(let index, let enable):
            let i = try ringIndex(index, code)
            setEnabled(i, enable)
        case .getQueueNum:
            return VhostUserEncoder.reply(to: code, payload: VhostUserEncoder.u64(UInt64(vrings.count)))
        case .getConfig(let offset, let size, let flags):
            return VhostUserEncoder.reply(to: code, payload: VhostUserEncoder.config(
                offset: offset, flags: flags, data: device.readConfig(offset: offset, size: size)))
        case .setConfig:
            break // vsock's config space (guest_cid) is read-only (virtio 1.2 §5.10.4).
        case .unsupported(let request):
            BackendLog.line("ignoring unsupported \(VhostUserRequest.name(of: request))")
            failed = true
        }
        guard message.header.needsReply, ackedProtocolFeatures & VhostUserProtocolFeatures.replyAck != 0 else { return nil }
        return VhostUserEncoder.reply(to: code, payload: VhostUserEncoder.u64(failed ? 1 : 0))
    }

    var protocolFeaturesAcked: Bool { ackedFeatures & VhostUserFeatures.protocolFeatures != 0 }

    func ringIndex(_ index: UInt32, _ code: UInt32, closing fd: Int32? = nil) throws(VhostUserError) -> Int {
        guard Int(index) < vrings.count else {
            if let fd { close(fd) }
            throw .badVringIndex(request: code, index: index)
        }
        return Int(index)
    }

    func replace(_ slot: inout Int32, with fd: Int32?) {
        if slot >= 0 { close(slot) }
        slot = fd ?? -1
    }

    /// SET_VRING_KICK: the ring runs; enabled at once unless PROTOCOL_FEATURES was acked.
    func start(_ index: Int) {
        vrings[index].started = true
        if !protocolFeaturesAcked { vrings[index].enabled = true }
        restart(index)
    }

    /// (Re)builds the running ring from the current configuration and memory table.
    func restart(_ index: Int) {
        let resume = vrings[index].ring.map { ($0.queue.nextAvailIndex, $0.queue.nextUsedIndex) }
        detach(index)
        guard vrings[index].started, vrings[index].enabled else { return }
        let name = device.queueName(index)
        guard let memory, let address = vrings[index].address, vrings[index].size > 0 else {
            BackendLog.line("\(name) queue kicked before its memory, size or addresses were set; not started")
            return
        }
        let size = vrings[index].size
        guard let descriptors = memory.guestPhysical(forUserAddress: address.descriptorTable,
                                                     length: VirtqueueLayout.descriptorTableBytes(size: size)),
              let avail = memory.guestPhysical(forUserAddress: address.availRing,
                                               length: VirtqueueLayout.availRingBytes(size: size) - 2),
              let used = memory.guestPhysical(forUserAddress: address.usedRing,
                                              length: VirtqueueLayout.usedRingBytes(size: size) - 2) else {
            BackendLog.line("\(name) queue: ring addresses are outside the memory table; not started")
            return
        }
        let base = resume?.0 ?? vrings[index].base
        let usedIndex = resume?.1 ?? memory.load(UInt16.self, at: used + VirtqueueFormat.ringIndex) ?? base
        do {
            let queue = try DeviceQueue(size: size, descriptorTable: descriptors, availRing: avail, usedRing: used,
                                        nextAvailIndex: base, nextUsedIndex: usedIndex)
            let ring = DeviceRing(name: name, queue: queue, memory: memory, callFD: vrings[index].callFD)
            vrings[index].ring = ring
            device.attach(ring, index: index)
        } catch {
            BackendLog.line("\(name) queue: \(error); not started")
        }
    }

    func detach(_ index: Int) {
        if vrings[index].ring != nil {
            vrings[index].ring = nil
            device.attach(nil, index: index)
        }
    }

    func setEnabled(_ index: Int, _ enable: Bool) {
        guard vrings[index].enabled != enable || (enable && vrings[index].ring == nil) else { return }
        vrings[index].enabled = enable
        if enable { restart(index) } else {
            if let ring = vrings[index].ring { vrings[index].base = ring.queue.nextAvailIndex }
            detach(index)
        }
    }

    /// GET_VRING_BASE / RESET_OWNER: the ring stops.
    func stop(_ index: Int) {
        detach(index)
        vrings[index].started = false
        if protocolFeaturesAcked { vrings[index].enabled = false }
    }
}
