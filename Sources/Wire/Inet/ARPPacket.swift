// ARP for IPv4 over Ethernet (RFC 826): the only combination Toro speaks. 28 bytes:
//
//   offset  0  be16 hardware type   (1, Ethernet)      offset  8  sender MAC (6)
//   offset  2  be16 protocol type   (0x0800, IPv4)     offset 14  sender IPv4 (4)
//   offset  4  u8   hardware length (6)                offset 18  target MAC (6)
//   offset  5  u8   protocol length (4)                offset 24  target IPv4 (4)
//   offset  6  be16 operation       (1 request, 2 reply)
//
// QEMU's user networking answers ARP only for its own addresses and learns the guest's MAC
// only from ARP (DESIGN.md, "Legacy I/O facts"), so the guest must answer requests for its
// address: `reply(from:)` builds that answer.
//
// Rules for callers:
//   * `decode` takes the Ethernet payload; bytes after the 28 (frame padding) are ignored.
//   * Anything but Ethernet/IPv4 with lengths 6/4 and operation 1 or 2 is refused (RARP,
//     InARP and other hardware are not ours).
//   * Whether the target address is ours is the caller's question, as is updating the cache
//     from the sender fields (RFC 826 "Packet Reception": merge before answering).

/// Why `ARPPacket.decode` refused a packet.
public enum ARPError: Error, Equatable, Sendable {
    /// Fewer than 28 bytes.
    case truncated
    /// Hardware type is not 1 (Ethernet).
    case unsupportedHardware(UInt16)
    /// Protocol type is not 0x0800 (IPv4).
    case unsupportedProtocol(UInt16)
    /// Address lengths are not 6 (hardware) and 4 (protocol).
    case badAddressLengths(hardware: UInt8, protocol: UInt8)
    /// Operation is not 1 (request) or 2 (reply).
    case unknownOperation(UInt16)
}

/// `ar_op`.
public enum ARPOperation: UInt16, Equatable, Sendable {
    case request = 1
    case reply = 2
}

/// An ARP packet for IPv4 over Ethernet.
public struct ARPPacket: Equatable, Sendable {
    /// Bytes on the wire.
    public static let size = 28

    public var operation: ARPOperation
    public var senderMAC: MACAddress
    public var senderAddress: IPv4Address
    /// Zero in a request (unknown: RFC 826 leaves it unspecified; everyone sends zero).
    public var targetMAC: MACAddress
    public var targetAddress: IPv4Address

    public init(operation: ARPOperation, senderMAC: MACAddress, senderAddress: IPv4Address,
                targetMAC: MACAddress, targetAddress: IPv4Address) {
        self.operation = operation
        self.senderMAC = senderMAC
        self.senderAddress = senderAddress
        self.targetMAC = targetMAC
        self.targetAddress = targetAddress
    }

    /// A request asking who has `target`.
    public static func request(from mac: MACAddress, address: IPv4Address, asking target: IPv4Address) -> ARPPacket {
        ARPPacket(operation: .request, senderMAC: mac, senderAddress: address, targetMAC: .zero, targetAddress: target)
    }

    /// The reply to this request from the owner of `targetAddress`, whose MAC is `mac`
    /// (RFC 826: swap sender and target, fill in our hardware address, set the opcode).
    public func reply(from mac: MACAddress) -> ARPPacket {
        ARPPacket(operation: .reply, senderMAC: mac, senderAddress: targetAddress,
                  targetMAC: senderMAC, targetAddress: senderAddress)
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(ARPError) -> ARPPacket {
        guard bytes.count >= size else { throw .truncated }
        let hardware = BigEndian.load(UInt16.self, from: bytes, at: 0)
        guard hardware == 1 else { throw .unsupportedHardware(hardware) }
        let proto = BigEndian.load(UInt16.self, from: bytes, at: 2)
        guard proto == EtherType.ipv4.rawValue else { throw .unsupportedProtocol(proto) }
        guard bytes[4] == 6 && bytes[5] == 4 else { throw .badAddressLengths(hardware: bytes[4], protocol: bytes[5]) }
        let op = BigEndian.load(UInt16.self, from: bytes, at: 6)
        guard let operation = ARPOperation(rawValue: op) else { throw .unknownOperation(op) }
        return ARPPacket(operation: operation,
                         senderMAC: MACAddress.load(from: bytes, at: 8),
                         senderAddress: IPv4Address(rawValue: BigEndian.load(UInt32.self, from: bytes, at: 14)),
                         targetMAC: MACAddress.load(from: bytes, at: 18),
                         targetAddress: IPv4Address(rawValue: BigEndian.load(UInt32.self, from: bytes, at: 24)))
    }

    /// Writes the 28 bytes at the start of `buffer` (which must hold at least `size`).
    public func encode(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= ARPPacket.size, "ARP buffer too small")
        BigEndian.store(UInt16(1), into: buffer, at: 0)
        BigEndian.store(EtherType.ipv4.rawValue, into: buffer, at: 2)
        buffer[4] = 6
        buffer[5] = 4
        BigEndian.store(operation.rawValue, into: buffer, at: 6)
        senderMAC.store(into: buffer, at: 8)
        BigEndian.store(senderAddress.rawValue, into: buffer, at: 14)
        targetMAC.store(into: buffer, at: 18)
        BigEndian.store(targetAddress.rawValue, into: buffer, at: 24)
    }
}
