// Helpers for the vsock wire tests: two addresses and a packet's bytes through the real codec.
@testable import Wire

let guestAddress = VsockAddress(cid: 3, port: 1234)
let hostAddress = VsockAddress(cid: VsockAddress.hostCID, port: 5000)

/// A packet as it travels: header plus its payload bytes.
struct Packet: Equatable {
    var header: VsockHeader
    var payload: [UInt8] = []
}

/// Encodes a packet to bytes (header + payload).
func wireBytes(_ packet: Packet) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: VsockHeader.size)
    bytes.withUnsafeMutableBytes { packet.header.encode(into: $0) }
    return bytes + packet.payload
}
