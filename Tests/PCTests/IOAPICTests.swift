// The I/O APIC over a recording register bus: every access goes IOREGSEL (0x00) then
// IOWIN (0x10) (82093AA datasheet 3.1), masking and routing write the redirection
// entries in the order asserted here, and an odd version register cannot make either
// one touch pins the chip does not have.
import XCTest
import PC
import TestSupport

final class IOAPICTests: XCTestCase {
    let bus = RegisterRecorder()
    lazy var ioapic = IOAPICChip(registers: bus)

    /// QEMU's IOAPIC: version 0x11, 24 redirection entries.
    let version: UInt32 = 0x0017_0011

    func testMaskAllMasksEveryPin() {
        bus.script(.offset(0x10), [version])
        ioapic.maskAll()
        var expected: [RegisterRecorder.Access] = [.store32(0x00, 0x01), .load32(0x10, version)]
        for pin in UInt32(0)..<24 {
            expected += [.store32(0x00, 0x10 + 2 * pin), .store32(0x10, 0x1_0000),   // low: masked
                         .store32(0x00, 0x11 + 2 * pin), .store32(0x10, 0)]          // high: CPU 0
        }
        XCTAssertEqual(bus.trace, expected)
        XCTAssertEqual(Array(bus.trace.prefix(6)), [
            .store32(0x00, 0x01), .load32(0x10, version),
            .store32(0x00, 0x10), .store32(0x10, 0x1_0000),
            .store32(0x00, 0x11), .store32(0x10, 0),
        ])
    }

    func testRouteWritesTheDestinationBeforeUnmasking() {
        bus.script(.offset(0x10), [version])
        ioapic.route(pin: 12, vector: 0x2C, apicID: 1, levelTriggered: true)
        ioapic.route(pin: 4, vector: 0x24, apicID: 0, levelTriggered: false)
        XCTAssertEqual(bus.trace, [
            .store32(0x00, 0x01), .load32(0x10, version),
            .store32(0x00, 0x29), .store32(0x10, 0x0100_0000),  // high word: APIC ID 1
            .store32(0x00, 0x28), .store32(0x10, 0x802C),       // low word: level, vector 0x2C, unmasked
            .store32(0x00, 0x01), .load32(0x10, version),
            .store32(0x00, 0x19), .store32(0x10, 0),
            .store32(0x00, 0x18), .store32(0x10, 0x24),         // edge, active high
        ])
    }

    func testAVersionClaimingTooManyPinsMasksOnlyTheChipsTwentyFour() {
        bus.script(.offset(0x10), [0x00FF_0011])                 // 256 entries
        ioapic.maskAll()
        let selects = bus.trace.filter { if case .store32(0x00, _) = $0 { true } else { false } }
        XCTAssertEqual(selects.count, 1 + 24 * 2)
        XCTAssertEqual(selects.last, .store32(0x00, 0x11 + 2 * 23))
    }

    func testAPinTheChipDoesNotHaveIsNotRouted() {
        bus.script(.offset(0x10), [0x0007_0011])                 // 8 entries
        ioapic.route(pin: 12, vector: 0x2C, apicID: 0, levelTriggered: true)
        XCTAssertEqual(bus.trace, [.store32(0x00, 0x01), .load32(0x10, 0x0007_0011)])
        bus.clearTrace()
        ioapic.maskAll()
        XCTAssertEqual(bus.trace.count, 2 + 8 * 4)
    }
}
