// libFuzzer target: the virtio-vsock header codec and one connection's state machine fed by
// a hostile peer (virtio 1.2 §5.10.6).
//
// The input is a script. Byte 0 picks the starting state (connecting, responding, connected
// either way) and whether the 32-bit counters start next to 2^32. Then records follow, each
// a control byte and its arguments:
//   op 0-3  a packet: 2 length bytes, then that many bytes decoded with `VsockHeader.decode`.
//           If the control byte's bit 4 is set the addresses are rewritten to the
//           connection's tuple, so most packets reach the state logic instead of the
//           "not ours" path. Undecodable packets go to `reset(replyingToUndecodable:)`.
//   op 4    write: 1 byte, times 97, bytes to write.
//   op 5    read: 1 byte, times 61, buffer size.
//   op 6    shutdown with the next byte's low bits, or close.
//   op 7    accept or transportReset.
// After every step the invariants below must hold; a violation traps, which libFuzzer reports.
// Imports the real modules: Wire (the header codec) and Drivers (the connection state and its
// receive ring, with Core's memory budget, which admits everything as it is not enforced).
@testable import Drivers
@testable import VsockDriver
import FuzzSupport
@testable import Wire

private struct Script {
    let bytes: UnsafeRawBufferPointer
    var offset = 0
    var isEmpty: Bool { offset >= bytes.count }
    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }
    mutating func take(_ count: Int) -> UnsafeRawBufferPointer {
        let n = min(count, bytes.count - offset)
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + n])
    }
}

private let local = VsockAddress(cid: 3, port: 1024)
private let peer = VsockAddress(cid: 2, port: 5000)

/// Every action must be a packet a peer would accept from us, inside the buffer it names.
private func check(_ actions: [VsockAction], _ connection: VsockConnection, writeSize: Int = 0, stray: Bool = false) {
    var scratch = [UInt8](repeating: 0, count: VsockHeader.size)
    for action in actions {
        let header = action.header
        if !stray {
            precondition(header.source == local && header.destination == peer, "action for another tuple")
        }
        precondition(action.payload.lowerBound >= 0 && action.payload.upperBound <= writeSize, "payload outside buffer")
        precondition(Int(header.length) == action.payload.count, "len differs from payload")
        precondition(header.op == .rw || header.length == 0, "payload on a control packet")
        precondition(Int(header.length) <= connection.maximumPacketPayload, "packet over the size limit")
        if header.op == .rw {
            scratch = [UInt8](repeating: 0, count: VsockHeader.size + Int(header.length))
        }
        scratch.withUnsafeMutableBytes { header.encode(into: $0) }
        let decoded = scratch.withUnsafeBytes { raw -> VsockHeader? in
            do throws(VsockPacketError) { return try VsockHeader.decode(raw, maximumPayload: .max) } catch { return nil }
        }
        precondition(decoded == header, "we emitted an undecodable header")
    }
}

private func checkInvariants(_ connection: VsockConnection) {
    let credit = connection.credit
    precondition(connection.readable <= Int(credit.bufAlloc), "ring holds more than buf_alloc")
    precondition(UInt32(connection.readable) == credit.buffered, "ring and credit disagree")
    precondition(credit.rxCount &- credit.advertisedFwdCnt <= credit.bufAlloc, "peer could overrun us")
    precondition(credit.inFlight <= VsockCredit.maximumWindow, "in flight beyond the window")
    precondition(credit.peerFree <= VsockCredit.maximumWindow, "credit beyond the window")
    precondition(connection.writable <= Int(credit.peerFree), "writable beyond credit")
    if connection.state == .closed {
        precondition(connection.closeReason != nil && !connection.isSendOpen, "closed but open")
    }
}

private func makeConnection(_ selector: UInt8) -> VsockConnection {
    let nearWrap = selector & 0x10 != 0
    let txStart: UInt32 = nearWrap ? UInt32.max - UInt32(selector & 0x0F) * 17 : 0
    let rxStart: UInt32 = nearWrap ? UInt32.max - UInt32(selector >> 5) * 13 : 0
    let capacity = [64, 100, 4096, 65536][Int(selector >> 2) & 3]
    let packet = [16, 100, 4096, 65536][Int(selector >> 6) & 3]
    let request = VsockHeader(source: peer, destination: local, op: .request, bufAlloc: 256, fwdCnt: txStart)
    switch selector & 3 {
    case 0:
        return VsockConnection.connect(from: local, to: peer, receiveCapacity: capacity, maximumPacketPayload: packet,
                                       txStart: txStart, rxStart: rxStart).connection
    case 1:
        return VsockConnection(request: request, receiveCapacity: capacity, maximumPacketPayload: packet,
                               txStart: txStart, rxStart: rxStart)!
    case 2:
        let connection = VsockConnection(request: request, receiveCapacity: capacity, maximumPacketPayload: packet,
                                         txStart: txStart, rxStart: rxStart)!
        _ = connection.accept()
        return connection
    default:
        let connection = VsockConnection.connect(from: local, to: peer, receiveCapacity: capacity, maximumPacketPayload: packet,
                                                 txStart: txStart, rxStart: rxStart).connection
        let response = VsockHeader(source: peer, destination: local, op: .response, bufAlloc: 300, fwdCnt: txStart)
        _ = connection.handle(response, payload: UnsafeRawBufferPointer(start: nil, count: 0))
        return connection
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var script = Script(bytes: UnsafeRawBufferPointer(start: data, count: size))

    // The whole input as one packet: decoding must never trap, whatever the bytes.
    do throws(VsockPacketError) { _ = try VsockHeader.decode(script.bytes) } catch {
        _ = VsockHeader.reset(replyingToUndecodable: script.bytes)
    }

    let connection = makeConnection(script.byte())
    checkInvariants(connection)
    var steps = 0
    while !script.isEmpty && steps < 512 {
        steps += 1
        let control = script.byte()
        switch control & 7 {
        case 0 ... 3:
            let length = Int(script.byte()) | Int(script.byte()) << 8
            let bytes = script.take(length)
            var decoded: VsockHeader?
            do throws(VsockPacketError) { decoded = try VsockHeader.decode(bytes, maximumPayload: 70_000) } catch {
                if let reply = VsockHeader.reset(replyingToUndecodable: bytes) { precondition(reply.op == .rst) }
            }
            guard var header = decoded else { break }
            let aimed = control & 0x10 != 0
            if aimed { header.source = peer; header.destination = local }
            let payload = UnsafeRawBufferPointer(rebasing: bytes[VsockHeader.size ..< VsockHeader.size + Int(header.length)])
            let before = connection.readable
            let actions = connection.handle(header, payload: payload)
            check(actions, connection, stray: !aimed)
            if header.op == .rst { precondition(actions.isEmpty, "answered an RST") }
            precondition(connection.readable == before || connection.readable == before + Int(header.length), "partial buffering")
        case 4:
            let count = Int(script.byte()) * 97
            let buffer = [UInt8](repeating: 0x5A, count: count)
            let writable = connection.writable
            let (accepted, actions) = buffer.withUnsafeBytes { connection.write($0) }
            precondition(accepted >= 0 && accepted <= count && accepted <= writable, "wrote beyond credit")
            precondition(actions.filter { $0.header.op == .rw }.reduce(0) { $0 + $1.payload.count } == accepted, "payload sum")
            check(actions, connection, writeSize: count)
        case 5:
            var buffer = [UInt8](repeating: 0, count: Int(script.byte()) * 61)
            let before = connection.readable
            let (count, actions) = buffer.withUnsafeMutableBytes { connection.read(into: $0) }
            precondition(count == min(before, buffer.count), "short read with data buffered")
            check(actions, connection)
        case 6:
            let how = script.byte()
            let actions = how & 4 != 0 ? connection.close() : connection.shutdown(VsockShutdown(rawValue: UInt32(how & 3)))
            check(actions, connection)
        default:
            if script.byte() & 1 == 0 {
                check(connection.accept(), connection)
            } else {
                connection.transportReset()
            }
        }
        checkInvariants(connection)
    }
    return 0
}

fuzzMain(fuzz)
