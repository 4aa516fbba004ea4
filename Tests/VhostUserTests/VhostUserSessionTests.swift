// The session as QEMU 7.2 drives it (DESIGN.md's message order): feature and protocol
// negotiation, GET_CONFIG, REPLY_ACK, then a memfd memory table and real rings on which a
// simulated guest driver talks to the vsock device through kick and call eventfds
// (vhost-user.rst "Ring states", "REPLY_ACK"; virtio 1.2 §5.10).
import VirtIO
import Wire
import XCTest
import Glibc
@testable import VhostUser

final class VhostUserSessionTests: XCTestCase {
    var log: LogCapture!
    override func setUp() { log = LogCapture() }
    override func tearDown() { log.stop() }

    /// Sends one request through the real decoder; returns the reply's payload (nil: none).
    func request(_ session: VhostUserSession, _ request: VhostUserRequest, _ payload: [UInt8] = [],
                 fds: [Int32] = [], needReply: Bool = false) throws -> [UInt8]? {
        let flags = VhostUserFlags.version | (needReply ? VhostUserFlags.needReply : 0)
        let header = VhostUserHeader(request: request.rawValue, flags: flags, size: UInt32(payload.count))
        let message = try VhostUserMessage.decode(header: header, payload: payload, fds: fds)
        guard let reply = try session.handle(message) else { return nil }
        let replyHeader = try VhostUserHeader.decode(Array(reply.prefix(12)))
        XCTAssertEqual(replyHeader.request, request.rawValue)
        XCTAssertEqual(replyHeader.flags, VhostUserFlags.version | VhostUserFlags.reply)
        XCTAssertEqual(Int(replyHeader.size), reply.count - 12)
        return Array(reply.dropFirst(12))
    }

    func testNegotiationAsQEMUDoesIt() throws {
        let session = VhostUserSession(device: VsockDevice(guestCID: 3, udsPath: nil))
        XCTAssertEqual(try request(session, .getFeatures), VhostUserEncoder.u64((1 << 32) | (1 << 30)))
        let protocolFeatures = try XCTUnwrap(try request(session, .getProtocolFeatures))
        XCTAssertEqual(protocolFeatures, VhostUserEncoder.u64((1 << 9) | (1 << 3)), "CONFIG and REPLY_ACK")
        XCTAssertNil(try request(session, .setProtocolFeatures, protocolFeatures))
        XCTAssertEqual(try request(session, .setOwner, needReply: true), VhostUserEncoder.u64(0), "REPLY_ACK success")
        let config = try request(session, .getConfig, VhostUserEncoder.config(offset: 0, flags: 0, data: [UInt8](repeating: 0, count: 8)))
        XCTAssertEqual(config, VhostUserEncoder.config(offset: 0, flags: 0, data: [3, 0, 0, 0, 0, 0, 0, 0]))
        XCTAssertNil(try request(session, .setConfig, VhostUserEncoder.config(offset: 0, flags: 0, data: [9])))
        XCTAssertEqual(try request(session, .getQueueNum), VhostUserEncoder.u64(3))
        // Unsupported requests: ignored, or answered "failed" when a reply is asked for.
        XCTAssertNil(try request(session, .setLogBase, VhostUserEncoder.u64(0)))
        XCTAssertEqual(try request(session, .setStatus, VhostUserEncoder.u64(15), needReply: true), VhostUserEncoder.u64(1))
        XCTAssertTrue(log.contains("ignoring unsupported SET_LOG_BASE"), "\(log.lines)")
    }

    func testRingErrorsDropTheConnection() throws {
        let session = VhostUserSession(device: VsockDevice(guestCID: 3, udsPath: nil))
        XCTAssertThrowsError(try request(session, .setVringNum, VhostUserEncoder.vringState(index: 3, num: 64))) {
            XCTAssertEqual($0 as? VhostUserError, .badVringIndex(request: 8, index: 3))
        }
        XCTAssertThrowsError(try request(session, .setVringNum, VhostUserEncoder.vringState(index: 0, num: 100))) {
            XCTAssertEqual($0 as? VhostUserError, .badVringSize(100))
        }
        let event = LinuxCalls.eventfd()
        XCTAssertThrowsError(try request(session, .setVringKick, VhostUserEncoder.u64(7), fds: [event])) {
            XCTAssertEqual($0 as? VhostUserError, .badVringIndex(request: 12, index: 7))
        }
        XCTAssertEqual(fcntl(event, F_GETFD), -1, "the descriptor of a refused request is closed")
    }

    /// The whole path: memory table, rings, kick → device → rx packet → call eventfd.
    func testRingsRunOverTheMemoryTable() throws {
        let memfd = try makeMemfd(0x20_0000)
        defer { close(memfd) }
        let userBase: UInt64 = 0x7000_0000_0000
        let regions = [
            VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 0xf_0000, userAddress: userBase, mmapOffset: 0),
            VhostUserMemoryRegion(guestPhysicalAddress: 0x10_0000, size: 0x10_0000, userAddress: userBase + 0x10_0000,
                                  mmapOffset: 0x10_0000),
        ]
        // The guest's own view of its RAM: the same memfd mapped again.
        let guestMemory = try MemoryTable(regions: regions, fds: [dup(memfd), dup(memfd)])
        let session = VhostUserSession(device: VsockDevice(guestCID: 3, udsPath: nil))
        _ = try request(session, .setProtocolFeatures, VhostUserEncoder.u64(session.protocolFeatures))
        _ = try request(session, .setFeatures, VhostUserEncoder.u64((1 << 32) | (1 << 30)))
        XCTAssertEqual(try request(session, .setMemTable, VhostUserEncoder.memTable(regions),
                                   fds: [dup(memfd), dup(memfd)], needReply: true), VhostUserEncoder.u64(0))

        var drivers: [SplitVirtqueue] = []
        var kicks: [Int32] = []
        var calls: [Int32] = []
        for index in 0..<2 {
            let layout = try XCTUnwrap(VirtqueueLayout(size: 64, base: 0x10_0000 + UInt64(index) * 0x1_0000))
            var driver = try SplitVirtqueue(layout: layout)
            try driver.setUp(guestMemory)
            drivers.append(driver)
            let (kick, call) = (LinuxCalls.eventfd(), LinuxCalls.eventfd(nonBlocking: true))
            kicks.append(kick)
            calls.append(call)
            let i = UInt32(index)
            _ = try request(session, .setVringNum, VhostUserEncoder.vringState(index: i, num: 64))
            _ = try request(session, .setVringBase, VhostUserEncoder.vringState(index: i, num: 0))
            _ = try request(session, .setVringAddr, VhostUserEncoder.vringAddress(VhostUserVringAddress(
                index: i, descriptorTable: userBase + layout.descriptorTable, usedRing: userBase + layout.usedRing,
                availRing: userBase + layout.availRing)))
            _ = try request(session, .setVringCall, VhostUserEncoder.u64(UInt64(i)), fds: [dup(call)])
            _ = try request(session, .setVringKick, VhostUserEncoder.u64(UInt64(i)), fds: [dup(kick)])
            XCTAssertNil(session.vrings[index].ring, "with PROTOCOL_FEATURES a ring starts disabled")
            _ = try request(session, .setVringEnable, VhostUserEncoder.vringState(index: i, num: 1))
            XCTAssertNotNil(session.vrings[index].ring)
        }
        defer { (kicks + calls).forEach { close($0) } }
        XCTAssertEqual(session.kickFDs.map(\.index), [0, 1])

        // The guest posts an rx buffer (in the low region) and sends a REQUEST to a host port
        // nobody serves; the device answers RST.
        _ = try drivers[0].addBuffer(guestMemory, address: 0x8000, length: 4096, deviceWritable: true)
        try drivers[0].publish(guestMemory)
        let request = VsockHeader(source: VsockAddress(cid: 3, port: 1000), destination: VsockAddress(cid: 2, port: 2000),
                                  op: .request, bufAlloc: 4096)
        XCTAssertTrue(encode(request).withUnsafeBytes { guestMemory.write(at: 0x9000, from: $0) })
        _ = try drivers[1].addBuffer(guestMemory, address: 0x9000, length: 44, deviceWritable: false)
        try drivers[1].publish(guestMemory)
        Posix.signal(eventFD: kicks[1])
        Posix.signal(eventFD: kicks[1])
        session.serviceKick(index: 1)

        XCTAssertEqual(Posix.drain(eventFD: calls[0]), 1, "the guest was interrupted for rx")
        let used = try XCTUnwrap(try drivers[0].popUsed(guestMemory))
        XCTAssertEqual(used.length, 44)
        var reply = [UInt8](repeating: 0, count: 44)
        XCTAssertTrue(reply.withUnsafeMutableBytes { guestMemory.read(at: 0x8000, into: $0) })
        let header = try reply.withUnsafeBytes { try VsockHeader.decode($0) }
        XCTAssertEqual(header.op, .rst)
        XCTAssertEqual(header.destination, VsockAddress(cid: 3, port: 1000))
        XCTAssertNotNil(try drivers[1].popUsed(guestMemory), "the tx chain came back")

        // Reset: disable and stop; GET_VRING_BASE reports where the rings stopped.
        _ = try self.request(session, .setVringEnable, VhostUserEncoder.vringState(index: 1, num: 0))
        XCTAssertEqual(try self.request(session, .getVringBase, VhostUserEncoder.vringState(index: 1, num: 0)),
                       VhostUserEncoder.vringState(index: 1, num: 1))
        XCTAssertEqual(try self.request(session, .getVringBase, VhostUserEncoder.vringState(index: 0, num: 0)),
                       VhostUserEncoder.vringState(index: 0, num: 1))
        XCTAssertTrue(session.kickFDs.isEmpty, "stopped rings are not polled")
    }

    func testRingOutsideTheMemoryTableIsNotStarted() throws {
        let memfd = try makeMemfd(0x1_0000)
        defer { close(memfd) }
        let session = VhostUserSession(device: VsockDevice(guestCID: 3, udsPath: nil))
        let region = VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 0x1_0000, userAddress: 0x5000_0000, mmapOffset: 0)
        _ = try request(session, .setMemTable, VhostUserEncoder.memTable([region]), fds: [dup(memfd)])
        _ = try request(session, .setVringNum, VhostUserEncoder.vringState(index: 1, num: 256))
        _ = try request(session, .setVringAddr, VhostUserEncoder.vringAddress(VhostUserVringAddress(
            index: 1, descriptorTable: 0x5000_f800, usedRing: 0x5000_2000, availRing: 0x5000_1000)))
        _ = try request(session, .setVringKick, VhostUserEncoder.u64(0x101))
        XCTAssertNil(session.vrings[1].ring)
        XCTAssertTrue(log.contains("ring addresses are outside the memory table"), "\(log.lines)")
    }
}
