// The TCP header (RFC 9293 §3.1), with its checksum over the IPv4 pseudo-header.
//
//   offset  0  be16 source port             offset 12  u8   data offset (high 4 bits, words) | reserved
//   offset  2  be16 destination port        offset 13  u8   flags (CWR ECE URG ACK PSH RST SYN FIN)
//   offset  4  be32 sequence number         offset 14  be16 window
//   offset  8  be32 acknowledgment number   offset 16  be16 checksum
//                                           offset 18  be16 urgent pointer
//   offset 20  options (data offset × 4 - 20 bytes, `TCPOptions`), then the data
//
// The checksum (RFC 9293 §3.1 "Checksum") is the Internet checksum of the pseudo-header
// (source, destination, zero, protocol 6, TCP length) followed by the whole segment.
//
// Rules for callers:
//   * `decode` takes exactly the segment, the IPv4 payload (`IPv4Header.payloadRange`), and
//     the datagram's addresses. It never reads past `bytes`; the data is
//     `bytes[headerLength...]`. The checksum is verified before the options are walked
//     (slirp and Linux always fill it in; Toro asks for no checksum offload).
//   * The reserved bits are not kept (RFC 9293: "MUST be zero in generated segments and MUST
//     be ignored in received segments").
//   * `encode` takes the whole segment buffer with the data already at `encodedHeaderLength`
//     (24 with MSS, else 20) and the addresses, writes the header and the checksum.

/// Why `TCPHeader.decode` refused a segment.
public enum TCPError: Error, Equatable, Sendable {
    /// Fewer than 20 bytes.
    case truncated
    /// Data offset below 5 words.
    case badDataOffset(UInt8)
    /// Data offset runs past the end of the segment.
    case dataOffsetPastSegment(UInt8)
    /// The checksum over the pseudo-header and the segment does not verify (or the segment
    /// is longer than 65,535 bytes, which no IPv4 datagram carries and no sum can cover).
    case badChecksum
    /// An option with a missing, short or overlong length, or an MSS whose length is not 4.
    case malformedOptions
}

/// The control bits (RFC 9293 §3.1, RFC 3168 for CWR and ECE).
public struct TCPFlags: OptionSet, Equatable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)
}

/// A TCP header, decoded from a received segment or built for one to send.
public struct TCPHeader: Equatable, Sendable {
    /// Bytes of a header without options.
    public static let minimumSize = 20

    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequenceNumber: UInt32
    public var acknowledgmentNumber: UInt32
    public var flags: TCPFlags
    public var window: UInt16
    public var urgentPointer: UInt16
    /// MSS option: received from the peer (decode), or to send (encode: SYN and SYN-ACK only).
    public var maximumSegmentSize: UInt16?
    /// Header bytes on the wire, options included (decoded headers); `encodedHeaderLength`
    /// for built ones.
    public var headerLength: Int

    public init(sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: UInt32, acknowledgmentNumber: UInt32,
                flags: TCPFlags, window: UInt16, urgentPointer: UInt16 = 0, maximumSegmentSize: UInt16? = nil) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.urgentPointer = urgentPointer
        self.maximumSegmentSize = maximumSegmentSize
        self.headerLength = maximumSegmentSize == nil ? TCPHeader.minimumSize : TCPHeader.minimumSize + 4
    }

    /// What `encode` writes: 20 bytes, 24 with the MSS option.
    public var encodedHeaderLength: Int { maximumSegmentSize == nil ? TCPHeader.minimumSize : TCPHeader.minimumSize + 4 }

    public static func decode(_ bytes: UnsafeRawBufferPointer, source: IPv4Address,
                              destination: IPv4Address) throws(TCPError) -> TCPHeader {
        guard bytes.count >= minimumSize else { throw .truncated }
        let dataOffset = bytes[12] >> 4
        guard dataOffset >= 5 else { throw .badDataOffset(dataOffset) }
        let headerLength = Int(dataOffset) * 4
        guard headerLength <= bytes.count else { throw .dataOffsetPastSegment(dataOffset) }
        guard bytes.count <= 0xFFFF else { throw .badChecksum }    // no IPv4 segment is longer
        var sum = InternetChecksum.pseudoHeader(source: source, destination: destination, protocol: .tcp,
                                                length: UInt16(bytes.count))
        sum.add(bytes)
        guard sum.isValid else { throw .badChecksum }
        guard let options = TCPOptions.parse(UnsafeRawBufferPointer(rebasing: bytes[minimumSize ..< headerLength])) else {
            throw .malformedOptions
        }
        var header = TCPHeader(sourcePort: BigEndian.load(UInt16.self, from: bytes, at: 0),
                               destinationPort: BigEndian.load(UInt16.self, from: bytes, at: 2),
                               sequenceNumber: BigEndian.load(UInt32.self, from: bytes, at: 4),
                               acknowledgmentNumber: BigEndian.load(UInt32.self, from: bytes, at: 8),
                               flags: TCPFlags(rawValue: bytes[13]),
                               window: BigEndian.load(UInt16.self, from: bytes, at: 14),
                               urgentPointer: BigEndian.load(UInt16.self, from: bytes, at: 18),
                               maximumSegmentSize: options.maximumSegmentSize)
        header.headerLength = headerLength
        return header
    }

    /// Writes the header (and the MSS option when `maximumSegmentSize` is set) and the
    /// checksum into `segment`: the whole segment, its data already at `encodedHeaderLength`.
    public func encode(into segment: UnsafeMutableRawBufferPointer, source: IPv4Address, destination: IPv4Address) {
        let length = encodedHeaderLength
        precondition(segment.count >= length && segment.count <= 0xFFFF, "TCP segment buffer size")
        BigEndian.store(sourcePort, into: segment, at: 0)
        BigEndian.store(destinationPort, into: segment, at: 2)
        BigEndian.store(sequenceNumber, into: segment, at: 4)
        BigEndian.store(acknowledgmentNumber, into: segment, at: 8)
        segment[12] = UInt8(length / 4) << 4
        segment[13] = flags.rawValue
        BigEndian.store(window, into: segment, at: 14)
        BigEndian.store(UInt16(0), into: segment, at: 16)
        BigEndian.store(urgentPointer, into: segment, at: 18)
        if let mss = maximumSegmentSize {
            segment[20] = 2
            segment[21] = 4
            BigEndian.store(mss, into: segment, at: 22)
        }
        var sum = InternetChecksum.pseudoHeader(source: source, destination: destination, protocol: .tcp,
                                                length: UInt16(segment.count))
        sum.add(UnsafeRawBufferPointer(segment))
        BigEndian.store(sum.value, into: segment, at: 16)
    }
}
