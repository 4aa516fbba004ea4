// The Internet checksum (RFC 1071): the 16-bit ones' complement of the ones' complement sum
// of the data taken as big-endian 16-bit words, an odd last byte padded with a zero.
//
// One accumulator serves every user: the IPv4 header (RFC 791 §3.1), ICMP (RFC 792) and the
// TCP/UDP checksum over the IPv4 pseudo-header and the segment (RFC 9293 §3.1), which spans
// several buffers. Feeding is incremental: buffers may be split anywhere, even at an odd
// byte (the next buffer's first byte is then the low half of the word), and the value is
// the same as over the concatenation (RFC 1071 §2 (B): the sum is associative and
// byte-order independent, so 32-bit words summed into 64 bits and folded give it too).
//
// Rules for callers:
//   * Verifying: feed the whole header or message, checksum field included; it is intact
//     when `value` is 0 (`isValid`).
//   * Computing: zero the checksum field, feed everything, store `value` big-endian.
//   * `pseudoHeader` starts a TCP or UDP sum (RFC 9293 §3.1: source, destination, zero,
//     protocol, TCP length); continue it with the segment bytes.

public struct InternetChecksum: Sendable {
    /// Sum of big-endian words so far; 64 bits cannot overflow for any buffer in memory.
    private var sum: UInt64 = 0
    /// True when an odd number of bytes has been fed: the next byte is a word's low half.
    private var odd = false

    public init() {}

    /// The checksum of everything fed so far: ~(folded sum), as stored in a header.
    public var value: UInt16 {
        var folded = sum
        while folded >> 16 != 0 { folded = (folded & 0xFFFF) + (folded >> 16) }
        return ~UInt16(truncatingIfNeeded: folded)
    }

    /// True when the bytes fed (checksum field included) verify.
    public var isValid: Bool { value == 0 }

    /// Feeds `bytes` as the continuation of everything fed before.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        let n = bytes.count
        if odd && n > 0 {
            sum &+= UInt64(bytes[0])
            odd = false
            i = 1
        }
        while i + 4 <= n {
            sum &+= UInt64(BigEndian.load(UInt32.self, from: bytes, at: i))
            i += 4
        }
        if i + 2 <= n {
            sum &+= UInt64(BigEndian.load(UInt16.self, from: bytes, at: i))
            i += 2
        }
        if i < n {
            sum &+= UInt64(bytes[i]) << 8
            odd = true
        }
    }

    /// Feeds a 16-bit field, as two bytes in network order.
    public mutating func add(_ word: UInt16) {
        withUnsafeBytes(of: word.bigEndian) { add($0) }
    }

    /// Feeds a 32-bit field (an address), as four bytes in network order.
    public mutating func add(_ word: UInt32) {
        withUnsafeBytes(of: word.bigEndian) { add($0) }
    }

    /// The checksum of one buffer.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var sum = InternetChecksum()
        sum.add(bytes)
        return sum.value
    }

    /// A sum started with the IPv4 pseudo-header (RFC 9293 §3.1, RFC 768): source,
    /// destination, a zero byte, the protocol, and `length` (the TCP or UDP header and data).
    public static func pseudoHeader(source: IPv4Address, destination: IPv4Address,
                                    protocol proto: IPProtocol, length: UInt16) -> InternetChecksum {
        var sum = InternetChecksum()
        sum.add(source.rawValue)
        sum.add(destination.rawValue)
        sum.add(UInt16(proto.rawValue))
        sum.add(length)
        return sum
    }
}
