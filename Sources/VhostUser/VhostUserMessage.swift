// A pure decoder and encoder for vhost-user messages: bytes and received file descriptors
// in, a typed command (or a typed error) out; replies as bytes.
//
// QEMU docs/interop/vhost-user.rst: "Message Specification" (12-byte header, then `size`
// bytes of payload; file descriptors travel as SCM_RIGHTS ancillary data), "Message types"
// payload layouts (u64; vring state {index u32, num u32}; vring address {index, flags,
// descriptor, used, available, log}; memory regions {nregions u32, padding u32, then per
// region guest_phys, size, userspace_addr, mmap_offset, all u64}; device config space
// {offset, size, flags, payload}), and "Front-end message types" for which requests carry
// file descriptors (SET_MEM_TABLE: one per region; SET_VRING_KICK/CALL/ERR: one unless
// bit 8 of the payload says none).
//
// Nothing here trusts the peer: every length, count and index is checked, and a failure
// is a `VhostUserError` for the caller to log before dropping the connection.
import Wire

/// The 12-byte message header.
public struct VhostUserHeader: Equatable, Sendable {
    public var request: UInt32
    public var flags: UInt32
    public var size: UInt32

    public init(request: UInt32, flags: UInt32 = VhostUserFlags.version, size: UInt32) {
        self.request = request
        self.flags = flags
        self.size = size
    }

    /// Decodes and validates a header: version 1, payload no larger than the maximum.
    public static func decode(_ bytes: [UInt8]) throws(VhostUserError) -> VhostUserHeader {
        guard bytes.count >= VhostUserLimits.headerSize else { throw .truncatedHeader(got: bytes.count) }
        let header = VhostUserHeader(request: bytes.loadLE(UInt32.self, at: 0),
                                     flags: bytes.loadLE(UInt32.self, at: 4),
                                     size: bytes.loadLE(UInt32.self, at: 8))
        guard header.flags & VhostUserFlags.versionMask == VhostUserFlags.version else {
            throw .badVersion(flags: header.flags)
        }
        guard header.size <= UInt32(VhostUserLimits.maximumPayload) else {
            throw .payloadTooLarge(request: header.request, size: header.size)
        }
        return header
    }

    public func encode() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(VhostUserLimits.headerSize)
        bytes.appendLE(request)
        bytes.appendLE(flags)
        bytes.appendLE(size)
        return bytes
    }

    public var needsReply: Bool { flags & VhostUserFlags.needReply != 0 }
}

/// One SET_MEM_TABLE region (vhost-user.rst "Memory region description").
public struct VhostUserMemoryRegion: Equatable, Sendable {
    public var guestPhysicalAddress: UInt64
    public var size: UInt64
    /// Where the region lives in QEMU's address space (SET_VRING_ADDR speaks in these).
    public var userAddress: UInt64
    /// Offset of the region in the file descriptor that comes with it.
    public var mmapOffset: UInt64

    public init(guestPhysicalAddress: UInt64, size: UInt64, userAddress: UInt64, mmapOffset: UInt64) {
        self.guestPhysicalAddress = guestPhysicalAddress
        self.size = size
        self.userAddress = userAddress
        self.mmapOffset = mmapOffset
    }
}

/// SET_VRING_ADDR's payload (vhost-user.rst "Vring address description").
public struct VhostUserVringAddress: Equatable, Sendable {
    public var index: UInt32
    public var flags: UInt32
    public var descriptorTable: UInt64
    public var usedRing: UInt64
    public var availRing: UInt64
    public var log: UInt64

    public init(index: UInt32, flags: UInt32 = 0, descriptorTable: UInt64, usedRing: UInt64,
                availRing: UInt64, log: UInt64 = 0) {
        self.index = index
        self.flags = flags
        self.descriptorTable = descriptorTable
        self.usedRing = usedRing
        self.availRing = availRing
        self.log = log
    }
}

/// A decoded request. File descriptors named here belong to the receiver from now on.
public enum VhostUserCommand: Equatable, Sendable {
    case getFeatures
    case setFeatures(UInt64)
    case setOwner
    case resetOwner
    case setMemTable([VhostUserMemoryRegion], fds: [Int32])
    case setVringNum(index: UInt32, num: UInt32)
    case setVringAddr(VhostUserVringAddress)
    case setVringBase(index: UInt32, num: UInt32)
    case getVringBase(index: UInt32)
    /// KICK, CALL and ERR: the ring and its eventfd (nil: the front-end says "no fd").
    case setVringKick(index: UInt32, fd: Int32?)
    case setVringCall(index: UInt32, fd: Int32?)
    case setVringErr(index: UInt32, fd: Int32?)
    case getProtocolFeatures
    case setProtocolFeatures(UInt64)
    case getQueueNum
    case setVringEnable(index: UInt32, enable: Bool)
    case getConfig(offset: UInt32, size: UInt32, flags: UInt32)
    case setConfig(offset: UInt32, flags: UInt32, data: [UInt8])
    /// A request this back-end does not implement (known to the spec or not).
    case unsupported(request: UInt32)
}

/// A decoded message: its header, its command, and the file descriptors it did not use
/// (the receiver closes those).
public struct VhostUserMessage: Equatable, Sendable {
    public var header: VhostUserHeader
    public var command: VhostUserCommand
    public var unusedFDs: [Int32]

    /// Decodes `payload` (exactly `header.size` bytes) with the descriptors that came with
    /// the header. On a throw the caller still owns, and must close, all of `fds`.
    public static func decode(header: VhostUserHeader, payload: [UInt8],
                              fds: [Int32] = []) throws(VhostUserError) -> VhostUserMessage {
        let code = header.request
        guard payload.count == Int(header.size) else {
            throw .truncatedPayload(request: code, needed: Int(header.size), got: payload.count)
        }
        func need(_ bytes: Int) throws(VhostUserError) {
            guard payload.count >= bytes else { throw .truncatedPayload(request: code, needed: bytes, got: payload.count) }
        }
        func u64() throws(VhostUserError) -> UInt64 { try need(8); return payload.loadLE(UInt64.self, at: 0) }
        func state() throws(VhostUserError) -> (UInt32, UInt32) {
            try need(8)
            return (payload.loadLE(UInt32.self, at: 0), payload.loadLE(UInt32.self, at: 4))
        }
        func file() throws(VhostUserError) -> (UInt32, Int32?, [Int32]) {
            let value = try u64()
            let index = UInt32(value & VhostUserLimits.vringIndexMask)
            if value & VhostUserLimits.vringNoFDFlag != 0 { return (index, nil, fds) }
            guard let fd = fds.first else { throw .missingFileDescriptors(request: code, needed: 1, got: 0) }
            return (index, fd, Array(fds.dropFirst()))
        }

        var unused = fds
        let command: VhostUserCommand
        switch VhostUserRequest(rawValue: code) {
        case .getFeatures: command = .getFeatures
        case .setFeatures: command = .setFeatures(try u64())
        case .setOwner: command = .setOwner
        case .resetOwner: command = .resetOwner
        case .setMemTable:
            let (regions, used) = try decodeMemTable(payload, fds: fds)
            command = .setMemTable(regions, fds: used)
            unused = Array(fds.dropFirst(used.count))
        case .setVringNum: let (i, n) = try state(); command = .setVringNum(index: i, num: n)
        case .setVringBase: let (i, n) = try state(); command = .setVringBase(index: i, num: n)
        case .getVringBase: let (i, _) = try state(); command = .getVringBase(index: i)
        case .setVringEnable: let (i, n) = try state(); command = .setVringEnable(index: i, enable: n != 0)
        case .setVringAddr:
            try need(40)
            command = .setVringAddr(VhostUserVringAddress(
                index: payload.loadLE(UInt32.self, at: 0), flags: payload.loadLE(UInt32.self, at: 4),
                descriptorTable: payload.loadLE(UInt64.self, at: 8), usedRing: payload.loadLE(UInt64.self, at: 16),
                availRing: payload.loadLE(UInt64.self, at: 24), log: payload.loadLE(UInt64.self, at: 32)))
        case .setVringKick: let (i, fd, rest) = try file(); command = .setVringKick(index: i, fd: fd); unused = rest
        case .setVringCall: let (i, fd, rest) = try file(); command = .setVringCall(index: i, fd: fd); unused = rest
        case .setVringErr: let (i, fd, rest) = try file(); command = .setVringErr(index: i, fd: fd); unused = rest
        case .getProtocolFeatures: command = .getProtocolFeatures
        case .setProtocolFeatures: command = .setProtocolFeatures(try u64())
        case .getQueueNum: command = .getQueueNum
        case .getConfig, .setConfig:
            try need(12)
            let offset = payload.loadLE(UInt32.self, at: 0)
            let size = payload.loadLE(UInt32.self, at: 4)
            let flags = payload.loadLE(UInt32.self, at: 8)
            guard size <= UInt32(VhostUserLimits.maximumConfigSize) else { throw .configTooLarge(size: size) }
            try need(12 + Int(size))
            if code == VhostUserRequest.getConfig.rawValue {
                command = .getConfig(offset: offset, size: size, flags: flags)
            } else {
                command = .setConfig(offset: offset, flags: flags, data: Array(payload[12..<(12 + Int(size))]))
            }
        default: command = .unsupported(request: code)
        }
        return VhostUserMessage(header: header, command: command, unusedFDs: unused)
    }

    /// SET_MEM_TABLE: at most 8 regions, a payload long enough for them, one fd each.
    static func decodeMemTable(_ payload: [UInt8], fds: [Int32])
        throws(VhostUserError) -> ([VhostUserMemoryRegion], [Int32]) {
        let code = VhostUserRequest.setMemTable.rawValue
        guard payload.count >= 8 else { throw .truncatedPayload(request: code, needed: 8, got: payload.count) }
        let count = payload.loadLE(UInt32.self, at: 0)
        guard count <= UInt32(VhostUserLimits.maximumRegions) else { throw .tooManyRegions(count) }
        let needed = 8 + Int(count) * 32
        guard payload.count >= needed else { throw .truncatedPayload(request: code, needed: needed, got: payload.count) }
        guard fds.count >= Int(count) else {
            throw .missingFileDescriptors(request: code, needed: Int(count), got: fds.count)
        }
        var regions: [VhostUserMemoryRegion] = []
        for index in 0..<Int(count) {
            let base = 8 + index * 32
            regions.append(VhostUserMemoryRegion(
                guestPhysicalAddress: payload.loadLE(UInt64.self, at: base), size: payload.loadLE(UInt64.self, at: base + 8),
                userAddress: payload.loadLE(UInt64.self, at: base + 16), mmapOffset: payload.loadLE(UInt64.self, at: base + 24)))
        }
        return (regions, Array(fds.prefix(Int(count))))
    }
}

/// Encoders: replies from the back-end, and requests (the tests' simulated front-end).
public enum VhostUserEncoder {
    /// A whole message: header (with `size` filled in) and payload.
    public static func message(request: UInt32, flags: UInt32, payload: [UInt8]) -> [UInt8] {
        VhostUserHeader(request: request, flags: flags, size: UInt32(payload.count)).encode() + payload
    }

    /// A reply to `request`: version 1 with the REPLY bit.
    public static func reply(to request: UInt32, payload: [UInt8]) -> [UInt8] {
        message(request: request, flags: VhostUserFlags.version | VhostUserFlags.reply, payload: payload)
    }

    public static func u64(_ value: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendLE(value)
        return bytes
    }

    public static func vringState(index: UInt32, num: UInt32) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendLE(index)
        bytes.appendLE(num)
        return bytes
    }

    public static func vringAddress(_ address: VhostUserVringAddress) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendLE(address.index)
        bytes.appendLE(address.flags)
        for value in [address.descriptorTable, address.usedRing, address.availRing, address.log] { bytes.appendLE(value) }
        return bytes
    }

    public static func memTable(_ regions: [VhostUserMemoryRegion]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendLE(UInt32(regions.count))
        bytes.appendLE(UInt32(0))
        for region in regions {
            for value in [region.guestPhysicalAddress, region.size, region.userAddress, region.mmapOffset] {
                bytes.appendLE(value)
            }
        }
        return bytes
    }

    public static func config(offset: UInt32, flags: UInt32, data: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendLE(offset)
        bytes.appendLE(UInt32(data.count))
        bytes.appendLE(flags)
        return bytes + data
    }
}
