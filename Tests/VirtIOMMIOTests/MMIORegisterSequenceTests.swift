// The virtio-mmio transport over a recording register bus: the bring-up that every driver
// runs (VirtIO's `VirtIODevice`), the queue programming and the interrupt handshake, as the
// exact list of register accesses they make (virtio 1.2 §4.2.2 for the register map,
// §4.2.3.1 for device discovery, §3.1.1 for the initialisation order, §4.2.3.2 for queue
// set-up). The same transport value drives the device in the kernel through an
// `MMIOWindow`; only the register bus differs.
import XCTest
import PC
import TestSupport
import VirtIO
@testable import VirtIOMMIO

final class MMIORegisterSequenceTests: XCTestCase {
    // Register offsets, from the specification's table (§4.2.2), not from the type under test.
    let magic: UInt = 0x000, version: UInt = 0x004, deviceID: UInt = 0x008
    let deviceFeatures: UInt = 0x010, deviceFeaturesSel: UInt = 0x014
    let driverFeatures: UInt = 0x020, driverFeaturesSel: UInt = 0x024
    let queueSel: UInt = 0x030, queueNumMax: UInt = 0x034, queueNum: UInt = 0x038
    let queueReady: UInt = 0x044, queueNotify: UInt = 0x050
    let interruptStatus: UInt = 0x060, interruptACK: UInt = 0x064, status: UInt = 0x070
    let descLow: UInt = 0x080, descHigh: UInt = 0x084, driverLow: UInt = 0x090
    let driverHigh: UInt = 0x094, deviceLow: UInt = 0x0A0, deviceHigh: UInt = 0x0A4
    let configGeneration: UInt = 0x0FC, config: UInt = 0x100

    func transport(_ recorder: RegisterRecorder, irq: Int = 12) -> VirtIOMMIOTransport<RegisterRecorder> {
        VirtIOMMIOTransport(registers: recorder, irq: irq)
    }

    /// A modern vsock device: "virt", version 2, device ID 19.
    func modernDevice(id: UInt32 = 19, version: UInt32 = 2) -> RegisterRecorder {
        let r = RegisterRecorder()
        r.script(.offset(magic), [0x7472_6976])
        r.script(.offset(self.version), [version])
        r.script(.offset(deviceID), [id])
        return r
    }

    func testDiscoveryReadsMagicThenVersionThenDeviceID() {
        let r = modernDevice()
        XCTAssertEqual(transport(r).deviceID, 19)
        XCTAssertEqual(r.trace, [.load32(magic, 0x7472_6976), .load32(version, 2), .load32(deviceID, 19)])
    }

    func testDiscoveryRefusesWrongMagicWithoutReadingFurther() {
        let r = RegisterRecorder()
        r.script(.offset(magic), [0x1234_5678])
        r.script(.offset(version), [2])
        XCTAssertNil(transport(r).deviceID)
        XCTAssertEqual(r.trace, [.load32(magic, 0x1234_5678)], "§4.2.3.1.1: stop at a wrong magic value")
    }

    func testDeviceIDZeroIsAnEmptySlot() {
        let r = modernDevice(id: 0)
        XCTAssertNil(transport(r).deviceID, "§4.2.3.1: device ID 0 is a placeholder with no device")
    }

    func testLegacyVersionOneIsRecognisedAndNotUsed() {
        let r = modernDevice(version: 1)
        let t = transport(r)
        XCTAssertNil(t.deviceID)
        XCTAssertTrue(t.isLegacy)
        XCTAssertFalse(transport(modernDevice()).isLegacy)
    }

    func testBringUpWritesStatusFeaturesAndStatusInSpecOrder() throws {
        let r = modernDevice()
        // Status reads: 0 after the reset, then FEATURES_OK kept (ACK|DRIVER|FEATURES_OK).
        r.script(.offset(status), [0, 0x0B])
        // Feature words: select 0 offers bit 0 and bit 3, select 1 offers VERSION_1 (bit 32).
        r.respond = { location in
            guard location == .offset(self.deviceFeatures) else { return nil }
            return r.trace.last == .store32(self.deviceFeaturesSel, 1) ? 0x1 : 0x9
        }
        let accepted = try VirtIODevice.initialize(transport: transport(r), wanted: 0x1, required: 0)
        XCTAssertEqual(accepted, 0x1_0000_0001, "the wanted bit and VERSION_1, not the unwanted bit 3")
        XCTAssertEqual(r.trace, [
            .store32(status, 0),                         // 1. reset
            .load32(status, 0),                          //    and wait for it
            .store32(status, 0x01),                      // 2. ACKNOWLEDGE
            .store32(status, 0x03),                      // 3. DRIVER
            .store32(deviceFeaturesSel, 0), .load32(deviceFeatures, 0x9),   // 4. read features
            .store32(deviceFeaturesSel, 1), .load32(deviceFeatures, 0x1),
            .store32(driverFeaturesSel, 0), .store32(driverFeatures, 0x1),  //    write the subset
            .store32(driverFeaturesSel, 1), .store32(driverFeatures, 0x1),
            .store32(status, 0x0B),                      // 5. FEATURES_OK
            .load32(status, 0x0B),                       // 6. and check it stuck
        ])

        r.clearTrace()
        VirtIODevice.finish(transport: transport(r))
        XCTAssertEqual(r.trace, [.store32(status, 0x0F)], "8. DRIVER_OK keeps every earlier bit")
    }

    func testRefusedFeaturesSetFailedOnTopOfWhatTheDeviceReports() {
        let r = modernDevice()
        r.script(.offset(status), [0, 0x03])        // FEATURES_OK did not stick
        r.respond = { location in
            guard location == .offset(self.deviceFeatures) else { return nil }
            return r.trace.last == .store32(self.deviceFeaturesSel, 1) ? 0x1 : 0
        }
        XCTAssertThrowsError(try VirtIODevice.initialize(transport: transport(r), wanted: 0, required: 0)) {
            XCTAssertEqual($0 as? VirtIOError, .featuresNotAccepted)
        }
        XCTAssertEqual(r.trace.suffix(2), [.load32(status, 0x03), .store32(status, 0x83)])
    }

    func testQueueSizeSelectsTheQueueAndChecksItIsNotLive() throws {
        let r = modernDevice()
        r.script(.offset(queueNumMax), [1024])
        let size = try VirtIODevice.queueSize(transport: transport(r), index: 1, preferred: 256)
        XCTAssertEqual(size, 256)
        XCTAssertEqual(r.trace, [.store32(queueSel, 1), .load32(queueReady, 0), .load32(queueNumMax, 1024)])
    }

    func testAQueueAlreadyLiveOrAbsentIsUnavailable() {
        let live = modernDevice()
        live.script(.offset(queueReady), [1])
        live.script(.offset(queueNumMax), [256])
        XCTAssertThrowsError(try VirtIODevice.queueSize(transport: transport(live), index: 0, preferred: 64)) {
            XCTAssertEqual($0 as? VirtIOError, .queueUnavailable(0))
        }
        let absent = modernDevice()             // QueueNumMax reads 0: no such queue (§4.2.3.2)
        XCTAssertThrowsError(try VirtIODevice.queueSize(transport: transport(absent), index: 2, preferred: 64)) {
            XCTAssertEqual($0 as? VirtIOError, .queueUnavailable(2))
        }
    }

    func testActivateProgramsSizeAndSixAddressHalvesThenReady() throws {
        let r = modernDevice()
        let queue = try SplitVirtqueue(size: 64, descriptorTable: 0x1_2345_0000,
                                       availRing: 0x1_2345_0400, usedRing: 0x1_2345_1000)
        VirtIODevice.activate(transport: transport(r), index: 2, queue: queue)
        XCTAssertEqual(r.trace, [
            .store32(queueSel, 2), .store32(queueNum, 64),
            .store32(descLow, 0x2345_0000), .store32(descHigh, 1),
            .store32(driverLow, 0x2345_0400), .store32(driverHigh, 1),
            .store32(deviceLow, 0x2345_1000), .store32(deviceHigh, 1),
            .store32(queueSel, 2), .store32(queueReady, 1),
        ])
    }

    func testNotifyInterruptAcknowledgeAndConfiguration() {
        let r = modernDevice()
        r.script(.offset(interruptStatus), [0x3])
        r.script(.offset(configGeneration), [7])
        r.script(.offset(config + 4), [0xAB])
        let t = transport(r, irq: 17)
        XCTAssertEqual(t.irq, 17)
        t.notify(1)
        let pending = t.interruptStatus()
        t.acknowledge(pending)
        XCTAssertEqual(t.configGeneration(), 7)
        XCTAssertEqual(t.configRead(4), 0xAB)
        XCTAssertEqual(r.trace, [
            .store32(queueNotify, 1),
            .load32(interruptStatus, 0x3), .store32(interruptACK, 0x3),
            .load32(configGeneration, 7),
            .load8(config + 4, 0xAB),
        ])
    }

    func testQueueMaxIsCappedAtTheSplitRingLimit() {
        let r = modernDevice()
        r.script(.offset(queueNumMax), [0xFFFF_FFFF])  // a device that writes nonsense
        XCTAssertEqual(transport(r).queueMax(0), 32768)
    }
}
