// The addresses and type codes the Internet formats carry: a 48-bit Ethernet MAC address,
// an IPv4 address, the EtherType and the IP protocol number. Plain integers in host order,
// so they compare, hash and print without a byte array; the codecs convert at the wire.
//
// Rules for callers: `MACAddress.rawValue` uses the low 48 bits only (the first byte on the
// wire is bits 40-47); the initialisers keep it so. `IPv4Address(10, 0, 2, 15)` reads as the
// dotted quad.

/// An IEEE 802 MAC address, the first wire byte in bits 40-47.
public struct MACAddress: Equatable, Hashable, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue & 0xFFFF_FFFF_FFFF }
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, _ e: UInt8, _ f: UInt8) {
        self.rawValue = UInt64(a) << 40 | UInt64(b) << 32 | UInt64(c) << 24 | UInt64(d) << 16 | UInt64(e) << 8 | UInt64(f)
    }

    /// ff:ff:ff:ff:ff:ff.
    public static let broadcast = MACAddress(rawValue: 0xFFFF_FFFF_FFFF)
    /// 00:00:00:00:00:00 (an ARP request's unknown target).
    public static let zero = MACAddress(rawValue: 0)

    /// True for group addresses (the I/G bit, the first byte's bit 0): broadcast, multicast.
    public var isGroup: Bool { rawValue >> 40 & 1 != 0 }

    /// The 6 bytes at `offset` (bounds checked by the caller).
    public static func load(from bytes: UnsafeRawBufferPointer, at offset: Int) -> MACAddress {
        let high = UInt64(BigEndian.load(UInt16.self, from: bytes, at: offset))
        let low = UInt64(BigEndian.load(UInt32.self, from: bytes, at: offset + 2))
        return MACAddress(rawValue: high << 32 | low)
    }

    /// Writes the 6 bytes at `offset` (bounds checked by the caller).
    public func store(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        BigEndian.store(UInt16(truncatingIfNeeded: rawValue >> 32), into: buffer, at: offset)
        BigEndian.store(UInt32(truncatingIfNeeded: rawValue), into: buffer, at: offset + 2)
    }
}

/// An IPv4 address, the first wire byte in bits 24-31.
public struct IPv4Address: Equatable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self.rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// 0.0.0.0.
    public static let any = IPv4Address(rawValue: 0)
    /// 255.255.255.255.
    public static let broadcast = IPv4Address(rawValue: 0xFFFF_FFFF)
}

/// The EtherType of an Ethernet II frame (IEEE 802.3 §3.2.6: values ≥ 0x0600).
public struct EtherType: Equatable, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let ipv4 = EtherType(rawValue: 0x0800)
    public static let arp = EtherType(rawValue: 0x0806)
    public static let ipv6 = EtherType(rawValue: 0x86DD)
    /// IEEE 802.1Q customer VLAN tag.
    public static let vlan = EtherType(rawValue: 0x8100)
    /// IEEE 802.1ad service VLAN tag (QinQ).
    public static let serviceVLAN = EtherType(rawValue: 0x88A8)
}

/// The IPv4 `protocol` field (IANA "Assigned Internet Protocol Numbers").
public struct IPProtocol: Equatable, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let icmp = IPProtocol(rawValue: 1)
    public static let tcp = IPProtocol(rawValue: 6)
    public static let udp = IPProtocol(rawValue: 17)
}
