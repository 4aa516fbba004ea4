// ICMP echo request and reply (RFC 792, "Echo or Echo Reply Message"): the ping Toro
// answers. The message is the IPv4 payload:
//
//   offset 0  u8   type (8 request, 0 reply)    offset 4  be16 identifier
//   offset 1  u8   code (0)                     offset 6  be16 sequence number
//   offset 2  be16 checksum (RFC 1071 over the whole message, data included)
//   offset 8  data (echoed unchanged in the reply)
//
// Rules for callers:
//   * `decode` takes exactly the IPv4 payload (`IPv4Header.payloadRange`): the checksum
//     covers every byte given, so padding must not be included. The data is
//     `bytes[headerSize...]`.
//   * Other ICMP types are refused with `.notEcho(type)`: the caller ignores them (Toro sends
//     no ICMP errors of its own yet, and must never answer an ICMP error with one).
//   * `encode(into:)` takes the whole message buffer with the data already at `headerSize`,
//     writes the header and the checksum over all of it.

/// Why `ICMPEcho.decode` refused a message.
public enum ICMPError: Error, Equatable, Sendable {
    /// Fewer than 8 bytes.
    case truncated
    /// The checksum does not verify.
    case badChecksum
    /// A type other than 8 (echo request) or 0 (echo reply).
    case notEcho(UInt8)
    /// An echo with a code other than 0.
    case badCode(UInt8)
}

/// An ICMP echo request or reply header.
public struct ICMPEcho: Equatable, Sendable {
    /// Bytes before the data.
    public static let headerSize = 8

    public enum Kind: UInt8, Equatable, Sendable {
        case reply = 0
        case request = 8
    }

    public var kind: Kind
    public var identifier: UInt16
    public var sequence: UInt16

    public init(kind: Kind, identifier: UInt16, sequence: UInt16) {
        self.kind = kind
        self.identifier = identifier
        self.sequence = sequence
    }

    /// The reply to this request: same identifier and sequence; send it with the same data.
    public var reply: ICMPEcho { ICMPEcho(kind: .reply, identifier: identifier, sequence: sequence) }

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(ICMPError) -> ICMPEcho {
        guard bytes.count >= headerSize else { throw .truncated }
        guard InternetChecksum.checksum(bytes) == 0 else { throw .badChecksum }
        guard let kind = Kind(rawValue: bytes[0]) else { throw .notEcho(bytes[0]) }
        guard bytes[1] == 0 else { throw .badCode(bytes[1]) }
        return ICMPEcho(kind: kind, identifier: BigEndian.load(UInt16.self, from: bytes, at: 4),
                        sequence: BigEndian.load(UInt16.self, from: bytes, at: 6))
    }

    /// Writes the header and the checksum into `message`: the whole message, its data
    /// already in place after `headerSize` bytes.
    public func encode(into message: UnsafeMutableRawBufferPointer) {
        precondition(message.count >= ICMPEcho.headerSize, "ICMP buffer too small")
        message[0] = kind.rawValue
        message[1] = 0
        BigEndian.store(UInt16(0), into: message, at: 2)
        BigEndian.store(identifier, into: message, at: 4)
        BigEndian.store(sequence, into: message, at: 6)
        BigEndian.store(InternetChecksum.checksum(UnsafeRawBufferPointer(message)), into: message, at: 2)
    }
}
