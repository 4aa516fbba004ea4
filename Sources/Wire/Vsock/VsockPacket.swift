// The virtio-vsock packet header: encoding, decoding and validation (virtio 1.2 §5.10.6).
//
// Every packet on the rx and tx virtqueues starts with this 44-byte, packed, little-endian
// header (§5.10.6 "Device Operation"):
//
//   offset  0  le64 src_cid      offset 28  le16 type      (1 = STREAM, §5.10.6.2)
//   offset  8  le64 dst_cid      offset 30  le16 op        (1...7, below)
//   offset 16  le32 src_port     offset 32  le32 flags     (SHUTDOWN: bits 0-1, §5.10.6.5)
//   offset 20  le32 dst_port     offset 36  le32 buf_alloc (§5.10.6.3)
//   offset 24  le32 len          offset 40  le32 fwd_cnt   (§5.10.6.3)
//
// followed by `len` payload bytes (only RW carries any). The guest driver decodes what the
// device puts in its rx buffers, the host back-end decodes what the guest puts in its tx
// buffers: both sides treat the other as hostile, so `decode` checks everything a later
// stage would otherwise have to trust.
//
// Rules for callers:
//   * `decode` never reads past `bytes`; a header it returns has a known `op`, type STREAM,
//     valid SHUTDOWN flags, and `length` payload bytes really follow it (at `size`).
//   * A packet that fails with `.unsupportedType` must be answered with an RST (§5.10.6.4,
//     driver and device normative): `VsockHeader.reset(replyingToUndecodable:)` builds it.
//   * Never answer an RST with an RST (`reset(replyingTo:)` returns nil for one), or two
//     confused peers ping-pong resets forever.
//   * The upper 32 bits of CIDs are "reserved and zeroed" (§5.10.6); they are carried, not
//     checked: addressing mismatches are the router's business.

/// A vsock endpoint: (context id, port) (§5.10.6.2). CID 2 is the host (§5.10.4).
public struct VsockAddress: Equatable, Hashable, Sendable {
    public var cid: UInt64
    public var port: UInt32
    public init(cid: UInt64, port: UInt32) { self.cid = cid; self.port = port }

    /// The well-known CID of the host (§5.10.4).
    public static let hostCID: UInt64 = 2
}

/// `op`: what a packet does (§5.10.6). 0 (INVALID) and anything above 7 are refused.
public enum VsockOp: UInt16, Equatable, Sendable {
    /// Open a connection to a listening port.
    case request = 1
    /// Accept a REQUEST: the connection is established.
    case response = 2
    /// Abort: refuse a REQUEST, or tear down a connection at once.
    case rst = 3
    /// One side will send and/or receive no more (flags, `VsockShutdown`).
    case shutdown = 4
    /// Payload: `len` stream bytes follow the header.
    case rw = 5
    /// Here is my buf_alloc/fwd_cnt (every header carries them; this one carries only them).
    case creditUpdate = 6
    /// Please send me a CREDIT_UPDATE.
    case creditRequest = 7
}

/// SHUTDOWN flags (§5.10.6.5): permanent once sent; later packets never clear them.
public struct VsockShutdown: OptionSet, Equatable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE (bit 0): the sender will receive no more data.
    public static let receive = VsockShutdown(rawValue: 1)
    /// VIRTIO_VSOCK_SHUTDOWN_F_SEND (bit 1): the sender will send no more data.
    public static let send = VsockShutdown(rawValue: 2)
    /// Both directions: the clean-disconnect request, answered by an RST.
    public static let both: VsockShutdown = [.receive, .send]
}

/// Why `VsockHeader.decode` refused some bytes.
public enum VsockPacketError: Error, Equatable, Sendable {
    /// Fewer than 44 bytes: there is no complete header.
    case truncatedHeader
    /// `type` is not 1 (STREAM); §5.10.6.4 requires an RST reply.
    case unsupportedType(UInt16)
    /// `op` is 0 (INVALID) or above 7 (CREDIT_REQUEST).
    case unknownOperation(UInt16)
    /// A SHUTDOWN whose flags use bits other than 0 (RECEIVE) and 1 (SEND).
    case invalidShutdownFlags(UInt32)
    /// A packet other than RW announces payload (`len` != 0).
    case payloadOnControlPacket(VsockOp)
    /// `len` is larger than the caller's maximum payload.
    case payloadTooLarge(UInt32)
    /// `len` is larger than the bytes that follow the header.
    case truncatedPayload(UInt32)
}

/// `struct virtio_vsock_hdr` (§5.10.6), decoded. Built by `decode` from untrusted bytes
/// or by `VsockConnection` for packets it sends.
public struct VsockHeader: Equatable, Sendable {
    /// Bytes on the wire.
    public static let size = 44
    /// VIRTIO_VSOCK_TYPE_STREAM, the only type this implementation speaks.
    public static let typeStream: UInt16 = 1
    /// Default payload limit: Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE (64 KiB).
    public static let defaultMaximumPayload: UInt32 = 64 * 1024

    /// src_cid, src_port.
    public var source: VsockAddress
    /// dst_cid, dst_port.
    public var destination: VsockAddress
    /// len: payload bytes after the header (0 unless `op` is RW).
    public var length: UInt32
    /// type: always `typeStream` in a decoded header.
    public var type: UInt16
    public var op: VsockOp
    /// flags: `VsockShutdown` bits on SHUTDOWN; carried, not interpreted, on other ops.
    public var flags: UInt32
    /// buf_alloc: the sender's total receive buffer for this connection (§5.10.6.3).
    public var bufAlloc: UInt32
    /// fwd_cnt: payload bytes the sender has consumed from this connection (§5.10.6.3).
    public var fwdCnt: UInt32

    public init(source: VsockAddress, destination: VsockAddress, op: VsockOp, length: UInt32 = 0,
                flags: UInt32 = 0, bufAlloc: UInt32 = 0, fwdCnt: UInt32 = 0, type: UInt16 = VsockHeader.typeStream) {
        self.source = source
        self.destination = destination
        self.length = length
        self.type = type
        self.op = op
        self.flags = flags
        self.bufAlloc = bufAlloc
        self.fwdCnt = fwdCnt
    }

    /// The SHUTDOWN flags (meaningful when `op == .shutdown`).
    public var shutdown: VsockShutdown { VsockShutdown(rawValue: flags) }

    /// Writes the 44 header bytes at the start of `buffer` (which must hold at least `size`).
    public func encode(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= VsockHeader.size, "vsock header buffer too small")
        var w = LittleEndianWriter(buffer)
        w.u64(source.cid)
        w.u64(destination.cid)
        w.u32(source.port)
        w.u32(destination.port)
        w.u32(length)
        w.u16(type)
        w.u16(op.rawValue)
        w.u32(flags)
        w.u32(bufAlloc)
        w.u32(fwdCnt)
    }

    /// Decodes and validates a packet: `bytes` is the header followed by whatever the
    /// buffer holds after it. The payload is `bytes[size ..< size + length]`; extra bytes
    /// after it are ignored (buffers are often larger than the packet).
    public static func decode(_ bytes: UnsafeRawBufferPointer,
                              maximumPayload: UInt32 = defaultMaximumPayload) throws(VsockPacketError) -> VsockHeader {
        guard bytes.count >= size else { throw .truncatedHeader }
        let raw = RawFields(bytes)
        guard raw.type == typeStream else { throw .unsupportedType(raw.type) }
        guard let op = VsockOp(rawValue: raw.op) else { throw .unknownOperation(raw.op) }
        if op == .shutdown && raw.flags & ~VsockShutdown.both.rawValue != 0 {
            throw .invalidShutdownFlags(raw.flags)
        }
        if op != .rw && raw.length != 0 { throw .payloadOnControlPacket(op) }
        guard raw.length <= maximumPayload else { throw .payloadTooLarge(raw.length) }
        guard UInt64(raw.length) <= UInt64(bytes.count - size) else { throw .truncatedPayload(raw.length) }
        return VsockHeader(source: raw.source, destination: raw.destination, op: op, length: raw.length,
                           flags: raw.flags, bufAlloc: raw.bufAlloc, fwdCnt: raw.fwdCnt, type: raw.type)
    }

    /// The RST that answers `header` (addresses swapped), or nil when `header` is itself an
    /// RST. Use it for packets no connection owns (no listener, unknown tuple, §5.10.6.5).
    public static func reset(replyingTo header: VsockHeader) -> VsockHeader? {
        if header.op == .rst { return nil }
        return VsockHeader(source: header.destination, destination: header.source, op: .rst)
    }

    /// The RST that answers bytes `decode` refused (an unknown `type` must be answered,
    /// §5.10.6.4), or nil when there is no complete header to take addresses from or the
    /// raw `op` is RST.
    public static func reset(replyingToUndecodable bytes: UnsafeRawBufferPointer) -> VsockHeader? {
        guard bytes.count >= size else { return nil }
        let raw = RawFields(bytes)
        if raw.op == VsockOp.rst.rawValue { return nil }
        return VsockHeader(source: raw.destination, destination: raw.source, op: .rst)
    }
}

/// The header's fields as raw integers, read without any validation (`bytes.count >= 44`).
private struct RawFields {
    var source: VsockAddress
    var destination: VsockAddress
    var length: UInt32
    var type: UInt16
    var op: UInt16
    var flags: UInt32
    var bufAlloc: UInt32
    var fwdCnt: UInt32

    init(_ bytes: UnsafeRawBufferPointer) {
        func u64(_ offset: Int) -> UInt64 { LittleEndian.load(UInt64.self, from: bytes, at: offset) }
        func u32(_ offset: Int) -> UInt32 { LittleEndian.load(UInt32.self, from: bytes, at: offset) }
        func u16(_ offset: Int) -> UInt16 { LittleEndian.load(UInt16.self, from: bytes, at: offset) }
        source = VsockAddress(cid: u64(0), port: u32(16))
        destination = VsockAddress(cid: u64(8), port: u32(20))
        length = u32(24)
        type = u16(28)
        op = u16(30)
        flags = u32(32)
        bufAlloc = u32(36)
        fwdCnt = u32(40)
    }
}
