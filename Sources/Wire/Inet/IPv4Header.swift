// The IPv4 header (RFC 791 §3.1): 20 bytes plus up to 40 of options.
//
//   offset  0  u8   version (high 4 bits, 4) | IHL (low 4 bits, header length in words, ≥ 5)
//   offset  1  u8   type of service (DSCP | ECN)
//   offset  2  be16 total length (header and data, bytes)
//   offset  4  be16 identification
//   offset  6  be16 flags (bit 15 reserved, 14 DF, 13 MF) | fragment offset (13 bits, 8-byte units)
//   offset  8  u8   time to live           offset 12  source address
//   offset  9  u8   protocol               offset 16  destination address
//   offset 10  be16 header checksum (RFC 1071 over the header only)
//
// Rules for callers:
//   * `decode` takes the Ethernet payload. It never reads past `bytes`; the datagram's data is
//     `bytes[headerLength ..< headerLength + payloadLength]`, and anything after it (Ethernet
//     padding) is ignored. Options are skipped, not interpreted (Toro honours none).
//   * The checksum is verified before anything else is believed beyond the lengths; a
//     fragment (MF set or a non-zero offset) is refused with `.fragment` after that, so the
//     caller can count and drop it: Toro does not reassemble (it sends with DF, and slirp and
//     Linux peers do path MTU discovery).
//   * `encode` always writes a 20-byte header (no options) with the checksum filled in; the
//     total length is 20 + `payloadLength`. A decoded header's `headerLength` says what it
//     took on the wire and is not carried into `encode`.
//   * The reserved flag (bit 15) is ignored on receive and written as zero (RFC 791: "must
//     be zero"); type of service is carried as it came.
//   * Source and destination are not judged (martians, broadcast): that is routing's job.

/// Why `IPv4Header.decode` refused a datagram.
public enum IPv4Error: Error, Equatable, Sendable {
    /// Fewer than 20 bytes, or fewer than the IHL says the header holds.
    case truncated
    /// The version field is not 4.
    case badVersion(UInt8)
    /// IHL below 5 (a header cannot be shorter than 20 bytes).
    case badHeaderLength(UInt8)
    /// Total length is shorter than the header, or longer than the bytes received.
    case badTotalLength(UInt16)
    /// The header checksum does not verify.
    case badChecksum
    /// A fragment (MF set or fragment offset ≠ 0): not reassembled; count and drop it.
    case fragment
}

/// An IPv4 header, decoded from a received datagram or built for one to send.
public struct IPv4Header: Equatable, Sendable {
    /// Bytes of a header without options (what `encode` writes).
    public static let size = 20
    /// Default time to live (RFC 1700's recommendation, Linux's default).
    public static let defaultTTL: UInt8 = 64

    /// Type of service (DSCP and ECN); carried, not interpreted.
    public var typeOfService: UInt8
    /// Bytes of data after the header (total length - header length).
    public var payloadLength: Int
    public var identification: UInt16
    /// DF: set by default on what Toro sends (it never fragments).
    public var dontFragment: Bool
    public var timeToLive: UInt8
    public var proto: IPProtocol
    public var source: IPv4Address
    public var destination: IPv4Address
    /// Header bytes on the wire, options included (decoded headers); 20 for built ones.
    public var headerLength: Int

    public init(source: IPv4Address, destination: IPv4Address, protocol proto: IPProtocol, payloadLength: Int,
                identification: UInt16 = 0, timeToLive: UInt8 = IPv4Header.defaultTTL,
                dontFragment: Bool = true, typeOfService: UInt8 = 0) {
        self.typeOfService = typeOfService
        self.payloadLength = payloadLength
        self.identification = identification
        self.dontFragment = dontFragment
        self.timeToLive = timeToLive
        self.proto = proto
        self.source = source
        self.destination = destination
        self.headerLength = IPv4Header.size
    }

    /// Total length: header and data.
    public var totalLength: Int { headerLength + payloadLength }

    /// The datagram's data within the bytes it was decoded from.
    public var payloadRange: Range<Int> { headerLength ..< headerLength + payloadLength }

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(IPv4Error) -> IPv4Header {
        guard bytes.count >= size else { throw .truncated }
        let version = bytes[0] >> 4
        guard version == 4 else { throw .badVersion(version) }
        let ihl = bytes[0] & 0x0F
        guard ihl >= 5 else { throw .badHeaderLength(ihl) }
        let headerLength = Int(ihl) * 4
        guard headerLength <= bytes.count else { throw .truncated }
        let total = BigEndian.load(UInt16.self, from: bytes, at: 2)
        guard Int(total) >= headerLength && Int(total) <= bytes.count else { throw .badTotalLength(total) }
        guard InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: bytes[0 ..< headerLength])) == 0 else {
            throw .badChecksum
        }
        let flags = BigEndian.load(UInt16.self, from: bytes, at: 6)
        guard flags & 0x3FFF == 0 else { throw .fragment }    // MF (bit 13) or an offset
        var header = IPv4Header(source: IPv4Address(rawValue: BigEndian.load(UInt32.self, from: bytes, at: 12)),
                                destination: IPv4Address(rawValue: BigEndian.load(UInt32.self, from: bytes, at: 16)),
                                protocol: IPProtocol(rawValue: bytes[9]),
                                payloadLength: Int(total) - headerLength,
                                identification: BigEndian.load(UInt16.self, from: bytes, at: 4),
                                timeToLive: bytes[8],
                                dontFragment: flags & 0x4000 != 0,
                                typeOfService: bytes[1])
        header.headerLength = headerLength
        return header
    }

    /// Writes a 20-byte header, checksum included, at the start of `buffer` (which must hold
    /// at least `size`; `payloadLength` at most 65,515).
    public func encode(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= IPv4Header.size, "IPv4 header buffer too small")
        precondition(payloadLength >= 0 && payloadLength <= 0xFFFF - IPv4Header.size, "IPv4 payload too long")
        buffer[0] = 0x45
        buffer[1] = typeOfService
        BigEndian.store(UInt16(IPv4Header.size + payloadLength), into: buffer, at: 2)
        BigEndian.store(identification, into: buffer, at: 4)
        BigEndian.store(UInt16(dontFragment ? 0x4000 : 0), into: buffer, at: 6)
        buffer[8] = timeToLive
        buffer[9] = proto.rawValue
        BigEndian.store(UInt16(0), into: buffer, at: 10)
        BigEndian.store(source.rawValue, into: buffer, at: 12)
        BigEndian.store(destination.rawValue, into: buffer, at: 16)
        let sum = InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: buffer[0 ..< IPv4Header.size]))
        BigEndian.store(sum, into: buffer, at: 10)
    }
}
