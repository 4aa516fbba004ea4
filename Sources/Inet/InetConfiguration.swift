// The interface's IPv4 configuration: this host's address, the prefix length of its subnet
// and the gateway for everything off that subnet. Static: there is no DHCP client yet.
//
// Defaults are QEMU's user networking (DESIGN.md, "Legacy I/O facts"): 10.0.2.15/24 via
// 10.0.2.2. The kernel command line overrides them:
//
//   ip=A.B.C.D/N      the address and prefix length (N in 1...30); the prefix is required
//   gateway=A.B.C.D   the gateway, inside the subnet of ip=
//
// `gateway=` without `ip=` keeps the default address; `ip=` without `gateway=` means no
// gateway (only the subnet is reachable), since the default gateway lies in another subnet
// as soon as the address moves.
//
// Rules for callers: a value that does not parse or does not make sense (a network or
// broadcast address, loopback, multicast, a gateway off the subnet or equal to the address,
// a bare `ip` flag) throws a `KernelArgumentError`; the caller logs `describe()` and exits
// with the bad-argument status, never carries on with a default.
import Core
import Wire

public struct InetConfiguration: Equatable, Sendable {
    /// This host's address.
    public var address: IPv4Address
    /// The subnet's prefix length (1...30).
    public var prefixLength: Int
    /// Where datagrams for other subnets go; nil: only the subnet is reachable.
    public var gateway: IPv4Address?

    public init(address: IPv4Address, prefixLength: Int, gateway: IPv4Address?) {
        self.address = address
        self.prefixLength = prefixLength
        self.gateway = gateway
    }

    /// QEMU's user networking: 10.0.2.15/24 via 10.0.2.2.
    public static let userNetworking = InetConfiguration(address: IPv4Address(10, 0, 2, 15), prefixLength: 24,
                                                         gateway: IPv4Address(10, 0, 2, 2))

    /// The subnet mask (`prefixLength` leading one bits).
    public var netmask: UInt32 { InetConfiguration.mask(prefixLength) }

    /// The subnet's directed broadcast address (every host bit set).
    public var subnetBroadcast: IPv4Address { IPv4Address(rawValue: address.rawValue | ~netmask) }

    /// Whether `other` lies in this host's subnet (reachable without the gateway).
    public func isOnLink(_ other: IPv4Address) -> Bool {
        other.rawValue & netmask == address.rawValue & netmask
    }

    /// Where a datagram for `destination` goes first: the destination itself on the subnet,
    /// otherwise the gateway (nil when there is none).
    public func nextHop(for destination: IPv4Address) -> IPv4Address? {
        isOnLink(destination) ? destination : gateway
    }

    static func mask(_ prefixLength: Int) -> UInt32 {
        prefixLength <= 0 ? 0 : UInt32.max << UInt32(32 - min(prefixLength, 32))
    }

    /// The configuration the command line asks for (see the header); the defaults when it
    /// names neither key.
    public init(commandLine: KernelCommandLine) throws(KernelArgumentError) {
        var configuration = InetConfiguration.userNetworking
        if let entry = commandLine.entry("ip") {
            guard let value = entry.value, let (address, prefix) = InetConfiguration.parseAddress(value, prefix: true) else {
                throw .invalid(key: "ip", reason: "needs an address and prefix length like 10.0.2.15/24")
            }
            guard prefix >= 1 && prefix <= 30 else { throw .invalid(key: "ip", reason: "needs a prefix length between 1 and 30") }
            configuration = InetConfiguration(address: address, prefixLength: prefix, gateway: nil)
            guard InetConfiguration.isUnicast(address) else {
                throw .invalid(key: "ip", reason: "must be a unicast address (not 0/8, 127/8 or 224 and above)")
            }
            guard configuration.isHostAddress(address) else {
                throw .invalid(key: "ip", reason: "must not be its subnet's network or broadcast address")
            }
        }
        if let entry = commandLine.entry("gateway") {
            guard let value = entry.value, let (gateway, _) = InetConfiguration.parseAddress(value, prefix: false) else {
                throw .invalid(key: "gateway", reason: "needs an address like 10.0.2.2")
            }
            guard InetConfiguration.isUnicast(gateway), configuration.isOnLink(gateway),
                  configuration.isHostAddress(gateway) else {
                throw .invalid(key: "gateway", reason: "must be a host address in the subnet of ip=")
            }
            guard gateway != configuration.address else {
                throw .invalid(key: "gateway", reason: "must not be this host's own address")
            }
            configuration.gateway = gateway
        }
        self = configuration
    }

    /// Neither the subnet's network address nor its broadcast address.
    func isHostAddress(_ candidate: IPv4Address) -> Bool {
        let host = candidate.rawValue & ~netmask
        return host != 0 && host != ~netmask
    }

    /// Not 0.0.0.0/8 ("this network"), 127.0.0.0/8 (loopback), 224.0.0.0/4 (multicast) or
    /// 240.0.0.0/4 (reserved, and the limited broadcast): RFC 1122 §3.2.1.3.
    static func isUnicast(_ address: IPv4Address) -> Bool {
        let first = address.rawValue >> 24
        return first != 0 && first != 127 && first < 224
    }

    /// `A.B.C.D` (each 0-255, 1-3 digits), followed by `/N` (1-2 digits) when `prefix`;
    /// nil for anything else. The prefix is 32 when not asked for.
    static func parseAddress(_ text: [UInt8], prefix: Bool) -> (IPv4Address, Int)? {
        var index = 0
        func number(maximumDigits: Int) -> Int? {
            var value = 0
            var digits = 0
            while index < text.count, text[index] >= 48, text[index] <= 57, digits < maximumDigits {
                value = value * 10 + Int(text[index] - 48)
                digits += 1
                index += 1
            }
            return digits == 0 ? nil : value
        }
        var raw: UInt32 = 0
        for part in 0 ..< 4 {
            if part > 0 {
                guard index < text.count, text[index] == 46 else { return nil }   // "."
                index += 1
            }
            guard let octet = number(maximumDigits: 3), octet <= 255 else { return nil }
            raw = raw << 8 | UInt32(octet)
        }
        var length = 32
        if prefix {
            guard index < text.count, text[index] == 47 else { return nil }     // "/"
            index += 1
            guard let value = number(maximumDigits: 2) else { return nil }
            length = value
        }
        guard index == text.count else { return nil }
        return (IPv4Address(rawValue: raw), length)
    }
}

extension Log {
    /// Writes `52:54:00:12:34:56`.
    public static func mac(_ mac: MACAddress) {
        for shift in stride(from: 40, through: 0, by: -8) {
            if shift != 40 { put(58) }
            let byte = UInt8(truncatingIfNeeded: mac.rawValue >> UInt64(shift))
            for nibble in [byte >> 4, byte & 0xF] { put(nibble < 10 ? 48 + nibble : 87 + nibble) }
        }
    }

    /// Writes `a.b.c.d`.
    public static func address(_ address: IPv4Address) {
        for shift in stride(from: 24, through: 0, by: -8) {
            if shift != 24 { put(46) }
            decimal(UInt64(address.rawValue >> UInt32(shift) & 0xFF))
        }
    }
}
