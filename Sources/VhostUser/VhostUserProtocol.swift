// The vhost-user protocol's numbers: request codes, header flags, feature bits.
//
// QEMU docs/interop/vhost-user.rst: "Message Specification" (header: request u32, flags
// u32 with the version in bits 0-1, REPLY bit 2, NEED_REPLY bit 3, size u32), "Front-end
// message types" (the request codes below), "Protocol features" (the bit numbers), and
// "Ring states" (a ring starts on SET_VRING_KICK and stops on GET_VRING_BASE).

/// Front-end (QEMU) to back-end request codes (vhost-user.rst "Front-end message types").
public enum VhostUserRequest: UInt32, Sendable, CaseIterable {
    case getFeatures = 1
    case setFeatures = 2
    case setOwner = 3
    case resetOwner = 4
    case setMemTable = 5
    case setLogBase = 6
    case setLogFD = 7
    case setVringNum = 8
    case setVringAddr = 9
    case setVringBase = 10
    case getVringBase = 11
    case setVringKick = 12
    case setVringCall = 13
    case setVringErr = 14
    case getProtocolFeatures = 15
    case setProtocolFeatures = 16
    case getQueueNum = 17
    case setVringEnable = 18
    case getConfig = 24
    case setConfig = 25
    case resetDevice = 34
    case setStatus = 39
    case getStatus = 40

    /// The request's name as the specification spells it, for log lines.
    public var name: String {
        switch self {
        case .getFeatures: "GET_FEATURES"
        case .setFeatures: "SET_FEATURES"
        case .setOwner: "SET_OWNER"
        case .resetOwner: "RESET_OWNER"
        case .setMemTable: "SET_MEM_TABLE"
        case .setLogBase: "SET_LOG_BASE"
        case .setLogFD: "SET_LOG_FD"
        case .setVringNum: "SET_VRING_NUM"
        case .setVringAddr: "SET_VRING_ADDR"
        case .setVringBase: "SET_VRING_BASE"
        case .getVringBase: "GET_VRING_BASE"
        case .setVringKick: "SET_VRING_KICK"
        case .setVringCall: "SET_VRING_CALL"
        case .setVringErr: "SET_VRING_ERR"
        case .getProtocolFeatures: "GET_PROTOCOL_FEATURES"
        case .setProtocolFeatures: "SET_PROTOCOL_FEATURES"
        case .getQueueNum: "GET_QUEUE_NUM"
        case .setVringEnable: "SET_VRING_ENABLE"
        case .getConfig: "GET_CONFIG"
        case .setConfig: "SET_CONFIG"
        case .resetDevice: "RESET_DEVICE"
        case .setStatus: "SET_STATUS"
        case .getStatus: "GET_STATUS"
        }
    }

    /// A readable name for any request code, known or not.
    public static func name(of code: UInt32) -> String {
        VhostUserRequest(rawValue: code)?.name ?? "request \(code)"
    }
}

/// Header flag bits (vhost-user.rst "Header").
public enum VhostUserFlags {
    /// Bits 0-1: the protocol version, always 1.
    public static let versionMask: UInt32 = 0x3
    public static let version: UInt32 = 0x1
    /// Bit 2: this message is a reply.
    public static let reply: UInt32 = 1 << 2
    /// Bit 3: the front-end wants a reply (REPLY_ACK) even where none is defined.
    public static let needReply: UInt32 = 1 << 3
}

/// Virtio and vhost-user feature bits the back-end deals in.
public enum VhostUserFeatures {
    /// virtio 1.2 §6: VIRTIO_F_VERSION_1.
    public static let virtioVersion1: UInt64 = 1 << 32
    /// vhost-user.rst: VHOST_USER_F_PROTOCOL_FEATURES (the GET_PROTOCOL_FEATURES family).
    public static let protocolFeatures: UInt64 = 1 << 30
}

/// Protocol feature bits (vhost-user.rst "Protocol features").
public enum VhostUserProtocolFeatures {
    public static let multiQueue: UInt64 = 1 << 0
    public static let replyAck: UInt64 = 1 << 3
    public static let config: UInt64 = 1 << 9
}

/// Limits the decoder enforces.
public enum VhostUserLimits {
    /// Bytes of header.
    public static let headerSize = 12
    /// The largest payload accepted. The biggest legitimate one is SET_MEM_TABLE with 8
    /// regions (8 + 8 × 32 bytes) or a 256-byte config access (12 + 256).
    public static let maximumPayload = 4096
    /// vhost-user.rst "Memory regions": VHOST_MEMORY_BASELINE_NREGIONS.
    public static let maximumRegions = 8
    /// File descriptors accepted with one message (one per region at most).
    public static let maximumFileDescriptors = 8
    /// vhost-user.rst "Virtio device config space": at most 256 bytes.
    public static let maximumConfigSize = 256
    /// SET_VRING_KICK/CALL/ERR payload: bits 0-7 the ring index, bit 8 "no file descriptor".
    public static let vringIndexMask: UInt64 = 0xff
    public static let vringNoFDFlag: UInt64 = 1 << 8
}
