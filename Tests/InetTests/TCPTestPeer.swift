// Test doubles for the TCP tests: an IPv4Output that keeps every segment the stack sends,
// and a scripted peer that builds the segments a remote TCP would send.
import Inet
import Wire
import XCTest

/// What the stack under test sends, decoded.
struct SentSegment {
    var header: TCPHeader
    var data: [UInt8]
    var flags: TCPFlags { header.flags }
    var sequence: UInt32 { header.sequenceNumber }
    var acknowledgment: UInt32 { header.acknowledgmentNumber }
}

/// Captures the stack's datagrams; `refuse` makes `sendIPv4` fail (a full transmit ring).
final class TCPCapture: IPv4Output {
    let localAddress: IPv4Address
    let maximumPayload = 1480
    var datagrams: [(destination: IPv4Address, bytes: [UInt8])] = []
    var refuse = false

    init(_ address: IPv4Address) { localAddress = address }

    func sendIPv4(to destination: IPv4Address, protocol proto: IPProtocol, payloadLength: Int, now: UInt64,
                  fill: (UnsafeMutableRawBufferPointer) -> Void) -> Bool {
        if refuse { return false }
        precondition(proto == .tcp)
        var bytes = [UInt8](repeating: 0xEE, count: payloadLength)
        bytes.withUnsafeMutableBytes { fill($0) }
        datagrams.append((destination, bytes))
        return true
    }

    /// Decodes (checksum verified) and forgets everything sent so far.
    func take(file: StaticString = #filePath, line: UInt = #line) -> [SentSegment] {
        let taken = datagrams
        datagrams = []
        return taken.map { datagram in
            datagram.bytes.withUnsafeBytes { raw in
                do {
                    let header = try TCPHeader.decode(raw, source: localAddress, destination: datagram.destination)
                    return SentSegment(header: header, data: Array(raw[header.headerLength...]))
                } catch {
                    XCTFail("the stack sent a segment that does not decode: \(error)", file: file, line: line)
                    return SentSegment(header: TCPHeader(sourcePort: 0, destinationPort: 0, sequenceNumber: 0,
                                                         acknowledgmentNumber: 0, flags: [], window: 0), data: [])
                }
            }
        }
    }
}

/// A remote TCP the test plays by hand.
struct ScriptedPeer {
    static let toroAddress = IPv4Address(10, 0, 2, 15)
    static let peerAddress = IPv4Address(10, 0, 2, 2)

    var port: UInt16 = 40000
    var toroPort: UInt16 = 80
    /// The peer's next sequence number.
    var sequence: UInt32 = 1000
    var window: UInt16 = 65535

    /// The bytes of one segment from the peer to Toro.
    func segment(flags: TCPFlags, sequence: UInt32? = nil, ack: UInt32 = 0, window: UInt16? = nil,
                 mss: UInt16? = nil, data: [UInt8] = []) -> [UInt8] {
        let header = TCPHeader(sourcePort: port, destinationPort: toroPort, sequenceNumber: sequence ?? self.sequence,
                               acknowledgmentNumber: ack, flags: flags, window: window ?? self.window,
                               maximumSegmentSize: mss)
        var bytes = [UInt8](repeating: 0, count: header.encodedHeaderLength + data.count)
        bytes.withUnsafeMutableBytes { raw in
            raw.baseAddress!.advanced(by: header.encodedHeaderLength).copyMemory(from: data, byteCount: data.count)
            header.encode(into: raw, source: ScriptedPeer.peerAddress, destination: ScriptedPeer.toroAddress)
        }
        return bytes
    }

    /// Sends one segment into `stack`, advancing the peer's sequence by what it occupies.
    mutating func send(_ stack: TCPStack, flags: TCPFlags, ack: UInt32 = 0, window: UInt16? = nil, mss: UInt16? = nil,
                       data: [UInt8] = [], at sequence: UInt32? = nil, now: UInt64) {
        let bytes = segment(flags: flags, sequence: sequence, ack: ack, window: window, mss: mss, data: data)
        bytes.withUnsafeBytes {
            stack.receive(from: ScriptedPeer.peerAddress, to: ScriptedPeer.toroAddress, payload: $0, now: now)
        }
        if sequence == nil {
            self.sequence &+= UInt32(data.count) + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
        }
    }
}

/// A listening stack with one established connection from a ScriptedPeer.
struct Established {
    let capture = TCPCapture(ScriptedPeer.toroAddress)
    let stack: TCPStack
    let passive: TCPPassivePort
    let connection: TCPConnection
    var peer = ScriptedPeer()
    /// Toro's next sequence number (what the peer acknowledges up to).
    var toroSequence: UInt32
    var now: UInt64 = 1_000_000_000

    init(peerMSS: UInt16 = 1460, peerWindow: UInt16 = 65535) {
        stack = TCPStack(output: capture, secret: 42)
        passive = stack.listen(port: 80, maximumHalfOpen: 8)!
        peer.window = peerWindow
        peer.send(stack, flags: [.syn], mss: peerMSS, now: now)
        let synAck = capture.take()
        precondition(synAck.count == 1 && synAck[0].flags == [.syn, .ack])
        toroSequence = synAck[0].sequence &+ 1
        peer.send(stack, flags: [.ack], ack: toroSequence, now: now)
        connection = passive.takeEstablished()!
        precondition(connection.state == .established)
    }

    mutating func advance(_ nanoseconds: UInt64) {
        now += nanoseconds
        stack.tick(now: now)
    }

    /// Reads everything readable.
    func readAll() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 70000)
        let n = bytes.withUnsafeMutableBytes { connection.read(into: $0, now: now) }
        return Array(bytes[0 ..< n])
    }

    func write(_ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBytes { connection.write($0, now: now) }
    }
}

func pattern(_ count: Int, seed: UInt8 = 0) -> [UInt8] {
    (0 ..< count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) }
}
