import XCTest
@testable import Wire

final class InetEthernetARPTests: XCTestCase {
    /// "Who has 10.0.2.15? Tell 10.0.2.2" as slirp broadcasts it, padded to 60 bytes.
    static let slirpRequest = hexBytes("""
        ff ff ff ff ff ff  52 55 0a 00 02 02  08 06
        00 01 08 00 06 04 00 01  52 55 0a 00 02 02  0a 00 02 02  00 00 00 00 00 00  0a 00 02 0f
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        """)
    /// The guest's answer (RFC 826: sender and target swapped, opcode 2), unpadded.
    static let guestReply = hexBytes("""
        52 55 0a 00 02 02  52 54 00 12 34 56  08 06
        00 01 08 00 06 04 00 02  52 54 00 12 34 56  0a 00 02 0f  52 55 0a 00 02 02  0a 00 02 02
        """)

    func testSlirpRequestDecodesAndIsAnswered() throws {
        let frame = Self.slirpRequest
        XCTAssertEqual(frame.count, 60)
        let ethernet = try XCTUnwrap(decoding(frame, EthernetHeader.decode).value)
        XCTAssertEqual(ethernet, EthernetHeader(destination: .broadcast, source: slirpMAC, etherType: .arp))
        XCTAssertTrue(ethernet.destination.isGroup)
        let arp = try XCTUnwrap(decoding(Array(frame[14...]), ARPPacket.decode).value)
        XCTAssertEqual(arp, ARPPacket.request(from: slirpMAC, address: gatewayIP, asking: guestIP))

        let reply = arp.reply(from: guestMAC)
        let bytes = encoding([UInt8](repeating: 0xEE, count: 42)) { buffer in
            EthernetHeader(destination: arp.senderMAC, source: guestMAC, etherType: .arp).encode(into: buffer)
            reply.encode(into: UnsafeMutableRawBufferPointer(rebasing: buffer[14...]))
        }
        XCTAssertEqual(bytes, Self.guestReply)
        XCTAssertEqual(decoding(Array(bytes[14...]), ARPPacket.decode).value, reply)
    }

    func testEncodeRequestMatchesSlirpBytes() {
        let bytes = encoding([UInt8](repeating: 0, count: 60)) { buffer in
            EthernetHeader(destination: .broadcast, source: slirpMAC, etherType: .arp).encode(into: buffer)
            ARPPacket.request(from: slirpMAC, address: gatewayIP, asking: guestIP)
                .encode(into: UnsafeMutableRawBufferPointer(rebasing: buffer[14...]))
        }
        XCTAssertEqual(bytes, Self.slirpRequest)
    }

    func testEthernetRefusals() {
        for length in 0 ..< 14 {
            XCTAssertEqual(decoding(Array(Self.slirpRequest[..<length]), EthernetHeader.decode).error, .truncated, "\(length)")
        }
        var tagged = Self.slirpRequest
        tagged[12] = 0x81; tagged[13] = 0x00
        XCTAssertEqual(decoding(tagged, EthernetHeader.decode).error, .vlanTagged)
        tagged[12] = 0x88; tagged[13] = 0xA8
        XCTAssertEqual(decoding(tagged, EthernetHeader.decode).error, .vlanTagged)
        var ieee = Self.slirpRequest
        ieee[12] = 0x05; ieee[13] = 0xFF
        XCTAssertEqual(decoding(ieee, EthernetHeader.decode).error, .notEthernetII(0x05FF))
        ieee[12] = 0x06; ieee[13] = 0x00
        XCTAssertEqual(decoding(ieee, EthernetHeader.decode).value?.etherType, EtherType(rawValue: 0x0600))
    }

    func testARPRefusals() {
        let arp = Array(Self.slirpRequest[14 ..< 42])
        for length in 0 ..< 28 {
            XCTAssertEqual(decoding(Array(arp[..<length]), ARPPacket.decode).error, .truncated, "\(length)")
        }
        var bad = arp
        bad[1] = 6
        XCTAssertEqual(decoding(bad, ARPPacket.decode).error, .unsupportedHardware(6))
        bad = arp; bad[2] = 0x86; bad[3] = 0xDD
        XCTAssertEqual(decoding(bad, ARPPacket.decode).error, .unsupportedProtocol(0x86DD))
        bad = arp; bad[4] = 8
        XCTAssertEqual(decoding(bad, ARPPacket.decode).error, .badAddressLengths(hardware: 8, protocol: 4))
        bad = arp; bad[5] = 16
        XCTAssertEqual(decoding(bad, ARPPacket.decode).error, .badAddressLengths(hardware: 6, protocol: 16))
        for op: UInt8 in [0, 3, 4, 8] {
            bad = arp; bad[7] = op
            XCTAssertEqual(decoding(bad, ARPPacket.decode).error, .unknownOperation(UInt16(op)))
        }
    }

    func testRoundTrips() {
        let header = EthernetHeader(destination: MACAddress(rawValue: 0x0102_0304_0506), source: MACAddress(rawValue: 0xA1A2_A3A4_A5A6),
                                    etherType: .ipv4)
        let bytes = encoding([UInt8](repeating: 0, count: 14), header.encode)
        XCTAssertEqual(bytes, hexBytes("01 02 03 04 05 06 a1 a2 a3 a4 a5 a6 08 00"))
        XCTAssertEqual(decoding(bytes, EthernetHeader.decode).value, header)
        XCTAssertTrue(header.destination.isGroup)    // 01: the I/G bit (multicast)
        XCTAssertFalse(guestMAC.isGroup)
        XCTAssertEqual(MACAddress(rawValue: .max), .broadcast)

        let packet = ARPPacket(operation: .reply, senderMAC: MACAddress(rawValue: 0xFEDC_BA98_7654), senderAddress: IPv4Address(rawValue: 0xC0A8_0001),
                               targetMAC: MACAddress(rawValue: 1), targetAddress: IPv4Address(rawValue: 0xFFFF_FFFE))
        XCTAssertEqual(decoding(encoding([UInt8](repeating: 0, count: 28), packet.encode), ARPPacket.decode).value, packet)
    }
}
