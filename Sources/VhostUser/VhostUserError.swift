// What can go wrong on a vhost-user connection. Every case is logged as one line and the
// connection is dropped (QEMU docs/interop/vhost-user.rst gives a back-end no way to
// recover from a malformed message); none of them crashes the back-end.

public enum VhostUserError: Error, Equatable, Sendable, CustomStringConvertible {
    // Decoding (vhost-user.rst "Message Specification").
    case truncatedHeader(got: Int)
    case badVersion(flags: UInt32)
    case payloadTooLarge(request: UInt32, size: UInt32)
    case truncatedPayload(request: UInt32, needed: Int, got: Int)
    case tooManyRegions(UInt32)
    case missingFileDescriptors(request: UInt32, needed: Int, got: Int)
    case configTooLarge(size: UInt32)
    // Meaning (vhost-user.rst "Front-end message types", "Memory regions").
    case badVringIndex(request: UInt32, index: UInt32)
    case badVringSize(UInt32)
    case badRegion(String)
    case mapFailed(errno: Int32)
    case addressNotMapped(UInt64)
    // The socket.
    case closed
    case io(operation: String, errno: Int32)

    public var description: String {
        switch self {
        case .truncatedHeader(let got): "truncated header (\(got) of 12 bytes)"
        case .badVersion(let flags): "unsupported protocol version (flags 0x\(String(flags, radix: 16)))"
        case .payloadTooLarge(let request, let size):
            "\(VhostUserRequest.name(of: request)): payload of \(size) bytes exceeds the \(VhostUserLimits.maximumPayload)-byte maximum"
        case .truncatedPayload(let request, let needed, let got):
            "\(VhostUserRequest.name(of: request)): payload of \(got) bytes, \(needed) needed"
        case .tooManyRegions(let count): "SET_MEM_TABLE: \(count) regions (at most \(VhostUserLimits.maximumRegions))"
        case .missingFileDescriptors(let request, let needed, let got):
            "\(VhostUserRequest.name(of: request)): \(got) file descriptors, \(needed) needed"
        case .configTooLarge(let size): "config access of \(size) bytes (at most \(VhostUserLimits.maximumConfigSize))"
        case .badVringIndex(let request, let index): "\(VhostUserRequest.name(of: request)): no ring \(index)"
        case .badVringSize(let size): "SET_VRING_NUM: ring size \(size) is not a power of two in 1...32768"
        case .badRegion(let reason): "SET_MEM_TABLE: \(reason)"
        case .mapFailed(let errno): "SET_MEM_TABLE: mmap failed (errno \(errno))"
        case .addressNotMapped(let address): "SET_VRING_ADDR: 0x\(String(address, radix: 16)) is in no memory region"
        case .closed: "front-end closed the connection"
        case .io(let operation, let errno): "\(operation) failed (errno \(errno))"
        }
    }
}
