// The real `toro-vsock` binary, driven as QEMU drives it (a memfd memory table, rx and tx
// rings, kick and call eventfds over the vhost-user socket), with a guest that fills the
// tx ring and whose notify never arrives (virtio 1.2 §2.7.13.4). The guest then has no
// free buffer to post and so no reason to kick again: without the event loop's periodic
// ring recheck (VhostUserServer, VhostUserSession.recheckRings) the ring would never move
// again, as in the soak that ended "vsock: device failed: the device returned no transmit
// buffer for 30 s". Here the chains come back within a few seconds and the back-end says
// why on stderr.
import VirtIO
import Wire
import XCTest
import TestSupport
import Foundation
import Glibc
@testable import VhostUser

final class LostKickBinaryTests: XCTestCase {
    var directory = ""
    var running: [Process] = []

    override func setUp() { directory = temporaryDirectory() }

    override func tearDown() {
        for process in running where process.isRunning { process.terminate(); process.waitUntilExit() }
        HostFiles.removeTree(directory)
    }

    func binary(_ name: String) throws -> String {
        var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path]
        candidates += Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent().path }
        let found = candidates.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
        return try XCTUnwrap(found, "\(name) is not built next to the tests: swift build --product \(name)")
    }

    /// Sends one vhost-user message (no reply asked for).
    func send(_ fd: Int32, _ request: VhostUserRequest, _ payload: [UInt8] = [], fds: [Int32] = []) {
        let bytes = VhostUserEncoder.message(request: request.rawValue, flags: VhostUserFlags.version, payload: payload)
        XCTAssertTrue(VhostUserChannel.sendMessage(on: fd, bytes, fds: fds), "\(request)")
    }

    /// GET_FEATURES, and its reply: every message sent before it has been handled.
    func roundTrip(_ fd: Int32) -> Bool {
        send(fd, .getFeatures)
        var reply = [UInt8](repeating: 0, count: 20)
        var got = 0
        while got < 20 {
            let n = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, 20 - got, 0) }
            if n <= 0 { return false }
            got += n
        }
        return true
    }

    func testTXChainsWhoseKickNeverCameAreServedWithinSeconds() throws {
        let socket = directory + "/vhost.sock"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary("toro-vsock"))
        process.arguments = ["--socket", socket, "--uds", directory + "/v.sock", "--cid", "3"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        running.append(process)
        let ready = Posix.monotonicNow() + 10
        while !HostFiles.exists(socket) && Posix.monotonicNow() < ready { usleep(10_000) }
        let qemu = try unixClient(socket)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(qemu, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        // QEMU's set-up: VERSION_1 only (so a ring runs at SET_VRING_KICK), the memory
        // table, then rx (0) and tx (1) of 8 entries each.
        let memfd = try makeMemfd(0x20_0000)
        defer { close(memfd) }
        let userBase: UInt64 = 0x7000_0000_0000
        let regions = [VhostUserMemoryRegion(guestPhysicalAddress: 0, size: 0x20_0000, userAddress: userBase, mmapOffset: 0)]
        let memory = try MemoryTable(regions: regions, fds: [dup(memfd)])
        send(qemu, .setFeatures, VhostUserEncoder.u64(1 << 32))
        send(qemu, .setMemTable, VhostUserEncoder.memTable(regions), fds: [memfd])
        var drivers: [SplitVirtqueue] = []
        var eventfds: [Int32] = []
        defer { eventfds.forEach { close($0) } }
        for index in 0..<2 {
            let layout = try XCTUnwrap(VirtqueueLayout(size: 8, base: 0x10_0000 + UInt64(index) * 0x1_0000))
            var driver = try SplitVirtqueue(layout: layout)
            try driver.setUp(memory)
            drivers.append(driver)
            let (kick, call) = (LinuxCalls.eventfd(nonBlocking: true), LinuxCalls.eventfd(nonBlocking: true))
            eventfds += [kick, call]
            let i = UInt32(index)
            send(qemu, .setVringNum, VhostUserEncoder.vringState(index: i, num: 8))
            send(qemu, .setVringBase, VhostUserEncoder.vringState(index: i, num: 0))
            send(qemu, .setVringAddr, VhostUserEncoder.vringAddress(VhostUserVringAddress(
                index: i, descriptorTable: userBase + layout.descriptorTable, usedRing: userBase + layout.usedRing,
                availRing: userBase + layout.availRing)))
            send(qemu, .setVringCall, VhostUserEncoder.u64(UInt64(i)), fds: [call])
            send(qemu, .setVringKick, VhostUserEncoder.u64(UInt64(i)), fds: [kick])
        }
        XCTAssertTrue(roundTrip(qemu), "the rings are set up")

        // The guest fills the tx ring (REQUESTs to a port nobody serves) and publishes it;
        // its notify is lost (nothing is written to the kick eventfd).
        var posted = 0
        while drivers[1].freeDescriptors > 0 {
            let address = 0x4000 + UInt64(posted) * 0x100
            let request = VsockHeader(source: VsockAddress(cid: 3, port: 1000 + UInt32(posted)),
                                      destination: VsockAddress(cid: 2, port: 2000), op: .request, bufAlloc: 4096)
            XCTAssertTrue(encode(request).withUnsafeBytes { memory.write(at: address, from: $0) })
            _ = try drivers[1].addBuffer(memory, address: address, length: UInt32(VsockHeader.size), deviceWritable: false)
            posted += 1
        }
        try drivers[1].publish(memory)
        let published = Posix.monotonicNow()

        var returned = 0
        while returned < posted && Posix.monotonicNow() < published + 6 {
            while try drivers[1].popUsed(memory) != nil { returned += 1 }
            usleep(50_000)
        }
        let waited = Posix.monotonicNow() - published
        close(qemu)
        let end = Posix.monotonicNow() + 10
        while process.isRunning && Posix.monotonicNow() < end { usleep(20_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)

        XCTAssertEqual(returned, posted, "every tx chain came back without a kick (after \(waited) s)\n\(stderr)")
        XCTAssertLessThan(waited, 4, "within two recheck intervals and a turn\n\(stderr)")
        XCTAssertTrue(stderr.contains("toro-vsock: tx queue: the guest published chains up to avail.idx 8 (served up to 0) "
                                      + "and no kick came for them; serving them now"), stderr)
        XCTAssertEqual(process.terminationStatus, 0, "QEMU leaving ends the run\n\(stderr)")
    }
}
