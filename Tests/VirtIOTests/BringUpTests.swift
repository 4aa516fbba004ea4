// Device bring-up over the recording transport: the register trace is exactly the
// §3.1.1 sequence, and each misbehaving device ends in its own error with FAILED set.
import VirtIO
import XCTest
import TestSupport

final class BringUpTests: XCTestCase {
    let bit0: UInt64 = 1 << 0
    let bit3: UInt64 = 1 << 3
    let bit5: UInt64 = 1 << 5

    func testTheTraceFollowsTheSpecOrder() throws {
        // A device left running by a previous boot (status 0x0F) offering VERSION_1,
        // EVENT_IDX (which the Core does not implement) and two device bits.
        let offered = VirtIOFeature.version1 | VirtIOFeature.eventIndex | bit0 | bit5
        let transport = FakeTransport(offeredFeatures: offered, queueMaxima: [128, 64], initialStatus: 0x0F)
        let accepted = try VirtIODevice.initialize(
            transport: transport, wanted: bit0 | bit3 | VirtIOFeature.eventIndex, required: 0)
        XCTAssertEqual(accepted, VirtIOFeature.version1 | bit0)

        let size = try VirtIODevice.queueSize(transport: transport, index: 0, preferred: 256)
        XCTAssertEqual(size, 128)
        let memory = FakeGuestMemory(size: 1 << 16, base: 0x10000)
        let layout = try XCTUnwrap(VirtqueueLayout(size: size, base: 0x10000))
        var queue = try SplitVirtqueue(layout: layout)
        try queue.setUp(memory)
        VirtIODevice.activate(transport: transport, index: 0, queue: queue)
        VirtIODevice.finish(transport: transport)

        XCTAssertEqual(transport.trace, [
            .writeStatus(0),                                    // 1. reset
            .readStatus(0),                                     //    ... complete (§2.4.2)
            .writeStatus(0x01),                                 // 2. ACKNOWLEDGE
            .writeStatus(0x03),                                 // 3. DRIVER
            .readDeviceFeatures(select: 0, value: UInt32(truncatingIfNeeded: offered)),  // 4.
            .readDeviceFeatures(select: 1, value: 1),
            .writeDriverFeatures(select: 0, value: 1),
            .writeDriverFeatures(select: 1, value: 1),
            .writeStatus(0x0B),                                 // 5. FEATURES_OK
            .readStatus(0x0B),                                  // 6. still set
            .queueMax(index: 0, value: 128),                    // 7. device-specific setup
            .setUpQueue(index: 0, size: 128, descriptor: layout.descriptorTable,
                        avail: layout.availRing, used: layout.usedRing),
            .enableQueue(0),
            .writeStatus(0x0F),                                 // 8. DRIVER_OK
        ])
        XCTAssertEqual(transport.deviceStatus, 0x0F)
        XCTAssertEqual(transport.driverFeatures, VirtIOFeature.version1 | bit0)
        XCTAssertEqual(transport.enabledQueues, [0])
    }

    func testFeaturesOKThatDoesNotStick() {
        let transport = FakeTransport(offeredFeatures: VirtIOFeature.version1 | bit0)
        transport.featuresOKSticks = false
        assertThrows(.featuresNotAccepted) {
            try VirtIODevice.initialize(transport: transport, wanted: bit0, required: 0)
        }
        XCTAssertEqual(Array(transport.trace.suffix(3)), [.writeStatus(0x0B), .readStatus(0x03), .writeStatus(0x83)])
        XCTAssertTrue(DeviceStatus(rawValue: transport.deviceStatus).contains(.failed))
        XCTAssertFalse(transport.trace.contains(.writeStatus(0x0F)))
    }

    func testMissingVersion1() {
        let transport = FakeTransport(offeredFeatures: bit0 | bit5)
        assertThrows(.missingVersion1) {
            try VirtIODevice.initialize(transport: transport, wanted: bit0, required: 0)
        }
        XCTAssertEqual(transport.deviceStatus, 0x83)                   // ACK | DRIVER | FAILED
        XCTAssertFalse(transport.trace.contains { if case .writeDriverFeatures = $0 { true } else { false } })
    }

    func testMissingRequiredFeature() {
        let transport = FakeTransport(offeredFeatures: VirtIOFeature.version1 | bit0)
        assertThrows(.missingRequiredFeatures(bit3 | bit5)) {
            try VirtIODevice.initialize(transport: transport, wanted: bit0, required: bit3 | bit5)
        }
        XCTAssertEqual(transport.deviceStatus, 0x83)
    }

    func testRequiringWhatTheCoreCannotDoTouchesNothing() {
        let transport = FakeTransport(offeredFeatures: VirtIOFeature.version1 | VirtIOFeature.indirectDescriptors)
        assertThrows(.unsupportedFeatures(VirtIOFeature.indirectDescriptors)) {
            try VirtIODevice.initialize(transport: transport, wanted: 0, required: VirtIOFeature.indirectDescriptors)
        }
        XCTAssertEqual(transport.trace, [])
    }

    func testAStatusThatNeverResets() {
        let transport = FakeTransport(initialStatus: 0x0F)
        transport.neverResets = true
        assertThrows(.resetTimedOut(lastStatus: 0x0F)) {
            try VirtIODevice.initialize(transport: transport, wanted: 0, required: 0, resetPolls: 100)
        }
        XCTAssertEqual(transport.trace.filter { if case .readStatus = $0 { true } else { false } }.count, 100)
        XCTAssertEqual(transport.trace.last, .writeStatus(0x80))
        XCTAssertTrue(DeviceStatus(rawValue: transport.deviceStatus).contains(.failed))
    }

    func testQueueSizes() {
        let transport = FakeTransport(queueMaxima: [1024, 100, 0, 1])
        XCTAssertEqual(try VirtIODevice.queueSize(transport: transport, index: 0, preferred: 256), 256)
        XCTAssertEqual(try VirtIODevice.queueSize(transport: transport, index: 1, preferred: 256), 64)
        XCTAssertEqual(try VirtIODevice.queueSize(transport: transport, index: 3, preferred: 256), 1)
        assertThrows(.queueUnavailable(2)) { try VirtIODevice.queueSize(transport: transport, index: 2, preferred: 256) }
        assertThrows(.queueUnavailable(9)) { try VirtIODevice.queueSize(transport: transport, index: 9, preferred: 256) }
    }

    func testConfigurationReads() {
        // virtio-vsock's config: le64 guest_cid.
        let transport = FakeTransport(config: [3, 0, 0, 0, 0, 0, 0, 0, 0x34, 0x12])
        XCTAssertEqual(transport.configRead64(0), 3)
        XCTAssertEqual(transport.configRead16(8), 0x1234)
        XCTAssertEqual(transport.configRead32(6), 0x1234_0000)
        transport.generationStepPerRead = 1                            // never settles
        XCTAssertNil(transport.configRead32(0))
    }

    func testStatusHelpers() {
        let transport = FakeTransport(initialStatus: 0x0F)
        XCTAssertFalse(VirtIODevice.needsReset(transport: transport))
        transport.deviceStatus |= DeviceStatus.deviceNeedsReset.rawValue
        XCTAssertTrue(VirtIODevice.needsReset(transport: transport))
        VirtIODevice.fail(transport: transport)
        XCTAssertEqual(transport.deviceStatus, 0xCF)
    }
}
