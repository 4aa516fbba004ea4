// A kick that never reaches the back-end (virtio 1.2 §2.7.13.4: the driver publishes
// avail.idx, then notifies) must not stall a ring for good: the event loop's periodic
// recheck (VhostUserSession.recheckRings, DeviceRing.recheck) serves chains published
// with no kick once they have waited a whole interval, and says so. A kick merely in
// flight (the guest between its avail.idx store and its notify, seen once) is left to
// arrive, and an rx ring whose buffers wait for packets is not a lost kick.
import VirtIO
import Wire
import XCTest
import Glibc
@testable import VhostUser

final class RingRecheckTests: XCTestCase {
    var log: LogCapture!
    override func setUp() { log = LogCapture() }
    override func tearDown() { log.stop() }

    /// A vsock session over a memfd with rx and tx running as QEMU starts them, and the
    /// guest's view of the rings.
    struct Running {
        let memfd: Int32
        let session: VhostUserSession
        let memory: MemoryTable
        var drivers: [SplitVirtqueue]
        let kicks: [Int32]
        let calls: [Int32]
        func close() { ([memfd] + kicks + calls).forEach { _ = Glibc.close($0) } }
    }

    func send(_ session: VhostUserSession, _ request: VhostUserRequest, _ payload: [UInt8] = [], fds: [Int32] = []) throws {
        let header = VhostUserHeader(request: request.rawValue, flags: VhostUserFlags.version, size: UInt32(payload.count))
        _ = try session.handle(try VhostUserMessage.decode(header: header, payload: payload, fds: fds))
    }

    func running() throws -> Running {
        let memfd = try makeMemfd(0x20_0000)
        let userBase: UInt64 = 0x7000_0000_0000
        let regions = [VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 0x20_0000, userAddress: userBase, mmapOffset: 0)]
        let memory = try MemoryTable(regions: regions, fds: [dup(memfd)])
        let session = VhostUserSession(device: VsockDevice(guestCID: 3, udsPath: nil))
        try send(session, .setFeatures, VhostUserEncoder.u64(1 << 32))
        try send(session, .setMemTable, VhostUserEncoder.memTable(regions), fds: [dup(memfd)])
        var drivers: [SplitVirtqueue] = []
        var kicks: [Int32] = []
        var calls: [Int32] = []
        for index in 0..<2 {
            let layout = try XCTUnwrap(VirtqueueLayout(size: 8, base: 0x10_0000 + UInt64(index) * 0x1_0000))
            var driver = try SplitVirtqueue(layout: layout)
            try driver.setUp(memory)
            drivers.append(driver)
            let (kick, call) = (LinuxCalls.eventfd(nonBlocking: true), LinuxCalls.eventfd(nonBlocking: true))
            kicks.append(kick)
            calls.append(call)
            let i = UInt32(index)
            try send(session, .setVringNum, VhostUserEncoder.vringState(index: i, num: 8))
            try send(session, .setVringBase, VhostUserEncoder.vringState(index: i, num: 0))
            try send(session, .setVringAddr, VhostUserEncoder.vringAddress(VhostUserVringAddress(
                index: i, descriptorTable: userBase + layout.descriptorTable, usedRing: userBase + layout.usedRing,
                availRing: userBase + layout.availRing)))
            try send(session, .setVringCall, VhostUserEncoder.u64(UInt64(i)), fds: [dup(call)])
            try send(session, .setVringKick, VhostUserEncoder.u64(UInt64(i)), fds: [dup(kick)])
            XCTAssertNotNil(session.vrings[index].ring, "without PROTOCOL_FEATURES a ring runs at SET_VRING_KICK")
        }
        return Running(memfd: memfd, session: session, memory: memory, drivers: drivers, kicks: kicks, calls: calls)
    }

    /// The guest fills the tx ring with REQUESTs to a port nobody serves (the device
    /// answers each with an RST it queues for rx), publishing them all.
    func fillTX(_ r: inout Running) throws -> Int {
        var posted = 0
        while r.drivers[1].freeDescriptors > 0 {
            let address = 0x9000 + UInt64(posted) * 0x100
            let request = VsockHeader(source: VsockAddress(cid: 3, port: 1000 + UInt32(posted)),
                                      destination: VsockAddress(cid: 2, port: 2000), op: .request, bufAlloc: 4096)
            XCTAssertTrue(encode(request).withUnsafeBytes { r.memory.write(at: address, from: $0) })
            _ = try r.drivers[1].addBuffer(r.memory, address: address, length: UInt32(VsockHeader.size), deviceWritable: false)
            posted += 1
        }
        try r.drivers[1].publish(r.memory)
        return posted
    }

    func testAFullTXRingWhoseKickWasLostIsServedAtTheSecondRecheck() throws {
        var r = try running()
        defer { r.close() }
        let posted = try fillTX(&r)
        XCTAssertEqual(posted, 8)
        // The notify is lost: nothing is written to the kick eventfd. Without the recheck
        // this ring would never move again: the guest has no free buffer left, so it never
        // posts (nor kicks) again.
        r.session.recheckRings()
        XCTAssertNil(try r.drivers[1].popUsed(r.memory), "one recheck could be a kick still in flight: not yet served")
        XCTAssertFalse(log.contains("no kick came"), "\(log.lines)")

        r.session.recheckRings()
        var returned = 0
        while try r.drivers[1].popUsed(r.memory) != nil { returned += 1 }
        XCTAssertEqual(returned, posted, "the second recheck served every chain")
        XCTAssertEqual(Posix.drain(eventFD: r.calls[1]), 1, "and interrupted the guest")
        XCTAssertTrue(log.contains("tx queue: the guest published chains up to avail.idx 8 (served up to 0) and no kick came for them"),
                      "\(log.lines)")
        XCTAssertFalse(log.contains("broken"), "\(log.lines)")

        // Nothing new: later rechecks are silent and serve nothing.
        let lines = log.lines.count
        r.session.recheckRings()
        r.session.recheckRings()
        XCTAssertEqual(log.lines.count, lines)
    }

    func testAKickInFlightAtTheRecheckIsNotReportedLost() throws {
        var r = try running()
        defer { r.close() }
        _ = try fillTX(&r)
        r.session.recheckRings()
        // The kick arrives before the next recheck and is served the ordinary way.
        Posix.signal(eventFD: r.kicks[1])
        r.session.serviceKick(index: 1)
        var returned = 0
        while try r.drivers[1].popUsed(r.memory) != nil { returned += 1 }
        XCTAssertEqual(returned, 8)
        r.session.recheckRings()
        r.session.recheckRings()
        XCTAssertFalse(log.contains("no kick came"), "\(log.lines)")
    }

    func testKickedChainsAndWaitingRXBuffersAreNotALostKick() throws {
        var r = try running()
        defer { r.close() }
        // rx buffers posted and kicked: they wait for packets, which is no lost kick.
        for i in 0..<4 {
            _ = try r.drivers[0].addBuffer(r.memory, address: 0x4000 + UInt64(i) * 0x1000, length: 4096, deviceWritable: true)
        }
        try r.drivers[0].publish(r.memory)
        Posix.signal(eventFD: r.kicks[0])
        r.session.serviceKick(index: 0)
        // tx chains posted and kicked: served at the kick.
        _ = try fillTX(&r)
        Posix.signal(eventFD: r.kicks[1])
        r.session.serviceKick(index: 1)
        for _ in 0..<3 { r.session.recheckRings() }
        XCTAssertFalse(log.contains("no kick came"), "\(log.lines)")
        XCTAssertEqual(r.session.vrings[0].ring?.queue.nextAvailIndex, 4, "the RSTs took the four rx buffers")
    }

    func testRXBuffersPostedWithALostKickAreFilledAtTheSecondRecheck() throws {
        var r = try running()
        defer { r.close() }
        // The device has RSTs queued and no rx buffer; the guest posts one, and its kick is lost.
        _ = try fillTX(&r)
        Posix.signal(eventFD: r.kicks[1])
        r.session.serviceKick(index: 1)
        _ = try r.drivers[0].addBuffer(r.memory, address: 0x4000, length: 4096, deviceWritable: true)
        try r.drivers[0].publish(r.memory)
        r.session.recheckRings()
        XCTAssertNil(try r.drivers[0].popUsed(r.memory))
        r.session.recheckRings()
        XCTAssertEqual(try r.drivers[0].popUsed(r.memory)?.length, UInt32(VsockHeader.size), "an RST went into it")
        XCTAssertTrue(log.contains("rx queue: the guest published chains up to avail.idx 1 (served up to 0)"), "\(log.lines)")
    }
}
