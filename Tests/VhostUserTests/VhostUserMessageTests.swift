// Decoding vhost-user messages (QEMU docs/interop/vhost-user.rst "Message Specification"),
// well-formed and malformed, and the SCM_RIGHTS channel over a real socket pair.
import XCTest
import Glibc
@testable import VhostUser

final class VhostUserMessageTests: XCTestCase {
    func header(_ request: VhostUserRequest, size: Int, flags: UInt32 = VhostUserFlags.version) -> VhostUserHeader {
        VhostUserHeader(request: request.rawValue, flags: flags, size: UInt32(size))
    }

    func decode(_ request: VhostUserRequest, _ payload: [UInt8], fds: [Int32] = [],
                flags: UInt32 = VhostUserFlags.version) throws(VhostUserError) -> VhostUserMessage {
        try VhostUserMessage.decode(header: header(request, size: payload.count, flags: flags), payload: payload, fds: fds)
    }

    func testHeaderRoundTrip() throws {
        let original = VhostUserHeader(request: 24, flags: VhostUserFlags.version | VhostUserFlags.needReply, size: 20)
        let decoded = try VhostUserHeader.decode(original.encode())
        XCTAssertEqual(decoded, original)
        XCTAssertTrue(decoded.needsReply)
    }

    func testHeaderValidation() {
        XCTAssertThrowsError(try VhostUserHeader.decode([1, 0, 0, 0, 1])) {
            XCTAssertEqual($0 as? VhostUserError, .truncatedHeader(got: 5))
        }
        XCTAssertThrowsError(try VhostUserHeader.decode(VhostUserHeader(request: 1, flags: 2, size: 0).encode())) {
            XCTAssertEqual($0 as? VhostUserError, .badVersion(flags: 2))
        }
        XCTAssertThrowsError(try VhostUserHeader.decode(VhostUserHeader(request: 5, size: 1 << 20).encode())) {
            XCTAssertEqual($0 as? VhostUserError, .payloadTooLarge(request: 5, size: 1 << 20))
        }
    }

    func testSimpleRequests() throws {
        XCTAssertEqual(try decode(.getFeatures, []).command, .getFeatures)
        XCTAssertEqual(try decode(.setFeatures, VhostUserEncoder.u64(1 << 32)).command, .setFeatures(1 << 32))
        XCTAssertEqual(try decode(.setVringNum, VhostUserEncoder.vringState(index: 1, num: 256)).command,
                       .setVringNum(index: 1, num: 256))
        XCTAssertEqual(try decode(.setVringEnable, VhostUserEncoder.vringState(index: 2, num: 1)).command,
                       .setVringEnable(index: 2, enable: true))
        let address = VhostUserVringAddress(index: 1, descriptorTable: 0x7f00_0000_1000, usedRing: 0x7f00_0000_3000,
                                            availRing: 0x7f00_0000_2000)
        XCTAssertEqual(try decode(.setVringAddr, VhostUserEncoder.vringAddress(address)).command, .setVringAddr(address))
        XCTAssertEqual(try decode(.getConfig, VhostUserEncoder.config(offset: 0, flags: 0, data: [0, 0, 0, 0, 0, 0, 0, 0])).command,
                       .getConfig(offset: 0, size: 8, flags: 0))
    }

    func testTruncatedPayloads() {
        XCTAssertThrowsError(try decode(.setFeatures, [1, 2, 3])) {
            XCTAssertEqual($0 as? VhostUserError, .truncatedPayload(request: 2, needed: 8, got: 3))
        }
        XCTAssertThrowsError(try decode(.setVringAddr, [UInt8](repeating: 0, count: 39))) {
            XCTAssertEqual($0 as? VhostUserError, .truncatedPayload(request: 9, needed: 40, got: 39))
        }
        // The header promises more than the payload holds.
        XCTAssertThrowsError(try VhostUserMessage.decode(header: header(.setFeatures, size: 8), payload: [0, 0])) {
            XCTAssertEqual($0 as? VhostUserError, .truncatedPayload(request: 2, needed: 8, got: 2))
        }
        // GET_CONFIG announcing more config bytes than follow, or more than 256.
        XCTAssertThrowsError(try decode(.getConfig, VhostUserEncoder.config(offset: 0, flags: 0, data: [1, 2]).dropLast())) {
            XCTAssertEqual($0 as? VhostUserError, .truncatedPayload(request: 24, needed: 14, got: 13))
        }
        XCTAssertThrowsError(try decode(.getConfig, VhostUserEncoder.config(offset: 0, flags: 0, data: [UInt8](repeating: 0, count: 300)))) {
            XCTAssertEqual($0 as? VhostUserError, .configTooLarge(size: 300))
        }
    }

    func testMemTable() throws {
        let regions = [
            VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 0xf0000, userAddress: 0x7f00_0000_0000, mmapOffset: 0),
            VhostUserMemoryRegion(guestPhysicalAddress: 0x10_0000, size: 0x3f0_0000, userAddress: 0x7f00_0010_0000, mmapOffset: 0x10_0000),
        ]
        let message = try decode(.setMemTable, VhostUserEncoder.memTable(regions), fds: [40, 41, 42])
        XCTAssertEqual(message.command, .setMemTable(regions, fds: [40, 41]))
        XCTAssertEqual(message.unusedFDs, [42], "an extra descriptor is left for the caller to close")
    }

    func testMemTableValidation() {
        let region = VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 4096, userAddress: 0, mmapOffset: 0)
        var tooMany = VhostUserEncoder.memTable(Array(repeating: region, count: 9))
        XCTAssertThrowsError(try decode(.setMemTable, tooMany, fds: Array(0..<9))) {
            XCTAssertEqual($0 as? VhostUserError, .tooManyRegions(9))
        }
        tooMany = VhostUserEncoder.memTable([region, region])
        XCTAssertThrowsError(try decode(.setMemTable, Array(tooMany.prefix(50)), fds: [3, 4])) {
            XCTAssertEqual($0 as? VhostUserError, .truncatedPayload(request: 5, needed: 72, got: 50))
        }
        XCTAssertThrowsError(try decode(.setMemTable, tooMany, fds: [3])) {
            XCTAssertEqual($0 as? VhostUserError, .missingFileDescriptors(request: 5, needed: 2, got: 1))
        }
    }

    func testVringFileDescriptors() throws {
        XCTAssertEqual(try decode(.setVringKick, VhostUserEncoder.u64(1), fds: [9]).command, .setVringKick(index: 1, fd: 9))
        XCTAssertEqual(try decode(.setVringCall, VhostUserEncoder.u64(0x100), fds: []).command,
                       .setVringCall(index: 0, fd: nil), "bit 8: no descriptor")
        let err = try decode(.setVringErr, VhostUserEncoder.u64(0x102), fds: [7])
        XCTAssertEqual(err.command, .setVringErr(index: 2, fd: nil))
        XCTAssertEqual(err.unusedFDs, [7])
        for request in [VhostUserRequest.setVringKick, .setVringCall, .setVringErr] {
            XCTAssertThrowsError(try decode(request, VhostUserEncoder.u64(0))) {
                XCTAssertEqual($0 as? VhostUserError, .missingFileDescriptors(request: request.rawValue, needed: 1, got: 0))
            }
        }
    }

    func testUnknownRequestIsUnsupportedNotAnError() throws {
        let message = try VhostUserMessage.decode(header: VhostUserHeader(request: 999, size: 3), payload: [1, 2, 3])
        XCTAssertEqual(message.command, .unsupported(request: 999))
        XCTAssertEqual(try decode(.setLogBase, VhostUserEncoder.u64(0)).command, .unsupported(request: 6))
    }

    // MARK: the socket

    func socketPair() -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        return (fds[0], fds[1])
    }

    func testChannelCarriesDescriptors() throws {
        let (front, back) = socketPair()
        defer { close(front) }
        let channel = VhostUserChannel(fd: back)
        let event = LinuxCalls.eventfd()
        defer { close(event) }
        let bytes = VhostUserEncoder.message(request: VhostUserRequest.setVringKick.rawValue,
                                             flags: VhostUserFlags.version, payload: VhostUserEncoder.u64(1))
        XCTAssertTrue(VhostUserChannel.sendMessage(on: front, bytes, fds: [event]))
        let message = try channel.receive()
        guard case .setVringKick(1, let fd?) = message.command else { return XCTFail("\(message.command)") }
        XCTAssertNotEqual(fd, event, "a new descriptor for the same eventfd")
        Posix.signal(eventFD: event)
        XCTAssertEqual(Posix.drain(eventFD: fd), 1)
        close(fd)

        try channel.send(VhostUserEncoder.reply(to: 1, payload: VhostUserEncoder.u64(5)))
        var reply = [UInt8](repeating: 0, count: 20)
        XCTAssertEqual(recv(front, &reply, 20, 0), 20)
        XCTAssertEqual(try VhostUserHeader.decode(reply).flags, VhostUserFlags.version | VhostUserFlags.reply)
    }

    func testChannelReportsTruncationAndClose() throws {
        let (front, back) = socketPair()
        let channel = VhostUserChannel(fd: back)
        // A header promising 8 bytes, then only 3 and the end of the stream.
        let partial = VhostUserHeader(request: 2, size: 8).encode() + [1, 2, 3]
        XCTAssertTrue(VhostUserChannel.sendMessage(on: front, partial, fds: []))
        close(front)
        XCTAssertThrowsError(try channel.receive()) {
            XCTAssertEqual($0 as? VhostUserError, .truncatedPayload(request: 2, needed: 8, got: 3))
        }
        XCTAssertThrowsError(try channel.receive()) { XCTAssertEqual($0 as? VhostUserError, .closed) }
    }

    func testChannelRejectsOversizedMessage() throws {
        let (front, back) = socketPair()
        defer { close(front) }
        let channel = VhostUserChannel(fd: back)
        XCTAssertTrue(VhostUserChannel.sendMessage(on: front, VhostUserHeader(request: 5, size: 100_000).encode(), fds: []))
        XCTAssertThrowsError(try channel.receive()) {
            XCTAssertEqual($0 as? VhostUserError, .payloadTooLarge(request: 5, size: 100_000))
        }
    }
}
