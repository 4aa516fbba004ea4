// The guest's virtio-fs driver (Drivers' VirtIOFSDriver, with FUSEFileSystem behind a VFS as
// services use it) against the host's virtio-fs device (VhostUser's FSDevice with its
// FUSEServer over a temporary folder), in one process: bring-up over the transport, the
// FUSE INIT at mount, then the operations services use, checked in the host folder. And a
// device that returns a chain with a bad used id or length: the driver reports an I/O
// error, stops posting, and the process carries on.
//
// The driver runs as at boot (`polling`): it spins on the used ring, and its spin-wait hint
// lets the device run and delivers the device's interrupt to `handleInterrupt`. After boot
// the kernel waits on the interrupt's Event instead, which needs the scheduler.
import Core
import Foundation
import VirtIO
import XCTest
@testable import Drivers
@testable import FSDriver
@testable import VhostUser

typealias FSTransport = DeviceTransport<FSDevice>
typealias FSDriver = VirtIOFSDriver<FSTransport, IdentityMemory>

/// The driver, once made, for the spin-wait hint that delivers its interrupts.
final class DriverBox<Driver: AnyObject> {
    weak var driver: Driver?
}

final class VirtIOFSDriverDeviceTests: XCTestCase {
    var root = ""
    var ram: GuestRAM!
    let manager = FileManager.default
    let tag = "toro-share"

    override func setUpWithError() throws {
        ram = GuestRAM(pages: 512)
        XCTAssertTrue(ram.install())
        root = NSTemporaryDirectory() + "toro-driver-fs-\(UUID().uuidString)"
        try manager.createDirectory(atPath: root + "/docs", withIntermediateDirectories: true)
        try Data("hello from the host\n".utf8).write(to: URL(fileURLWithPath: root + "/hello.txt"))
        try Data(pattern(300_000, seed: 7)).write(to: URL(fileURLWithPath: root + "/docs/big.bin"))
    }

    override func tearDownWithError() throws {
        try? manager.removeItem(atPath: root)
        GuestRAM.uninstall()
    }

    func pattern(_ count: Int, seed: UInt32) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: (UInt32($0) &* 2654435761 &+ seed) >> 11) }
    }

    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
    func host(_ path: String) -> [UInt8]? { manager.contents(atPath: root + "/" + path).map { Array($0) } }

    /// virtio-fs config space (§5.11.4): tag[36] NUL-padded, le32 num_request_queues.
    func config() -> [UInt8] {
        var space = bytes(tag) + [UInt8](repeating: 0, count: 36 - tag.utf8.count)
        space += [1, 0, 0, 0]
        return space
    }

    /// The driver brought up over a transport wired to an FSDevice serving `root`.
    func bringUp() throws -> (FSDriver, FSTransport, FUSEServer) {
        let server = try FUSEServer(root: root, readOnly: false)
        let transport = FSTransport(device: FSDevice(server: server), memory: ram.processMemory, config: config())
        transport.kicksRunDevice = false
        let box = DriverBox<FSDriver>()
        let start = DispatchTime.now().uptimeNanoseconds
        let driver = try XCTUnwrap(FSDriver(
            transport: transport, memory: ram.processMemory,
            now: { DispatchTime.now().uptimeNanoseconds - start },
            pause: {
                // The driver spins: the device gets to run, and its interrupt is taken.
                transport.runDevice()
                if transport.interruptPending { box.driver?.handleInterrupt() }
            },
            timeoutSeconds: 5))
        box.driver = driver
        return (driver, transport, server)
    }

    func mount(_ driver: FSDriver) throws -> (VFS, FUSEFileSystem) {
        let fs = try FUSEFileSystem.mount(channel: driver)
        let vfs = VFS()
        try vfs.mount(fs)
        return (vfs, fs)
    }

    func read(_ vfs: VFS, _ path: String) throws -> [UInt8] { try readWhole(vfs, path, chunk: 100_000) }

    func testBringUpNegotiatesAndAttachesBothQueues() throws {
        let (driver, transport, _) = try bringUp()
        XCTAssertEqual(driver.tag, bytes(tag), "the tag comes from the config space")
        XCTAssertEqual(DeviceStatus(rawValue: transport.registers.deviceStatus),
                       [.acknowledge, .driver, .featuresOK, .driverOK])
        XCTAssertEqual(transport.registers.driverFeatures, VirtIOFeature.version1)
        XCTAssertEqual(transport.rings.keys.sorted(), [FSDevice.hiprioQueue, FSDevice.requestQueue])
        XCTAssertEqual(transport.rings[FSDevice.requestQueue]?.queue.size, 8)
        XCTAssertEqual(transport.rings[FSDevice.hiprioQueue]?.queue.size, UInt16(FSDriver.forgetSlots))
        for ring in transport.rings.values {
            XCTAssertTrue(ram.memory.contains(ring.queue.descriptorTable, length: 16 * UInt64(ring.queue.size)),
                          "the rings are kernel pages")
        }
    }

    func testMountListReadWriteRenameReachTheHostFolder() throws {
        let (driver, transport, server) = try bringUp()
        let (vfs, fs) = try mount(driver)
        XCTAssertGreaterThan(fs.maximumWrite, 4096, "INIT went through the device")

        // List and read what the host put there (big.bin takes several READs).
        let names = try vfs.readdir(bytes("/")).map { String(decoding: $0.name, as: UTF8.self) }.sorted()
        XCTAssertEqual(names, ["docs", "hello.txt"])
        XCTAssertEqual(try read(vfs, "/hello.txt"), host("hello.txt"))
        XCTAssertEqual(try read(vfs, "/docs/big.bin"), host("docs/big.bin"))
        XCTAssertEqual(try vfs.stat(bytes("/docs/big.bin")).size, 300_000)

        // Write a file larger than one WRITE, rename it, and find it in the host folder.
        let payload = pattern(200_000, seed: 99)
        let fd = try vfs.open(bytes("/docs/new.bin"), flags: [.write, .create, .truncate])
        XCTAssertEqual(try vfs.write(fd, payload), payload.count)
        try vfs.close(fd)
        XCTAssertEqual(host("docs/new.bin"), payload)
        try vfs.mkdir(bytes("/made"))
        try vfs.rename(bytes("/docs/new.bin"), to: bytes("/made/moved.bin"))
        XCTAssertEqual(host("made/moved.bin"), payload)
        XCTAssertNil(host("docs/new.bin"), "the old name is gone on the host")
        let listed = try vfs.readdir(bytes("/made")).map { String(decoding: $0.name, as: UTF8.self) }
        XCTAssertEqual(listed, ["moved.bin"])
        try vfs.unlink(bytes("/made/moved.bin"))
        try vfs.rmdir(bytes("/made"))
        XCTAssertFalse(manager.fileExists(atPath: root + "/made"))

        // Every request went over the request queue and came back by interrupt.
        XCTAssertFalse(driver.failed)
        XCTAssertGreaterThan(transport.registers.notifications[UInt16(FSDevice.requestQueue)] ?? 0, 10)
        XCTAssertGreaterThan(transport.interruptsRaised, 0)
        XCTAssertTrue(transport.registers.trace.contains(.acknowledge(VirtIOInterrupt.usedBuffer)),
                      "the handler acknowledged the device's interrupt")
        XCTAssertFalse(transport.interruptPending)
        XCTAssertFalse(transport.rings.values.contains { $0.isBroken }, "the driver kept to the ring protocol")
        XCTAssertEqual(fs.openCount, 0)
        XCTAssertEqual(server.handleCount, 0, "every handle was released on the host")
    }

    /// Every LOOKUP's reference goes back by FORGET on the high-priority queue (no reply):
    /// 150 of them outnumber its 64 slots, so senders also wait for the device to return
    /// slots; the server ends with the nodes it started with.
    func testForgetsUseTheHighPriorityQueue() throws {
        let (driver, transport, server) = try bringUp()
        let (vfs, _) = try mount(driver)
        let nodesBefore = server.nodeCount
        for i in 0..<150 {
            _ = try vfs.stat(bytes(i % 2 == 0 ? "/hello.txt" : "/docs/big.bin"))
        }
        XCTAssertEqual(try read(vfs, "/docs/big.bin"), host("docs/big.bin"))
        transport.runDevice()
        XCTAssertGreaterThanOrEqual(transport.registers.notifications[UInt16(FSDevice.hiprioQueue)] ?? 0, 150)
        XCTAssertEqual(server.nodeCount, nodesBefore, "every reference was forgotten on the host")
        XCTAssertFalse(driver.failed)
        XCTAssertFalse(driver.forgetsStalled)
        XCTAssertFalse(transport.rings[FSDevice.hiprioQueue]?.isBroken ?? true)
    }

    /// A device that returns the request with a used id that is not in flight, one out of
    /// range, or a length beyond the reply buffer: `.io` to the caller, the device marked
    /// failed, nothing posted afterwards, no trap.
    func testBadUsedIdOrLengthIsAnIOErrorNotATrap() throws {
        let corruptions: [(String, (FSTransport, DeviceRing) -> Void)] = [
            ("id not in flight", { t, ring in
                let last = (ring.queue.nextUsedIndex &- 1) & (ring.queue.size &- 1)
                let element = ring.queue.usedRing + 4 + UInt64(last) * 8
                let id = t.memory.load(UInt32.self, at: element)!
                t.rewriteLastUsed(ring, id: (id + 1) % UInt32(ring.queue.size))
            }),
            ("id out of range", { t, ring in t.rewriteLastUsed(ring, id: 0xFFFF) }),
            ("length beyond the reply buffer", { t, ring in t.rewriteLastUsed(ring, length: 0x7FFF_FFF0) }),
        ]
        for (what, corrupt) in corruptions {
            let (driver, transport, _) = try bringUp()
            let (vfs, _) = try mount(driver)
            XCTAssertEqual(try read(vfs, "/hello.txt"), host("hello.txt"), what)
            var armed = true
            transport.afterService = { index, ring in
                guard armed, index == FSDevice.requestQueue else { return }
                armed = false
                corrupt(transport, ring)
            }
            XCTAssertThrowsError(try vfs.stat(bytes("/docs/big.bin")), what) {
                XCTAssertEqual($0 as? FileSystemError, .io, what)
            }
            XCTAssertFalse(armed, "\(what): the device did complete the request")
            XCTAssertTrue(driver.failed, what)
            let posted = transport.registers.notifications[UInt16(FSDevice.requestQueue)] ?? 0
            XCTAssertThrowsError(try read(vfs, "/hello.txt"), what) {
                XCTAssertEqual($0 as? FileSystemError, .io, what)
            }
            XCTAssertEqual(transport.registers.notifications[UInt16(FSDevice.requestQueue)] ?? 0, posted,
                           "\(what): a failed device gets no more requests")
        }
    }
}
