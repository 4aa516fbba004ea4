// Helpers for the NetInterface tests: frames built byte by byte (not with the codecs under
// test), an independent RFC 1071 checksum, a NIC that records what it was given, and a fake
// transport that records what it receives.
@testable import Inet
import Wire
import XCTest

extension MACAddress {
    var bytes: [UInt8] { (0 ..< 6).map { UInt8(truncatingIfNeeded: rawValue >> UInt64(40 - 8 * $0)) } }
}

extension IPv4Address {
    var bytes: [UInt8] { (0 ..< 4).map { UInt8(truncatingIfNeeded: rawValue >> UInt32(24 - 8 * $0)) } }
}

func be16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }

/// RFC 1071 §4.1, one 16-bit word at a time.
func checksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var i = 0
    while i < bytes.count {
        sum += UInt32(bytes[i]) << 8 | (i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0)
        sum = (sum & 0xFFFF) + (sum >> 16)
        i += 2
    }
    return ~UInt16(sum)
}

func ethernet(to destination: MACAddress, from source: MACAddress, type: Int, _ payload: [UInt8]) -> [UInt8] {
    destination.bytes + source.bytes + be16(type) + payload
}

func arp(_ operation: Int, senderMAC: MACAddress, sender: IPv4Address, targetMAC: MACAddress = .zero,
         target: IPv4Address) -> [UInt8] {
    [0, 1, 8, 0, 6, 4] + be16(operation) + senderMAC.bytes + sender.bytes + targetMAC.bytes + target.bytes
}

/// A 20-byte IPv4 header (checksum filled in unless `badChecksum`) followed by `payload`.
func ipv4(from source: IPv4Address, to destination: IPv4Address, protocol proto: UInt8, _ payload: [UInt8],
          identification: Int = 0x1234, flags: Int = 0x4000, ttl: UInt8 = 64, badChecksum: Bool = false) -> [UInt8] {
    var header: [UInt8] = [0x45, 0] + be16(20 + payload.count) + be16(identification) + be16(flags) + [ttl, proto, 0, 0]
        + source.bytes + destination.bytes
    var sum = checksum(header)
    if badChecksum { sum ^= 0x0101 }
    header[10] = UInt8(sum >> 8)
    header[11] = UInt8(sum & 0xFF)
    return header + payload
}

/// An ICMP echo message (type 8 request, 0 reply) with its checksum.
func icmpEcho(type: UInt8, identifier: Int, sequence: Int, _ data: [UInt8]) -> [UInt8] {
    var message: [UInt8] = [type, 0, 0, 0] + be16(identifier) + be16(sequence) + data
    let sum = checksum(message)
    message[2] = UInt8(sum >> 8)
    message[3] = UInt8(sum & 0xFF)
    return message
}

/// Pads a frame to Ethernet's 60-byte minimum, as NetInterface sends them.
func padded(_ frame: [UInt8]) -> [UInt8] { frame + [UInt8](repeating: 0, count: max(0, 60 - frame.count)) }

/// A transport that records each delivery and answers `tick` and `nextDeadline` as told.
final class RecordingTransport: IPv4Transport {
    var received: [(source: IPv4Address, destination: IPv4Address, payload: [UInt8], now: UInt64)] = []
    var ticks: [UInt64] = []
    var nextDeadline: UInt64? = nil

    func receive(from source: IPv4Address, to destination: IPv4Address, payload: UnsafeRawBufferPointer, now: UInt64) {
        received.append((source, destination, Array(payload), now))
    }

    func tick(now: UInt64) { ticks.append(now) }
}

/// A NetInterface on 10.0.2.15/24 via 10.0.2.2 whose NIC records every frame (and takes
/// them unless `refuse` is set).
final class TestNetwork {
    static let ourMAC = MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56)
    static let peerMAC = MACAddress(0x52, 0x55, 0x0A, 0x00, 0x02, 0x02)
    static let ours = IPv4Address(10, 0, 2, 15)
    static let gateway = IPv4Address(10, 0, 2, 2)

    var sent: [[UInt8]] = []
    var refuse = false
    var interface: NetInterface!

    init(configuration: InetConfiguration = .userNetworking, arpLimits: ARPLimits = ARPLimits()) {
        interface = NetInterface(mac: TestNetwork.ourMAC, configuration: configuration, arpLimits: arpLimits) { [unowned self] frame in
            if refuse { return false }
            sent.append(Array(frame))
            return true
        }
    }

    func receive(_ frame: [UInt8], now: UInt64 = 0) {
        frame.withUnsafeBytes { interface.receive(frame: $0, now: now) }
    }

    /// Takes the frames sent so far.
    func take() -> [[UInt8]] {
        defer { sent = [] }
        return sent
    }

    /// Teaches the interface `mac` for `address` with an ARP request for its address, and
    /// discards the reply.
    func learn(_ address: IPv4Address, _ mac: MACAddress, now: UInt64 = 0) {
        receive(ethernet(to: .broadcast, from: mac, type: 0x0806,
                         arp(1, senderMAC: mac, sender: address, target: TestNetwork.ours)), now: now)
        _ = take()
    }

    /// Sends `payload` as a datagram through `sendIPv4`.
    @discardableResult
    func send(_ payload: [UInt8], to destination: IPv4Address, protocol proto: IPProtocol = .tcp, now: UInt64 = 0) -> Bool {
        interface.sendIPv4(to: destination, protocol: proto, payloadLength: payload.count, now: now) { buffer in
            XCTAssertEqual(buffer.count, payload.count)
            buffer.copyBytes(from: payload)
        }
    }
}
