// The guest's virtio-net driver (NetDriver's VirtIONetDriver) against an in-process
// virtio-net device (NetTestDevice), in one process: bring-up (features, the MAC through the
// generation loop, receive buffers posted), frames both ways (the device sees the zero
// 12-byte header; `onFrame` sees the frame without it, and may answer from inside the
// call), receive buffers refilled past the ring's size, the transmit pool running dry and
// recovering, frames refused by size, and hostile devices (a used length too short: dropped
// and counted; too long, or a used id never posted: the device failed with one log line and
// reset), never a trap.
//
// The driver never waits, so no clock or spin hint is needed: the device runs when the
// driver kicks it, and the test delivers the interrupt it latches by calling `handleInterrupt`.
import Core
import TestSupport
import VirtIO
import XCTest
@testable import NetDriver
@testable import Drivers
@testable import VhostUser

typealias NetTransport = DeviceTransport<NetTestDevice>
typealias NetGuestDriver = VirtIONetDriver<NetTransport, IdentityMemory>

final class VirtIONetDriverDeviceTests: XCTestCase {
    var ram: GuestRAM!
    let log = CapturedLog()
    let v1 = VirtIOFeature.version1

    override func setUp() {
        ram = GuestRAM(pages: 256)
        XCTAssertTrue(ram.install())
        Log.console = log
    }

    override func tearDown() {
        Log.console = nil
        GuestRAM.uninstall()
    }

    final class Guest {
        let device: NetTestDevice
        let transport: NetTransport
        let driver: NetGuestDriver
        var received: [[UInt8]] = []

        init(device: NetTestDevice, transport: NetTransport, driver: NetGuestDriver) {
            self.device = device
            self.transport = transport
            self.driver = driver
            driver.onFrame = { [unowned self] frame in received.append(Array(frame)) }
        }

        /// Delivers the device's interrupt, if it raised one.
        @discardableResult
        func interrupt() -> Bool { transport.interruptPending ? driver.handleInterrupt() : false }

        func send(_ frame: [UInt8]) -> Bool { frame.withUnsafeBytes { driver.send($0) } }
    }

    func bringUp(features: UInt64 = NetFeature.mac | NetFeature.status, queueMaximum: UInt16 = 256,
                 configure: (NetTestDevice, NetTransport) -> Void = { _, _ in }) throws -> Guest {
        let device = NetTestDevice(features: features)
        let transport = NetTransport(device: device, memory: ram.memory, config: device.readConfig(offset: 0, size: 12),
                                     queueMaximum: queueMaximum)
        configure(device, transport)
        let driver = try XCTUnwrap(NetGuestDriver(transport: transport, memory: ram.memory))
        return Guest(device: device, transport: transport, driver: driver)
    }

    /// A frame of `count` bytes: broadcast destination, the test's source, then a pattern.
    func frame(_ count: Int, seed: Int) -> [UInt8] {
        (0 ..< count).map { i in i < 6 ? 0xFF : UInt8(truncatingIfNeeded: i &* 7 &+ seed &* 131) }
    }

    enum NetFeature {
        static let mac = VirtIONet.featureMAC
        static let status = VirtIONet.featureStatus
        static let checksum: UInt64 = 1 << 0
        static let guestChecksum: UInt64 = 1 << 1
        static let hostTSO4: UInt64 = 1 << 11
        static let controlQueue: UInt64 = 1 << 17
        static let multiqueue: UInt64 = 1 << 22
    }

    // MARK: bring-up

    func testBringUpReadsTheMACAndPostsReceiveBuffers() throws {
        let offered = NetFeature.mac | NetFeature.status | NetFeature.checksum | NetFeature.guestChecksum | NetFeature.hostTSO4
            | VirtIONet.featureMergeableBuffers | NetFeature.controlQueue | NetFeature.multiqueue | VirtIOFeature.eventIndex
        let guest = try bringUp(features: offered)
        XCTAssertEqual(guest.transport.registers.driverFeatures, v1 | NetFeature.mac | NetFeature.status,
                       "no offload, MRG_RXBUF, control queue, multiqueue or EVENT_IDX")
        XCTAssertEqual(DeviceStatus(rawValue: guest.transport.registers.deviceStatus),
                       [.acknowledge, .driver, .featuresOK, .driverOK])
        XCTAssertEqual(guest.driver.mac, [0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
        XCTAssertTrue(guest.driver.linkUp)
        XCTAssertEqual(guest.transport.rings.keys.sorted(), [0, 1])
        XCTAssertEqual(guest.transport.rings[0]?.queue.size, 64)
        XCTAssertEqual(guest.transport.rings[1]?.queue.size, 32)
        XCTAssertEqual(guest.transport.rings[0]?.availIndex, 64, "every receive buffer posted at bring-up")
        XCTAssertEqual(guest.transport.registers.notifications, [0: 1], "the receive queue kicked once, after DRIVER_OK")
        guest.driver.describe()
        XCTAssertTrue(log.text.contains("virtio-net: MAC 52:54:00:12:34:56, 64 receive and 32 transmit buffers\n"), log.text)
        XCTAssertFalse(guest.interrupt(), "nothing pending")
    }

    func testWithoutTheMACFeatureTheFallbackIsUsedAndLinkDownIsReported() throws {
        let guest = try bringUp(features: NetFeature.status, queueMaximum: 16) { device, transport in
            device.linkStatus = 0
            transport.registers.config = device.readConfig(offset: 0, size: 12)
        }
        XCTAssertEqual(guest.driver.mac, VirtIONetLimits.fallbackMAC)
        XCTAssertFalse(guest.driver.linkUp)
        guest.driver.describe()
        XCTAssertTrue(log.text.contains("virtio-net: MAC 02:00:00:00:00:01, 16 receive and 16 transmit buffers, link down\n"),
                      log.text)
    }

    func testAConfigurationThatNeverSettlesIsGivenUp() throws {
        let device = NetTestDevice(features: NetFeature.mac)
        let transport = NetTransport(device: device, memory: ram.memory, config: device.readConfig(offset: 0, size: 12))
        transport.registers.generationStepPerRead = 1
        XCTAssertNil(NetGuestDriver(transport: transport, memory: ram.memory))
        XCTAssertTrue(DeviceStatus(rawValue: transport.registers.deviceStatus).contains(.failed))
        XCTAssertTrue(log.text.contains("virtio-net: the configuration never settled"), log.text)
    }

    // MARK: frames

    func testAcknowledgingLeavesTheFramesForDrain() throws {
        let guest = try bringUp()
        XCTAssertTrue(guest.device.deliver(frame(60, seed: 9)))
        XCTAssertTrue(guest.transport.interruptPending)
        XCTAssertTrue(guest.driver.acknowledgeInterrupt(), "the device had something pending")
        XCTAssertFalse(guest.transport.interruptPending, "acknowledged")
        XCTAssertEqual(guest.received, [], "the handler's half takes no frame")
        XCTAssertFalse(guest.driver.acknowledgeInterrupt(), "nothing pending any more")
        guest.driver.drain()
        XCTAssertEqual(guest.received, [frame(60, seed: 9)], "the thread's drain does")
    }

    func testFramesBothWays() throws {
        let guest = try bringUp()
        let inbound = [frame(60, seed: 1), frame(1514, seed: 2), frame(14, seed: 3)]
        for bytes in inbound { XCTAssertTrue(guest.device.deliver(bytes)) }
        XCTAssertTrue(guest.interrupt())
        XCTAssertEqual(guest.received, inbound, "each frame without its header, in order")
        XCTAssertEqual(guest.driver.framesReceived, 3)

        let outbound = [frame(42, seed: 4), frame(1514, seed: 5)]
        for bytes in outbound { XCTAssertTrue(guest.send(bytes)) }
        XCTAssertEqual(guest.device.sent, outbound.map { [UInt8](repeating: 0, count: 12) + $0 },
                       "a zero 12-byte header before each frame, as one buffer")
        XCTAssertEqual(guest.transport.registers.notifications[0], 2, "bring-up, then the refill after the frames")
        XCTAssertTrue(guest.interrupt(), "the transmit completions")
        XCTAssertEqual(guest.transport.registers.notifications[0], 2, "no receive kick when nothing was reposted")
        XCTAssertEqual(guest.driver.freeTransmit.count, 32, "every transmit buffer reclaimed")
        XCTAssertEqual(guest.driver.framesSent, 2)
        XCTAssertFalse(guest.driver.failed)
    }

    /// `onFrame` may send (an ARP reply from inside the interrupt handler).
    func testTheFrameCallbackMayAnswer() throws {
        let guest = try bringUp()
        guest.driver.onFrame = { [unowned guest] frame in
            XCTAssertTrue(guest.driver.send(frame))
            guest.driver.drain()
        }
        for i in 0 ..< 5 { XCTAssertTrue(guest.device.deliver(frame(100, seed: i))) }
        XCTAssertTrue(guest.interrupt())
        XCTAssertEqual(guest.device.sent.map { Array($0.dropFirst(12)) }, (0 ..< 5).map { frame(100, seed: $0) })
    }

    func testReceiveBuffersAreRefilledPastTheRingSize() throws {
        let guest = try bringUp(queueMaximum: 8)
        XCTAssertEqual(guest.driver.receiveCount, 8)
        var expected: [[UInt8]] = []
        for round in 0 ..< 10 {
            // Every posted buffer filled, then one frame too many (lost: nothing posted).
            for i in 0 ..< 8 {
                let bytes = frame(60 + i, seed: round * 8 + i)
                XCTAssertTrue(guest.device.deliver(bytes), "round \(round) frame \(i)")
                expected.append(bytes)
            }
            XCTAssertFalse(guest.device.deliver(frame(60, seed: 999)), "no buffer left in round \(round)")
            XCTAssertTrue(guest.interrupt())
        }
        XCTAssertEqual(guest.received, expected, "80 frames through a ring of 8")
        XCTAssertEqual(guest.transport.rings[0]?.availIndex, 88, "8 at bring-up and each one reposted")
    }

    func testTheTransmitPoolRunsDryAndRecovers() throws {
        let guest = try bringUp()
        guest.device.holdTransmits = true
        for i in 0 ..< 32 { XCTAssertTrue(guest.send(frame(64, seed: i)), "frame \(i)") }
        XCTAssertFalse(guest.send(frame(64, seed: 32)), "every buffer is with the device")
        XCTAssertFalse(guest.send(frame(64, seed: 33)))
        XCTAssertEqual(guest.driver.transmitBusy, 2)
        XCTAssertEqual(guest.device.sent.count, 32)

        guest.device.completeTransmits()
        // No interrupt taken: `send` reclaims on its own.
        XCTAssertTrue(guest.send(frame(64, seed: 34)))
        guest.device.completeTransmits()
        XCTAssertTrue(guest.interrupt())
        XCTAssertEqual(guest.driver.freeTransmit.count, 32)
        XCTAssertEqual(guest.driver.framesSent, 33)
        XCTAssertEqual(Array(guest.device.sent.last!.dropFirst(12)), frame(64, seed: 34))
        XCTAssertFalse(guest.driver.failed)
    }

    func testFramesOfTheWrongSizeAreRefused() throws {
        let guest = try bringUp()
        XCTAssertFalse(guest.send(frame(1515, seed: 0)), "over 1514 bytes")
        XCTAssertFalse(guest.send(frame(13, seed: 0)), "shorter than an Ethernet header")
        XCTAssertFalse(guest.send([]))
        XCTAssertEqual(guest.driver.refusedFrames, 3)
        XCTAssertTrue(guest.device.sent.isEmpty, "nothing reached the device")
        XCTAssertTrue(guest.send(frame(1514, seed: 0)))
        XCTAssertEqual(guest.device.sent.count, 1)
    }

    // MARK: hostile devices

    func testShortCompletionsAreDroppedAndCounted() throws {
        let guest = try bringUp(queueMaximum: 8)
        XCTAssertTrue(guest.device.deliver(frame(60, seed: 1), usedLength: 5))
        XCTAssertTrue(guest.device.deliver(frame(60, seed: 2), usedLength: 0))
        XCTAssertTrue(guest.device.deliver(frame(60, seed: 3), usedLength: 12 + 13))
        XCTAssertTrue(guest.device.deliver(frame(60, seed: 4)))
        XCTAssertTrue(guest.interrupt())
        XCTAssertEqual(guest.driver.droppedFrames, 3)
        XCTAssertEqual(guest.received, [frame(60, seed: 4)])
        XCTAssertFalse(guest.driver.failed)
        // Their buffers went back: a full ring's worth still passes, twice.
        for i in 0 ..< 16 {
            XCTAssertTrue(guest.device.deliver(frame(70, seed: i)))
            if i % 8 == 7 { XCTAssertTrue(guest.interrupt()) }
        }
        XCTAssertEqual(guest.received.count, 17)
    }

    func testALengthBeyondTheBufferFailsTheDevice() throws {
        let guest = try bringUp()
        XCTAssertTrue(guest.device.deliver(frame(60, seed: 1)))
        XCTAssertTrue(guest.device.deliver(frame(60, seed: 2), usedLength: 12 + 1514 + 1))
        XCTAssertTrue(guest.interrupt())
        assertFailed(guest, received: [frame(60, seed: 1)])
    }

    func testAReceiveIdNeverPostedFailsTheDevice() throws {
        let guest = try bringUp()
        XCTAssertTrue(guest.device.deliver(frame(60, seed: 1)))
        guest.transport.rewriteLastUsed(try XCTUnwrap(guest.transport.rings[0]), id: 200)
        XCTAssertTrue(guest.interrupt())
        assertFailed(guest, received: [])
    }

    func testATransmitIdNotInFlightFailsTheDevice() throws {
        let guest = try bringUp()
        XCTAssertTrue(guest.send(frame(60, seed: 1)))
        // The chain went out under descriptor 0; 5 was never posted (in range: the ring has 32).
        guest.transport.rewriteLastUsed(try XCTUnwrap(guest.transport.rings[1]), id: 5)
        XCTAssertFalse(guest.send(frame(60, seed: 2)), "the reclaim finds the forged id")
        assertFailed(guest, received: [])
    }

    func testATransmitCompletionWithALengthFailsTheDevice() throws {
        let guest = try bringUp()
        XCTAssertTrue(guest.send(frame(60, seed: 1)))
        guest.transport.rewriteLastUsed(try XCTUnwrap(guest.transport.rings[1]), length: 60)
        XCTAssertTrue(guest.interrupt())
        assertFailed(guest, received: [])
    }

    /// One log line, the device reset, and every later call refused without a trap.
    func assertFailed(_ guest: Guest, received: [[UInt8]], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(guest.driver.failed, file: file, line: line)
        XCTAssertEqual(guest.received, received, file: file, line: line)
        XCTAssertEqual(log.text.components(separatedBy: "virtio-net: device failed: ").count, 2, log.text, file: file, line: line)
        XCTAssertEqual(guest.transport.registers.deviceStatus, 0, "reset", file: file, line: line)
        XCTAssertTrue(guest.transport.rings.isEmpty, "the device let go of the rings", file: file, line: line)
        XCTAssertFalse(guest.send(frame(60, seed: 9)), file: file, line: line)
        guest.driver.drain()
        XCTAssertFalse(guest.driver.handleInterrupt(), file: file, line: line)
        XCTAssertEqual(log.text.components(separatedBy: "virtio-net: device failed: ").count, 2, "still one line", file: file, line: line)
    }
}
