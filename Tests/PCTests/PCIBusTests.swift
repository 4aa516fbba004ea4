// PCI enumeration over a simulated configuration space: a port bus that answers 0xCF8/0xCFC
// as mechanism #1 does, with BARs that read back their size mask after all-ones are written
// (PCI 3.0 §6.2.5.1). The machines simulated are what SeaBIOS leaves on QEMU's pc: a
// modern virtio-pci device with one 64-bit prefetchable BAR, vendor capabilities, INTA on
// line 11; plus bridges, multi-function devices and hostile lists.
import XCTest
import PC
import TestSupport

final class PCIBusTests: XCTestCase {
    let machine = SimulatedPCI()
    lazy var pci = PCIBusChip(ports: machine)
    var logged: [String] = []

    func scan() -> [PCIFunction] { pci.scan(log: { self.logged.append("\($0)") }) }

    /// QEMU's pc as SeaBIOS leaves it: the host bridge and a modern virtio-blk in slot 4.
    func addVirtioBlock(device: UInt8 = 4, line: UInt8 = 11) {
        machine.add(device: device, id: 0x1042, status: 0, line: line, pin: 1)
        machine.memoryBar(device, bar: 4, address: 0xFE00_0000, size: 0x4000, is64: true, prefetchable: true)
        machine.capabilities(device, first: 0x84, [(0x84, 0x09, 0x70), (0x70, 0x09, 0x60), (0x60, 0x09, 0x50),
                                                   (0x50, 0x09, 0x40), (0x40, 0x09, 0x00)])
    }

    func testFindsTheVirtioDeviceWithItsBarCapabilitiesAndInterrupt() throws {
        machine.add(device: 0, vendor: 0x8086, id: 0x1237)
        addVirtioBlock()
        let found = scan()
        XCTAssertEqual(found.map(\.address), [PCIAddress(bus: 0, device: 0, function: 0),
                                              PCIAddress(bus: 0, device: 4, function: 0)])
        let blk = found[1]
        XCTAssertEqual(blk.vendorID, 0x1AF4)
        XCTAssertEqual(blk.deviceID, 0x1042, "modern virtio-blk: 0x1040 + 2")
        XCTAssertEqual(blk.bars, [PCIBar(index: 4, kind: .memory64, address: 0xFE00_0000, size: 0x4000, prefetchable: true)])
        XCTAssertEqual(blk.capabilities.map(\.offset), [0x84, 0x70, 0x60, 0x50, 0x40])
        XCTAssertTrue(blk.capabilities.allSatisfy { $0.id == 0x09 })
        XCTAssertEqual(blk.interruptLine, 11)
        XCTAssertEqual(blk.interruptPin, 1)
        XCTAssertEqual(logged, [])
        XCTAssertEqual(machine.otherAccesses, 0, "only dword accesses to 0xCF8/0xCFC")
    }

    func testSizingRestoresEveryBarAndTheCommandAndDecodesNothingMeanwhile() throws {
        addVirtioBlock()
        let before = machine.functions[SimulatedPCI.key(0, 4, 0)]!.config
        _ = scan()
        XCTAssertEqual(machine.functions[SimulatedPCI.key(0, 4, 0)]!.config, before, "configuration space is as it was")
        let firstAllOnes = try XCTUnwrap(machine.writes.firstIndex { $0.1 == 0xFFFF_FFFF })
        let commandOff = try XCTUnwrap(machine.writes.firstIndex { $0.0 & 0xFC == 0x04 })
        XCTAssertLessThan(commandOff, firstAllOnes, "decoding is switched off before a BAR is sized")
        XCTAssertEqual(machine.writes[commandOff].1 & 0x3, 0)
        XCTAssertEqual(machine.writes.last.map { ($0.0 & 0xFC, $0.1) }?.0, 0x04, "and back on at the end")
        XCTAssertEqual(machine.writes.last?.1, 0x0003)
    }

    func testDecodesIOAndThirtyTwoBitBarsAndSkipsEmptyOnes() {
        machine.add(device: 3, id: 0x1000)
        machine.ioBar(3, bar: 0, port: 0xC000, size: 0x20)
        machine.memoryBar(3, bar: 1, address: 0xFEB0_0000, size: 0x1000, is64: false, prefetchable: false)
        let bars = scan()[0].bars
        XCTAssertEqual(bars, [PCIBar(index: 0, kind: .io, address: 0xC000, size: 0x20, prefetchable: false),
                              PCIBar(index: 1, kind: .memory32, address: 0xFEB0_0000, size: 0x1000, prefetchable: false)])
    }

    func testMultiFunctionDevicesListEveryFunctionPresent() {
        machine.add(device: 1, function: 0, vendor: 0x8086, id: 0x7000, headerType: 0x80)
        machine.add(device: 1, function: 1, vendor: 0x8086, id: 0x7010)
        machine.add(device: 1, function: 3, vendor: 0x8086, id: 0x7113)
        machine.add(device: 2, function: 0, id: 0x1234)
        machine.add(device: 2, function: 1, id: 0x9999)    // not multi-function: never probed
        XCTAssertEqual(scan().map { [$0.address.device, $0.address.function] }, [[1, 0], [1, 1], [1, 3], [2, 0]])
    }

    func testWalksTheBusBehindABridgeOnceEvenWhenBridgesLoop() {
        machine.add(device: 0, vendor: 0x8086, id: 0x1237)
        machine.add(device: 0x1E, id: 0x0001, headerType: 1)
        machine.functions[SimulatedPCI.key(0, 0x1E, 0)]!.config[6] = 0x0001_0100   // secondary bus 1
        machine.add(bus: 1, device: 0, id: 0x0002, headerType: 1)
        machine.functions[SimulatedPCI.key(1, 0, 0)]!.config[6] = 0x0000_0001       // secondary bus 0: a loop
        machine.add(bus: 1, device: 5, id: 0x1041)
        let found = scan()
        XCTAssertEqual(found.map { [$0.address.bus, $0.address.device] }, [[0, 0], [0, 0x1E], [1, 0], [1, 5]])
        XCTAssertEqual(logged, ["pci: a bridge names a bus already walked; not following it"])
    }

    func testALoopingCapabilityListEndsAtTheRepeat() {
        machine.add(device: 4, id: 0x1042)
        machine.capabilities(4, first: 0x40, [(0x40, 0x09, 0x50), (0x50, 0x11, 0x40)])
        XCTAssertEqual(scan()[0].capabilities.map(\.offset), [0x40, 0x50])
        XCTAssertEqual(logged, ["pci: a capability list loops; it ends at the repeat"])
    }

    func testACapabilityPointerIntoTheHeaderEndsTheList() {
        machine.add(device: 4, id: 0x1042)
        machine.capabilities(4, first: 0x40, [(0x40, 0x09, 0x10)])
        XCTAssertEqual(scan()[0].capabilities.map(\.offset), [0x40])
        XCTAssertEqual(logged, ["pci: a capability pointer leads into the header; the list ends there"])
    }

    func testNoCapabilityListWithoutTheStatusBit() {
        machine.add(device: 4, id: 0x1042)
        machine.functions[SimulatedPCI.key(0, 4, 0)]!.config[13] = 0x40
        XCTAssertEqual(scan()[0].capabilities, [])
    }

    func testBusMasteringKeepsTheOtherCommandBits() {
        machine.add(device: 4, id: 0x1042, command: 0x0103)
        let at = PCIAddress(bus: 0, device: 4, function: 0)
        pci.enableBusMastering(at)
        XCTAssertEqual(pci.read16(at, 0x04), 0x0107)
        XCTAssertEqual(machine.writes.map(\.1), [0x0107], "one write, of the command half only")
    }

    func testAnEmptyMachineIsAnEmptyListAndAddressesAreMechanismOne() {
        XCTAssertEqual(scan(), [])
        XCTAssertEqual(PCIAddress(bus: 1, device: 0x1F, function: 7).configAddress(0x3D), 0x8001_FF3C)
    }
}
