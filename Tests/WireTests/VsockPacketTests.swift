import XCTest
@testable import Wire

final class VsockPacketTests: XCTestCase {
    private func decode(_ bytes: [UInt8], maximumPayload: UInt32 = VsockHeader.defaultMaximumPayload) throws(VsockPacketError) -> VsockHeader {
        var result: Result<VsockHeader, VsockPacketError> = .failure(.truncatedHeader)
        bytes.withUnsafeBytes { raw in
            do throws(VsockPacketError) { result = .success(try VsockHeader.decode(raw, maximumPayload: maximumPayload)) }
            catch { result = .failure(error) }
        }
        return try result.get()
    }

    private func assertRejects(_ bytes: [UInt8], _ expected: VsockPacketError, maximumPayload: UInt32 = VsockHeader.defaultMaximumPayload,
                               file: StaticString = #filePath, line: UInt = #line) {
        do {
            let header = try decode(bytes, maximumPayload: maximumPayload)
            XCTFail("accepted \(header)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, file: file, line: line)
        }
    }

    /// A raw header with every field chosen by the test.
    private func raw(op: UInt16, type: UInt16 = 1, length: UInt32 = 0, flags: UInt32 = 0) -> [UInt8] {
        var header = VsockHeader(source: guestAddress, destination: hostAddress, op: .rw)
        header.length = length
        header.flags = flags
        var bytes = wireBytes(Packet(header: header))
        bytes[28] = UInt8(type & 0xFF); bytes[29] = UInt8(type >> 8)
        bytes[30] = UInt8(op & 0xFF); bytes[31] = UInt8(op >> 8)
        return bytes
    }

    func testLayoutIsLittleEndianAndPacked() {
        let header = VsockHeader(source: VsockAddress(cid: 0x0102_0304_0506_0708, port: 0x1112_1314),
                                 destination: VsockAddress(cid: 0x2122_2324_2526_2728, port: 0x3132_3334),
                                 op: .rw, length: 0x4142_4344, flags: 0x5152_5354,
                                 bufAlloc: 0x6162_6364, fwdCnt: 0x7172_7374)
        let bytes = wireBytes(Packet(header: header))
        XCTAssertEqual(bytes, [
            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,   // src_cid
            0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21,   // dst_cid
            0x14, 0x13, 0x12, 0x11,                           // src_port
            0x34, 0x33, 0x32, 0x31,                           // dst_port
            0x44, 0x43, 0x42, 0x41,                           // len
            0x01, 0x00,                                       // type
            0x05, 0x00,                                       // op
            0x54, 0x53, 0x52, 0x51,                           // flags
            0x64, 0x63, 0x62, 0x61,                           // buf_alloc
            0x74, 0x73, 0x72, 0x71,                           // fwd_cnt
        ])
    }

    func testEveryOpRoundTrips() throws {
        for op in [VsockOp.request, .response, .rst, .shutdown, .rw, .creditUpdate, .creditRequest] {
            let length: UInt32 = op == .rw ? 3 : 0
            let header = VsockHeader(source: VsockAddress(cid: .max, port: .max), destination: guestAddress, op: op,
                                     length: length, flags: op == .shutdown ? 3 : 0, bufAlloc: 0xDEAD_BEEF, fwdCnt: .max)
            let decoded = try decode(wireBytes(Packet(header: header, payload: [1, 2, 3])))
            XCTAssertEqual(decoded, header)
        }
    }

    func testPayloadMayBeFollowedBySpareBuffer() throws {
        let header = VsockHeader(source: hostAddress, destination: guestAddress, op: .rw, length: 2)
        let decoded = try decode(wireBytes(Packet(header: header, payload: [9, 9, 0, 0, 0, 0])))
        XCTAssertEqual(decoded.length, 2)
    }

    func testRejectsShortHeaders() {
        assertRejects([], .truncatedHeader)
        assertRejects(Array(raw(op: 5).prefix(43)), .truncatedHeader)
    }

    func testRejectsUnknownOps() {
        assertRejects(raw(op: 0), .unknownOperation(0))
        assertRejects(raw(op: 8), .unknownOperation(8))
        assertRejects(raw(op: 0xFFFF), .unknownOperation(0xFFFF))
    }

    func testRejectsNonStreamTypes() {
        assertRejects(raw(op: 5, type: 0), .unsupportedType(0))
        assertRejects(raw(op: 5, type: 2), .unsupportedType(2))     // SEQPACKET (virtio 1.2)
        assertRejects(raw(op: 99, type: 2), .unsupportedType(2))    // type is judged first: it needs an RST
    }

    func testRejectsPayloadOnControlPackets() {
        for op in [VsockOp.request, .response, .rst, .shutdown, .creditUpdate, .creditRequest] {
            assertRejects(raw(op: op.rawValue, length: 1) + [0], .payloadOnControlPacket(op))
        }
    }

    func testRejectsPayloadOverTheCallersMaximum() {
        assertRejects(raw(op: 5, length: 17) + [UInt8](repeating: 0, count: 17), .payloadTooLarge(17), maximumPayload: 16)
        assertRejects(raw(op: 5, length: .max), .payloadTooLarge(.max))
        XCTAssertNoThrow(try decode(raw(op: 5, length: 16) + [UInt8](repeating: 0, count: 16), maximumPayload: 16))
    }

    func testRejectsPayloadLongerThanTheBytesThatFollow() {
        assertRejects(raw(op: 5, length: 10) + [1, 2, 3, 4, 5], .truncatedPayload(10))
        assertRejects(raw(op: 5, length: 1), .truncatedPayload(1))
    }

    func testShutdownFlagsOutsideBitsZeroAndOneAreRejected() throws {
        for flags: UInt32 in 0 ... 3 { XCTAssertEqual(try decode(raw(op: 4, flags: flags)).shutdown.rawValue, flags) }
        assertRejects(raw(op: 4, flags: 4), .invalidShutdownFlags(4))
        assertRejects(raw(op: 4, flags: 0x8000_0001), .invalidShutdownFlags(0x8000_0001))
        // Other ops carry flags uninterpreted.
        XCTAssertEqual(try decode(raw(op: 6, flags: 0xFFFF_FFFF)).flags, 0xFFFF_FFFF)
    }

    func testResetRepliesSwapAddressesAndNeverAnswerAReset() {
        let request = VsockHeader(source: hostAddress, destination: guestAddress, op: .request, bufAlloc: 7, fwdCnt: 9)
        let reply = VsockHeader.reset(replyingTo: request)
        XCTAssertEqual(reply, VsockHeader(source: guestAddress, destination: hostAddress, op: .rst))
        XCTAssertNil(VsockHeader.reset(replyingTo: reply!))
    }

    func testResetReplyToUndecodableBytes() {
        var bytes = raw(op: 5, type: 2)   // guest -> host, SEQPACKET
        let reply = bytes.withUnsafeBytes { VsockHeader.reset(replyingToUndecodable: $0) }
        XCTAssertEqual(reply, VsockHeader(source: hostAddress, destination: guestAddress, op: .rst))
        bytes[30] = 3                      // an RST of unknown type: stay silent
        XCTAssertNil(bytes.withUnsafeBytes { VsockHeader.reset(replyingToUndecodable: $0) })
        XCTAssertNil([UInt8](repeating: 0, count: 43).withUnsafeBytes { VsockHeader.reset(replyingToUndecodable: $0) })
    }
}
