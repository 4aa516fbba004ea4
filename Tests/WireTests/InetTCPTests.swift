import XCTest
@testable import Wire

final class InetTCPTests: XCTestCase {
    /// A SYN as slirp forwards a host connection: 10.0.2.2:40000 -> 10.0.2.15:80, seq
    /// 0x01020304, window 8760, MSS 1460; checksum bd47 computed outside Swift.
    static let syn = hexBytes("9c 40 00 50 01 02 03 04 00 00 00 00 60 02 22 38 bd 47 00 00 02 04 05 b4")
    /// The same SYN in its frame: Ethernet from slirp's MAC, IPv4 with DF and checksum 22bc.
    static let synFrame = hexBytes("""
        52 54 00 12 34 56  52 55 0a 00 02 02  08 00
        45 00 00 2c 00 00 40 00 40 06 22 bc 0a 00 02 02 0a 00 02 0f
        """) + syn + [0, 0]    // 58 bytes, padded to the 60-byte minimum
    static let gateway: [UInt8] = [10, 0, 2, 2]
    static let guest: [UInt8] = [10, 0, 2, 15]

    private func decodeSegment(_ bytes: [UInt8], source: IPv4Address = gatewayIP,
                               destination: IPv4Address = guestIP) -> Result<TCPHeader, TCPError> {
        decoding(bytes) { raw throws(TCPError) in try TCPHeader.decode(raw, source: source, destination: destination) }
    }

    /// `segment` with its checksum recomputed by the reference over the pseudo-header.
    private func resummed(_ segment: [UInt8], source: [UInt8] = gateway, destination: [UInt8] = guest) -> [UInt8] {
        var bytes = segment
        bytes[16] = 0; bytes[17] = 0
        let sum = referenceChecksum(pseudoHeaderBytes(source: source, destination: destination, protocol: 6, length: bytes.count) + bytes)
        bytes[16] = UInt8(sum >> 8); bytes[17] = UInt8(sum & 0xFF)
        return bytes
    }

    func testKnownSYN() throws {
        XCTAssertEqual(resummed(Self.syn), Self.syn)    // the reference agrees with the literal
        let header = try XCTUnwrap(decodeSegment(Self.syn).value)
        let expected = TCPHeader(sourcePort: 40000, destinationPort: 80, sequenceNumber: 0x0102_0304, acknowledgmentNumber: 0,
                                 flags: .syn, window: 8760, maximumSegmentSize: 1460)
        XCTAssertEqual(header, expected)
        XCTAssertEqual(header.headerLength, 24)
        XCTAssertEqual(encoding([UInt8](repeating: 0x55, count: 24)) { expected.encode(into: $0, source: gatewayIP, destination: guestIP) },
                       Self.syn)
    }

    /// The whole frame through every layer, each taking the range the one above names.
    func testFrameThroughAllLayers() throws {
        let frame = Self.synFrame
        XCTAssertEqual(frame.count, 60)
        let ethernet = try XCTUnwrap(decoding(frame, EthernetHeader.decode).value)
        XCTAssertEqual(ethernet.etherType, .ipv4)
        XCTAssertEqual(ethernet.destination, guestMAC)
        let packet = Array(frame[EthernetHeader.size...])
        let ip = try XCTUnwrap(decoding(packet, IPv4Header.decode).value)
        XCTAssertEqual(ip.proto, .tcp)
        XCTAssertEqual(ip.payloadRange, 20 ..< 44)
        let tcp = try XCTUnwrap(decodeSegment(Array(packet[ip.payloadRange]), source: ip.source, destination: ip.destination).value)
        XCTAssertEqual(tcp.maximumSegmentSize, 1460)
        // The padding must not reach TCP: with it the checksum fails.
        XCTAssertEqual(decodeSegment(Array(packet[20...])).error, .badChecksum)
        // IPv4 encode reproduces the header bytes.
        let header = IPv4Header(source: gatewayIP, destination: guestIP, protocol: .tcp, payloadLength: 24)
        XCTAssertEqual(encoding([UInt8](repeating: 0, count: 20), header.encode), Array(packet[..<20]))
    }

    /// A reply with odd-length data ("hello") and PSH|ACK; checksum 9d35 computed outside Swift.
    func testDataSegmentRoundTrip() throws {
        let header = TCPHeader(sourcePort: 80, destinationPort: 40000, sequenceNumber: 0x0A0B_0C0D, acknowledgmentNumber: 0x0102_0305,
                               flags: [.psh, .ack], window: 65535)
        let segment = encoding([UInt8](repeating: 0, count: 20) + Array("hello".utf8)) {
            header.encode(into: $0, source: guestIP, destination: gatewayIP)
        }
        XCTAssertEqual(Array(segment[..<20]), hexBytes("00 50 9c 40 0a 0b 0c 0d 01 02 03 05 50 18 ff ff 9d 35 00 00"))
        XCTAssertEqual(resummed(segment, source: Self.guest, destination: Self.gateway), segment)
        XCTAssertEqual(decodeSegment(segment, source: guestIP, destination: gatewayIP).value, header)
        // Addresses are part of the sum: the wrong ones (swapped included) fail.
        XCTAssertEqual(decodeSegment(segment, source: gatewayIP, destination: gatewayIP).error, .badChecksum)
        XCTAssertEqual(decoding(segment) { raw throws(TCPError) in
            try TCPHeader.decode(raw, source: IPv4Address(10, 0, 2, 16), destination: gatewayIP)
        }.error, .badChecksum)
    }

    func testEveryFlagAndFieldRoundTrips() {
        for bits in [0x00, 0x01, 0x12, 0x14, 0xFF] as [UInt8] {
            let header = TCPHeader(sourcePort: 0xFFFF, destinationPort: 1, sequenceNumber: .max, acknowledgmentNumber: 0x8000_0001,
                                   flags: TCPFlags(rawValue: bits), window: 0, urgentPointer: 0x1234,
                                   maximumSegmentSize: bits & 2 != 0 ? 536 : nil)
            let segment = encoding([UInt8](repeating: 0, count: header.encodedHeaderLength + 3)) {
                header.encode(into: $0, source: guestIP, destination: gatewayIP)
            }
            XCTAssertEqual(decodeSegment(segment, source: guestIP, destination: gatewayIP).value, header)
        }
    }

    func testOptionsWalk() throws {
        // NOP NOP, window scale (3, 3), SACK permitted (4, 2), timestamps (8, 10), MSS, EOL, padding:
        // everything but MSS skipped by its length; 40 option bytes, data offset 15.
        let options = hexBytes("01 01 03 03 07 04 02 08 0a 00 00 00 01 00 00 00 02 02 04 02 18 00") + [UInt8](repeating: 0xEE, count: 18)
        XCTAssertEqual(options.count, 40)
        var segment = Array(Self.syn[..<20]) + options
        segment[12] = 0xF0
        let header = try XCTUnwrap(decodeSegment(resummed(segment)).value)
        XCTAssertEqual(header.maximumSegmentSize, 0x0218)
        XCTAssertEqual(header.headerLength, 60)
        // No options at all; only NOPs; an EOL first (what follows is never read).
        XCTAssertEqual(options.withUnsafeBytes { TCPOptions.parse(UnsafeRawBufferPointer(rebasing: $0[0 ..< 0])) }, TCPOptions())
        XCTAssertEqual([UInt8](repeating: 1, count: 8).withUnsafeBytes { TCPOptions.parse($0) }, TCPOptions())
        XCTAssertEqual(hexBytes("00 02 04 05 b4").withUnsafeBytes { TCPOptions.parse($0) }, TCPOptions())
        // Two MSS options: the last one wins.
        XCTAssertEqual(hexBytes("02 04 05 b4 02 04 02 00").withUnsafeBytes { TCPOptions.parse($0) }, TCPOptions(maximumSegmentSize: 512))
    }

    func testMalformedOptions() {
        let malformed = [
            "02",                    // MSS without its length byte
            "01 01 01 08",           // unknown kind at the last byte
            "08 00 00 00",           // length 0 (would loop forever)
            "08 01 00 00",           // length 1
            "08 05 00 00",           // runs past the header
            "02 03 05 00",           // MSS of length 3
            "02 06 05 b4 00 00",     // MSS of length 6
            "02 04 05",              // MSS cut by the header (length 4, 3 bytes left)
        ]
        for text in malformed {
            let options = hexBytes(text)
            XCTAssertNil(options.withUnsafeBytes { TCPOptions.parse($0) }, text)
            // The same list in a header, padded with EOL to a word.
            let padded = options + [UInt8](repeating: 0, count: (4 - options.count % 4) % 4)
            // (Padding can repair a list: "02 04 05" + 00 is an MSS of 0x0500.)
            var segment = Array(Self.syn[..<20]) + padded
            segment[12] = UInt8(5 + padded.count / 4) << 4
            let expected: TCPError? = padded.withUnsafeBytes { TCPOptions.parse($0) } == nil ? .malformedOptions : nil
            XCTAssertEqual(expected == nil, text == "02 04 05", text)
            XCTAssertEqual(decodeSegment(resummed(segment)).error, expected, text)
        }
    }

    func testRefusals() {
        for length in 0 ..< 20 {
            XCTAssertEqual(decodeSegment(Array(Self.syn[..<length])).error, .truncated, "\(length)")
        }
        // Cut inside the options: the data offset (6) runs past the segment.
        for length in 20 ..< 24 {
            XCTAssertEqual(decodeSegment(Array(Self.syn[..<length])).error, .dataOffsetPastSegment(6), "\(length)")
        }
        for offset: UInt8 in 0 ..< 5 {
            var bad = Self.syn; bad[12] = offset << 4
            XCTAssertEqual(decodeSegment(bad).error, .badDataOffset(offset))
        }
        for offset: UInt8 in 7 ... 15 {
            var bad = Self.syn; bad[12] = offset << 4
            XCTAssertEqual(decodeSegment(bad).error, .dataOffsetPastSegment(offset))
        }
        for index in 0 ..< Self.syn.count where index != 12 {
            var bad = Self.syn; bad[index] ^= 0x10
            XCTAssertEqual(decodeSegment(bad).error, .badChecksum, "byte \(index)")
        }
        // A checksum that verifies but malformed options: refused after the sum.
        var bad = Self.syn; bad[21] = 1
        XCTAssertEqual(decodeSegment(resummed(bad)).error, .malformedOptions)
        // Reserved bits are ignored.
        bad = Self.syn; bad[12] |= 0x0F
        XCTAssertEqual(decodeSegment(resummed(bad)).value?.maximumSegmentSize, 1460)
    }
}
