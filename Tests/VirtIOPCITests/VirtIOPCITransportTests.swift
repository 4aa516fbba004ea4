// The modern virtio-pci transport (virtio 1.2 §4.1): its structures found through the vendor
// capabilities of a simulated function laid out as QEMU lays out a `disable-legacy=on`
// device (BAR4: common 0x0000, ISR 0x1000, device 0x2000, notify 0x3000 with a multiplier
// of 4), refused when a capability lies; then the bring-up, queue programming, notification
// and ISR as exact register sequences over recording register buses, one per structure.
import XCTest
import PC
import TestSupport
import VirtIO
@testable import VirtIOPCI

final class VirtIOPCITransportTests: XCTestCase {
    let machine = SimulatedPCI()
    lazy var pci = PCIBusChip(ports: machine)

    /// A vendor capability (§4.1.4): id 0x09, next, length, cfg_type, bar, id, padding,
    /// offset, length (+ notify_off_multiplier for notify).
    func capability(next: UInt8, type: UInt8, bar: UInt8, offset: UInt32, length: UInt32, multiplier: UInt32? = nil) -> [UInt8] {
        var bytes: [UInt8] = [0x09, next, multiplier == nil ? 16 : 20, type, bar, 0, 0, 0]
        for value in [offset, length] + (multiplier.map { [$0] } ?? []) {
            bytes += (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
        }
        return bytes
    }

    /// QEMU's modern virtio-blk on slot 4 behind SeaBIOS.
    func qemuDevice(notifyLength: UInt32 = 0x1000, commonBar: UInt8 = 4) -> PCIFunction {
        machine.add(device: 4, id: 0x1042, line: 11, pin: 1)
        machine.memoryBar(4, bar: 4, address: 0xFE00_0000, size: 0x4000, is64: true, prefetchable: true)
        machine.capabilities(4, first: 0x84, [(0x84, 0x09, 0x70), (0x70, 0x09, 0x60), (0x60, 0x09, 0x50), (0x50, 0x09, 0x40), (0x40, 0x09, 0x00)])
        machine.poke(device: 4, offset: 0x84, capability(next: 0x70, type: 5, bar: 0, offset: 0, length: 4))   // pci-cfg: ignored
        machine.poke(device: 4, offset: 0x70, capability(next: 0x60, type: 2, bar: 4, offset: 0x3000, length: notifyLength, multiplier: 4))
        machine.poke(device: 4, offset: 0x60, capability(next: 0x50, type: 4, bar: 4, offset: 0x2000, length: 0x1000))
        machine.poke(device: 4, offset: 0x50, capability(next: 0x40, type: 3, bar: 4, offset: 0x1000, length: 0x1000))
        machine.poke(device: 4, offset: 0x40, capability(next: 0x00, type: 1, bar: commonBar, offset: 0x0000, length: 0x1000))
        return pci.scan()[0]
    }

    func testTheLayoutComesFromTheCapabilitiesNotFixedOffsets() throws {
        let layout = try VirtIOPCILayout.find(qemuDevice(), pci: pci)
        XCTAssertEqual(layout.common, .init(bar: 4, offset: 0, length: 0x1000))
        XCTAssertEqual(layout.isr, .init(bar: 4, offset: 0x1000, length: 0x1000))
        XCTAssertEqual(layout.device, .init(bar: 4, offset: 0x2000, length: 0x1000))
        XCTAssertEqual(layout.notify, .init(bar: 4, offset: 0x3000, length: 0x1000))
        XCTAssertEqual(layout.notifyMultiplier, 4)
        XCTAssertEqual(machine.otherAccesses, 0, "configuration space is read in dwords only")
    }

    func testAStructureOutsideItsBarOrInAMissingBarIsRefused() {
        XCTAssertThrowsError(try VirtIOPCILayout.find(qemuDevice(notifyLength: 0x2000), pci: pci)) {
            XCTAssertEqual($0 as? VirtIOPCILayout.Problem, .badRegion, "notify 0x3000 + 0x2000 passes the 16 KiB BAR")
        }
    }

    func testACommonStructureInABarTheDeviceLacksIsRefused() {
        XCTAssertThrowsError(try VirtIOPCILayout.find(qemuDevice(commonBar: 2), pci: pci)) {
            XCTAssertEqual($0 as? VirtIOPCILayout.Problem, .badRegion)
        }
    }

    func testALegacyOnlyDeviceHasNoModernCapabilities() {
        machine.add(device: 3, id: 0x1001)
        machine.ioBar(3, bar: 0, port: 0xC000, size: 0x40)
        XCTAssertThrowsError(try VirtIOPCILayout.find(pci.scan()[0], pci: pci)) {
            XCTAssertEqual($0 as? VirtIOPCILayout.Problem, .missingCapability)
        }
    }

    // MARK: register sequences

    let common = RegisterRecorder(), notifyArea = RegisterRecorder(), isr = RegisterRecorder(), device = RegisterRecorder()

    func transport(queues: UInt32 = 1) -> VirtIOPCITransport<RegisterRecorder> {
        common.script(.offset(0x12), [queues])
        return VirtIOPCITransport(common: common, notify: notifyArea, isr: isr, device: device,
                                  notifyMultiplier: 4, notifyLength: 0x1000, deviceLength: 0x20, irq: 11)
    }

    func testBringUpUsesEachFieldsOwnWidth() throws {
        let t = transport()
        common.script(.offset(0x14), [0, 0x0B])
        common.respond = { location in
            guard location == .offset(0x04) else { return nil }
            return self.common.trace.last == .store32(0x00, 1) ? 0x1 : 0x200
        }
        let accepted = try VirtIODevice.initialize(transport: t, wanted: 0x200, required: 0)
        XCTAssertEqual(accepted, 0x1_0000_0200)
        XCTAssertEqual(common.trace, [
            .store8(0x14, 0), .load8(0x14, 0),
            .store8(0x14, 0x01), .store8(0x14, 0x03),
            .store32(0x00, 0), .load32(0x04, 0x200), .store32(0x00, 1), .load32(0x04, 0x1),
            .store32(0x08, 0), .store32(0x0C, 0x200), .store32(0x08, 1), .store32(0x0C, 0x1),
            .store8(0x14, 0x0B), .load8(0x14, 0x0B),
        ])
    }

    func testQueueProgrammingThenNotifyAtTheQueuesOwnOffset() throws {
        let t = transport(queues: 2)
        common.script(.offset(0x18), [256])
        common.script(.offset(0x1E), [3])            // queue_notify_off
        XCTAssertEqual(t.queueMax(1), 256)
        let queue = try SplitVirtqueue(size: 128, descriptorTable: 0x1_0000_2000, availRing: 0x1_0000_2800, usedRing: 0x1_0000_3000)
        VirtIODevice.activate(transport: t, index: 1, queue: queue)
        XCTAssertEqual(common.trace, [
            .load16(0x12, 2), .store16(0x16, 1), .load16(0x1C, 0), .load16(0x18, 256),
            .store16(0x16, 1), .store16(0x18, 128),
            .store32(0x20, 0x2000), .store32(0x24, 1),
            .store32(0x28, 0x2800), .store32(0x2C, 1),
            .store32(0x30, 0x3000), .store32(0x34, 1),
            .store16(0x1A, 0xFFFF), .load16(0x1E, 3),
            .store16(0x16, 1), .store16(0x1C, 1),
        ])
        t.notify(1)
        XCTAssertEqual(notifyArea.trace, [.store16(12, 1)], "queue_notify_off 3 × multiplier 4")
    }

    func testQueuesTheDeviceLacksOrThatAreLiveReadAsAbsent() {
        let t = transport(queues: 1)
        XCTAssertEqual(t.queueMax(1), 0, "num_queues is 1")
        common.script(.offset(0x1C), [1])
        common.script(.offset(0x18), [256])
        XCTAssertEqual(t.queueMax(0), 0, "an enabled queue is not set up again")
    }

    func testANotifyOffsetBeyondTheStructureIsNeverWritten() throws {
        let t = transport()
        common.script(.offset(0x1E), [0x4000])       // × 4 = 64 KiB: outside the 4 KiB notify area
        t.setUpQueue(0, size: 8, descriptor: 0x1000, avail: 0x2000, used: 0x3000)
        t.notify(0)
        t.notify(5)                                  // never set up
        XCTAssertEqual(notifyArea.trace, [])
    }

    func testTheISRIsReadOnceAndAcknowledgeWritesNothing() {
        let t = transport()
        isr.script(.offset(0), [0x3, 0])
        XCTAssertEqual(t.interruptStatus(), 0x3)
        t.acknowledge(0x3)
        XCTAssertEqual(t.interruptStatus(), 0)
        XCTAssertEqual(isr.trace, [.load8(0, 0x3), .load8(0, 0)], "reading clears (§4.1.4.5); nothing is written")
    }

    func testConfigurationReadsStayInsideTheDeviceStructure() {
        let t = transport()
        device.script(.offset(0), [0x40])
        common.script(.offset(0x15), [5])
        XCTAssertEqual(t.configRead(0), 0x40)
        XCTAssertEqual(t.configRead(0x20), 0, "past its length")
        XCTAssertEqual(t.configRead(-1), 0)
        XCTAssertEqual(t.configGeneration(), 5)
        XCTAssertEqual(device.trace, [.load8(0, 0x40)])
    }
}
