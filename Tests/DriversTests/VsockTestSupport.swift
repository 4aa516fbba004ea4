// Helpers for the vsock tests: a wire that carries actions between two connections
// through the real codec.
import Core
@testable import Drivers
@testable import VsockDriver
@testable import FSDriver
import Wire

let guestAddress = VsockAddress(cid: 3, port: 1234)
let hostAddress = VsockAddress(cid: VsockAddress.hostCID, port: 5000)

/// A packet as it travels: header plus its payload bytes.
struct Packet: Equatable {
    var header: VsockHeader
    var payload: [UInt8] = []
}

/// Turns actions into packets; RW payload ranges index `written`.
func packets(_ actions: [VsockAction], written: [UInt8] = []) -> [Packet] {
    actions.map { Packet(header: $0.header, payload: Array(written[$0.payload])) }
}

/// Encodes a packet to bytes (header + payload).
func wireBytes(_ packet: Packet) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: VsockHeader.size)
    bytes.withUnsafeMutableBytes { packet.header.encode(into: $0) }
    return bytes + packet.payload
}

/// Encodes, decodes and hands each packet to `connection`; returns its replies.
@discardableResult
func deliver(_ incoming: [Packet], to connection: VsockConnection) -> [Packet] {
    var replies: [Packet] = []
    for packet in incoming {
        let bytes = wireBytes(packet)
        let actions: [VsockAction] = bytes.withUnsafeBytes { raw in
            let header = try! VsockHeader.decode(raw)
            let payload = UnsafeRawBufferPointer(rebasing: raw[VsockHeader.size ..< VsockHeader.size + Int(header.length)])
            return connection.handle(header, payload: payload)
        }
        replies += packets(actions)  // replies are control packets: no payload
    }
    return replies
}

/// Writes `bytes`; returns what was accepted and the packets to deliver.
func send(_ connection: VsockConnection, _ bytes: [UInt8]) -> (accepted: Int, packets: [Packet]) {
    let (accepted, actions) = bytes.withUnsafeBytes { connection.write($0) }
    return (accepted, packets(actions, written: bytes))
}

/// Reads up to `max` bytes; returns them and the packets to deliver.
func receive(_ connection: VsockConnection, max: Int = 1 << 20) -> (bytes: [UInt8], packets: [Packet]) {
    var buffer = [UInt8](repeating: 0, count: max)
    let (count, actions) = buffer.withUnsafeMutableBytes { connection.read(into: $0) }
    return (Array(buffer[0 ..< count]), packets(actions))
}

/// A guest that connected to a listening host, both established.
func connectedPair(guestCapacity: Int = 64 * 1024, hostCapacity: Int = 64 * 1024,
                   guestPacket: Int = 64 * 1024, guestTxStart: UInt32 = 0, hostTxStart: UInt32 = 0)
    -> (guest: VsockConnection, host: VsockConnection) {
    let (guest, request) = VsockConnection.connect(from: guestAddress, to: hostAddress, receiveCapacity: guestCapacity,
                                                   maximumPacketPayload: guestPacket,
                                                   txStart: guestTxStart, rxStart: hostTxStart)
    let host = VsockConnection(request: request.header, receiveCapacity: hostCapacity, maximumPacketPayload: 64 * 1024,
                               txStart: hostTxStart, rxStart: guestTxStart)!
    let replies = deliver(packets(host.accept()), to: guest)
    precondition(replies.isEmpty && guest.state == .connected && host.state == .connected)
    return (guest, host)
}

/// A header from the host to the guest with chosen credit fields.
func hostHeader(_ op: VsockOp, length: UInt32 = 0, flags: UInt32 = 0, bufAlloc: UInt32 = 64 * 1024,
                fwdCnt: UInt32 = 0) -> VsockHeader {
    VsockHeader(source: hostAddress, destination: guestAddress, op: op, length: length, flags: flags,
                bufAlloc: bufAlloc, fwdCnt: fwdCnt)
}

func ops(_ packets: [Packet]) -> [VsockOp] { packets.map { $0.header.op } }

func bytes(_ text: StaticString) -> [UInt8] {
    text.withUTF8Buffer { Array($0) }
}
