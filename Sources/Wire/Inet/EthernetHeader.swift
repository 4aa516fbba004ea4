// The Ethernet II header (IEEE 802.3 §3.1.1 with an EtherType, RFC 894): 14 bytes.
//
//   offset  0  destination MAC (6)
//   offset  6  source MAC (6)
//   offset 12  be16 EtherType (≥ 0x0600; a smaller value is an 802.3 length field)
//
// followed by the payload. The frame check sequence is not there: virtio-net and QEMU's
// user networking hand over frames without it. Short frames are padded to 60 bytes on the
// wire, so the payload may end in padding; the layer above (IPv4 total length, ARP's fixed
// size) says where its data stops.
//
// Rules for callers:
//   * `decode` never reads past `bytes`; the payload starts at `size`.
//   * VLAN-tagged frames (802.1Q, 802.1ad) and 802.3 length frames are refused: Toro's
//     NIC is untagged. An unknown EtherType is not an error; the caller drops the frame.
//   * Frames sent to another unicast MAC are not refused here either: filtering is the
//     receiver's job (`destination`, `MACAddress.isGroup`).

/// Why `EthernetHeader.decode` refused a frame.
public enum EthernetError: Error, Equatable, Sendable {
    /// Fewer than 14 bytes.
    case truncated
    /// An 802.1Q or 802.1ad tag (the EtherType field is 0x8100 or 0x88A8).
    case vlanTagged
    /// The field is an 802.3 length (below 0x0600), not an EtherType.
    case notEthernetII(UInt16)
}

/// An Ethernet II header, decoded from a received frame or built for one to send.
public struct EthernetHeader: Equatable, Sendable {
    /// Bytes on the wire.
    public static let size = 14
    /// The smallest frame on the wire without the FCS (IEEE 802.3: 64 with it).
    public static let minimumFrameSize = 60

    public var destination: MACAddress
    public var source: MACAddress
    public var etherType: EtherType

    public init(destination: MACAddress, source: MACAddress, etherType: EtherType) {
        self.destination = destination
        self.source = source
        self.etherType = etherType
    }

    /// Decodes the header at the start of `bytes` (the whole frame).
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(EthernetError) -> EthernetHeader {
        guard bytes.count >= size else { throw .truncated }
        let type = BigEndian.load(UInt16.self, from: bytes, at: 12)
        if type == EtherType.vlan.rawValue || type == EtherType.serviceVLAN.rawValue { throw .vlanTagged }
        guard type >= 0x0600 else { throw .notEthernetII(type) }
        return EthernetHeader(destination: MACAddress.load(from: bytes, at: 0),
                              source: MACAddress.load(from: bytes, at: 6),
                              etherType: EtherType(rawValue: type))
    }

    /// Writes the 14 header bytes at the start of `buffer` (which must hold at least `size`).
    public func encode(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= EthernetHeader.size, "Ethernet header buffer too small")
        destination.store(into: buffer, at: 0)
        source.store(into: buffer, at: 6)
        BigEndian.store(etherType.rawValue, into: buffer, at: 12)
    }
}
