// Sequence-number arithmetic (RFC 9293 §3.4): 32-bit numbers compared modulo 2^32, so
// "a before b" means b - a, taken as a signed 32-bit number, is positive.
import Wire

public struct SequenceNumber: Equatable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    /// Bytes from `self` forward to `other` (negative when `other` is behind).
    @inline(__always)
    public func distance(to other: SequenceNumber) -> Int32 { Int32(bitPattern: other.rawValue &- rawValue) }

    @inline(__always)
    public static func + (lhs: SequenceNumber, rhs: Int) -> SequenceNumber {
        SequenceNumber(lhs.rawValue &+ UInt32(truncatingIfNeeded: rhs))
    }
    @inline(__always)
    public static func - (lhs: SequenceNumber, rhs: SequenceNumber) -> Int { Int(rhs.distance(to: lhs)) }
    @inline(__always)
    public static func < (lhs: SequenceNumber, rhs: SequenceNumber) -> Bool { lhs.distance(to: rhs) > 0 }
    @inline(__always)
    public static func <= (lhs: SequenceNumber, rhs: SequenceNumber) -> Bool { lhs.distance(to: rhs) >= 0 }
    @inline(__always)
    public static func > (lhs: SequenceNumber, rhs: SequenceNumber) -> Bool { rhs < lhs }
    @inline(__always)
    public static func >= (lhs: SequenceNumber, rhs: SequenceNumber) -> Bool { rhs <= lhs }

    /// `low <= self < high`, modulo 2^32.
    @inline(__always)
    public func isWithin(_ low: SequenceNumber, _ high: SequenceNumber) -> Bool {
        low.distance(to: self) >= 0 && distance(to: high) > 0
    }
}
