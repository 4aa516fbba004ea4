import XCTest
@testable import Wire

final class InetIPv4ICMPTests: XCTestCase {
    /// The header often used to teach the checksum (UDP, 192.168.0.1 -> 192.168.0.199,
    /// total length 115, DF, TTL 64): its checksum field is b861.
    static let udpHeader = hexBytes("45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7")

    private func datagram(_ header: [UInt8] = udpHeader, padding: Int = 0) -> [UInt8] {
        let total = Int(header[2]) << 8 | Int(header[3])
        return header + [UInt8](repeating: 0xAB, count: max(0, total - header.count) + padding)
    }

    /// `header` with its checksum recomputed by the reference (so only one field is wrong).
    private func resummed(_ header: [UInt8]) -> [UInt8] {
        var bytes = header
        bytes[10] = 0; bytes[11] = 0
        let sum = referenceChecksum(Array(bytes[..<(Int(bytes[0] & 0xF) * 4)]))
        bytes[10] = UInt8(sum >> 8); bytes[11] = UInt8(sum & 0xFF)
        return bytes
    }

    func testKnownHeaderDecodes() throws {
        XCTAssertEqual(referenceChecksum(Self.udpHeader), 0)
        let header = try XCTUnwrap(decoding(datagram(padding: 7), IPv4Header.decode).value)
        XCTAssertEqual(header.source, IPv4Address(192, 168, 0, 1))
        XCTAssertEqual(header.destination, IPv4Address(192, 168, 0, 199))
        XCTAssertEqual(header.proto, .udp)
        XCTAssertEqual(header.timeToLive, 64)
        XCTAssertTrue(header.dontFragment)
        XCTAssertEqual(header.totalLength, 115)
        XCTAssertEqual(header.payloadRange, 20 ..< 115)    // the 7 bytes of padding are not data
    }

    func testEncodeWritesTheKnownHeader() {
        let header = IPv4Header(source: IPv4Address(192, 168, 0, 1), destination: IPv4Address(192, 168, 0, 199),
                                protocol: .udp, payloadLength: 95)
        XCTAssertEqual(encoding([UInt8](repeating: 0xCC, count: 20), header.encode), Self.udpHeader)
    }

    func testRoundTripAndDefaults() {
        var header = IPv4Header(source: guestIP, destination: gatewayIP, protocol: .tcp, payloadLength: 3, identification: 0xBEEF)
        XCTAssertTrue(header.dontFragment)
        XCTAssertEqual(header.timeToLive, 64)
        var bytes = encoding([UInt8](repeating: 0, count: 23), header.encode)
        XCTAssertEqual(referenceChecksum(Array(bytes[..<20])), 0)
        XCTAssertEqual(decoding(bytes, IPv4Header.decode).value, header)
        header.dontFragment = false; header.timeToLive = 1; header.typeOfService = 0xB8
        bytes = encoding(bytes, header.encode)
        XCTAssertEqual(bytes[6], 0)
        XCTAssertEqual(decoding(bytes, IPv4Header.decode).value, header)
    }

    func testOptionsAreSkipped() throws {
        // IHL 6 with a 4-byte option (NOP NOP NOP EOL), total 24 + 4 data bytes.
        let options = resummed(hexBytes("46 00 00 1c 12 34 40 00 40 06 00 00 0a 00 02 02 0a 00 02 0f 01 01 01 00"))
        let header = try XCTUnwrap(decoding(options + [1, 2, 3, 4], IPv4Header.decode).value)
        XCTAssertEqual(header.headerLength, 24)
        XCTAssertEqual(header.payloadRange, 24 ..< 28)
        XCTAssertEqual(header.proto, .tcp)
        // The largest header, IHL 15 (60 bytes), with no data.
        var big = hexBytes("4f 00 00 3c 00 00 00 00 40 01 00 00 0a 00 02 02 0a 00 02 0f") + [UInt8](repeating: 1, count: 40)
        big = resummed(big)
        XCTAssertEqual(decoding(big, IPv4Header.decode).value?.payloadLength, 0)
        XCTAssertEqual(decoding(Array(big[..<59]), IPv4Header.decode).error, .truncated)
    }

    func testRefusals() {
        let good = datagram()
        for length in 0 ..< 20 {
            XCTAssertEqual(decoding(Array(good[..<length]), IPv4Header.decode).error, .truncated, "\(length)")
        }
        for length in 20 ..< 115 {
            XCTAssertEqual(decoding(Array(good[..<length]), IPv4Header.decode).error, .badTotalLength(115), "\(length)")
        }
        var bad = good; bad[0] = 0x65
        XCTAssertEqual(decoding(bad, IPv4Header.decode).error, .badVersion(6))
        for ihl: UInt8 in 0 ..< 5 {
            bad = good; bad[0] = 0x40 | ihl
            XCTAssertEqual(decoding(bad, IPv4Header.decode).error, .badHeaderLength(ihl))
        }
        bad = good; bad[0] = 0x4F    // IHL 15 = 60 bytes, fits, but total length 19 < header
        bad[2] = 0; bad[3] = 19
        XCTAssertEqual(decoding(bad, IPv4Header.decode).error, .badTotalLength(19))
        bad = good; bad[3] = 19
        XCTAssertEqual(decoding(bad, IPv4Header.decode).error, .badTotalLength(19))
        for index in [1, 5, 8, 11, 15, 19] {
            bad = good; bad[index] ^= 0x01
            XCTAssertEqual(decoding(bad, IPv4Header.decode).error, .badChecksum, "byte \(index)")
        }
        // Fragments: MF (first fragment), an offset (last), both; the checksum fixed each time.
        for (high, low) in [(0x20, 0x00), (0x00, 0x01), (0x21, 0x00), (0x40 | 0x1F, 0xFF)] as [(UInt8, UInt8)] {
            bad = good; bad[6] = high; bad[7] = low
            XCTAssertEqual(decoding(resummed(bad), IPv4Header.decode).error, .fragment)
            // A corrupted fragment is a checksum error first.
            XCTAssertEqual(decoding(bad, IPv4Header.decode).error, .badChecksum)
        }
    }

    // MARK: ICMP echo

    /// ping's echo request: type 8, id 0x1234, seq 1, data "abcdefgh"; checksum 5435 by hand.
    static let echo = hexBytes("08 00 54 35 12 34 00 01 61 62 63 64 65 66 67 68")

    func testKnownEcho() throws {
        var zeroed = Self.echo; zeroed[2] = 0; zeroed[3] = 0
        XCTAssertEqual(referenceChecksum(zeroed), 0x5435)
        let request = try XCTUnwrap(decoding(Self.echo, ICMPEcho.decode).value)
        XCTAssertEqual(request, ICMPEcho(kind: .request, identifier: 0x1234, sequence: 1))
        XCTAssertEqual(encoding(zeroed, request.encode), Self.echo)

        // The reply: same data, type 0; checksum 5435 + 0800 (RFC 1624's incremental update).
        let reply = encoding(Self.echo, request.reply.encode)
        XCTAssertEqual(reply, hexBytes("00 00 5c 35 12 34 00 01 61 62 63 64 65 66 67 68"))
        XCTAssertEqual(decoding(reply, ICMPEcho.decode).value, request.reply)
    }

    func testEchoOddLengthAndEmpty() {
        for count in [0, 1, 7, 33] {
            let message = encoding([UInt8](repeating: 0, count: 8) + (0 ..< count).map { UInt8($0 * 7 & 0xFF) },
                                   ICMPEcho(kind: .reply, identifier: 9, sequence: 0xFFFF).encode)
            XCTAssertEqual(referenceChecksum(message), 0)
            XCTAssertEqual(decoding(message, ICMPEcho.decode).value, ICMPEcho(kind: .reply, identifier: 9, sequence: 0xFFFF))
        }
    }

    func testEchoRefusals() {
        for length in 0 ..< 8 {
            XCTAssertEqual(decoding(Array(Self.echo[..<length]), ICMPEcho.decode).error, .truncated)
        }
        var bad = Self.echo; bad[15] ^= 0x80
        XCTAssertEqual(decoding(bad, ICMPEcho.decode).error, .badChecksum)
        XCTAssertEqual(decoding(Self.echo + [0], ICMPEcho.decode).value != nil, true)    // a zero pad sums to nothing
        XCTAssertEqual(decoding(Self.echo + [1], ICMPEcho.decode).error, .badChecksum)
        // Destination unreachable (3) and a non-zero code, checksums fixed.
        var unreachable = Self.echo; unreachable[0] = 3
        XCTAssertEqual(decoding(fixed(unreachable), ICMPEcho.decode).error, .notEcho(3))
        var code = Self.echo; code[1] = 1
        XCTAssertEqual(decoding(fixed(code), ICMPEcho.decode).error, .badCode(1))
    }

    private func fixed(_ message: [UInt8]) -> [UInt8] {
        var bytes = message
        bytes[2] = 0; bytes[3] = 0
        let sum = referenceChecksum(bytes)
        bytes[2] = UInt8(sum >> 8); bytes[3] = UInt8(sum & 0xFF)
        return bytes
    }
}
