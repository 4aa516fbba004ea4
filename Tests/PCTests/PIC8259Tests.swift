// The 8259 pair over a recording port bus: the ICW1-ICW4 remap to the vectors the kernel
// uses (0x20-0x2F), masks, EOIs and the spurious IRQ 7/15 check, as exact port accesses
// (Intel 8259A datasheet, "Programming the 8259A").
import XCTest
import PC
import TestSupport

final class PIC8259Tests: XCTestCase {
    let bus = RegisterRecorder()
    lazy var pic = PIC8259Chip(ports: bus)

    /// An initialisation word, then the write to port 0x80 that gives the chip time.
    func delayed(_ port: UInt16, _ value: UInt8) -> [RegisterRecorder.Access] {
        [.out8(port, value), .out8(0x80, 0)]
    }

    func testRemapToTheKernelsVectors() {
        pic.remap(masterBase: 0x20, slaveBase: 0x28)
        XCTAssertEqual(bus.trace,
            delayed(0x20, 0x11) + delayed(0xA0, 0x11)           // ICW1: init, ICW4 follows
            + delayed(0x21, 0x20) + delayed(0xA1, 0x28)         // ICW2: vector bases
            + delayed(0x21, 0x04) + delayed(0xA1, 0x02)         // ICW3: slave on IR2, identity 2
            + delayed(0x21, 0x01) + delayed(0xA1, 0x01)         // ICW4: 8086 mode
            + delayed(0x21, 0xFF) + delayed(0xA1, 0xFF))        // OCW1: every line masked
        XCTAssertEqual(pic.vector(irq: 0), 0x20)
        XCTAssertEqual(pic.vector(irq: 15), 0x2F)
        XCTAssertEqual(pic.irq(vector: 0x2C), 12)
        XCTAssertNil(pic.irq(vector: 0x30))
        XCTAssertNil(pic.irq(vector: 0x08))                     // the BIOS's base no longer
    }

    func testUnmaskAndMask() {
        bus.script(.port(0x21), [0xFF, 0xFE, 0xFA])
        bus.script(.port(0xA1), [0xFF, 0xF7])
        pic.unmask(irq: 0)                                      // the PIT
        pic.unmask(irq: 11)                                     // a slave line opens IR2 too
        pic.mask(irq: 11)                                       // the last slave line: IR2 closes
        XCTAssertEqual(bus.trace, [
            .in8(0x21, 0xFF), .out8(0x21, 0xFE),
            .in8(0xA1, 0xFF), .out8(0xA1, 0xF7), .in8(0x21, 0xFE), .out8(0x21, 0xFA),
            .in8(0xA1, 0xF7), .out8(0xA1, 0xFF), .in8(0x21, 0xFA), .out8(0x21, 0xFE),
        ])
    }

    func testEndOfInterrupt() {
        pic.endOfInterrupt(irq: 0)
        pic.endOfInterrupt(irq: 12)
        XCTAssertEqual(bus.trace, [
            .out8(0x20, 0x20),                                  // non-specific EOI, master
            .out8(0xA0, 0x20), .out8(0x20, 0x20),               // slave first, then master
        ])
    }

    /// What Legacy's acknowledgement does: check IRQ 7/15, then EOI unless spurious.
    func acknowledge(_ irq: UInt8) {
        if !pic.isSpurious(irq: irq) { pic.endOfInterrupt(irq: irq) }
    }

    func readISR(master: UInt8, slave: UInt8) -> [RegisterRecorder.Access] {
        [.out8(0x20, 0x0B), .out8(0xA0, 0x0B), .in8(0xA0, slave), .in8(0x20, master),
         .out8(0x20, 0x0A), .out8(0xA0, 0x0A)]                  // back to reading IRR
    }

    func testASpuriousIRQ7GetsNoEOI() {
        acknowledge(7)
        XCTAssertEqual(bus.trace, readISR(master: 0, slave: 0))
    }

    func testASpuriousIRQ15EndsOnlyTheMastersCascade() {
        bus.script(.port(0x20), [0x04])                         // IR2 in service, for the slave
        acknowledge(15)
        XCTAssertEqual(bus.trace, readISR(master: 0x04, slave: 0) + [.out8(0x20, 0x20)])
    }

    func testARealIRQ7IsAcknowledged() {
        bus.script(.port(0x20), [0x80])
        acknowledge(7)
        XCTAssertEqual(bus.trace, readISR(master: 0x80, slave: 0) + [.out8(0x20, 0x20)])
    }

    func testOtherIRQsAreNeverSpuriousAndReadNothing() {
        acknowledge(3)
        XCTAssertEqual(bus.trace, [.out8(0x20, 0x20)])
    }

    func testDisableAndMasks() {
        pic.disable()
        bus.script(.port(0x21), [0xFF])
        bus.script(.port(0xA1), [0xFF])
        XCTAssertEqual(pic.masks, 0xFFFF)
        XCTAssertEqual(bus.trace, [.out8(0x21, 0xFF), .out8(0xA1, 0xFF), .in8(0xA1, 0xFF), .in8(0x21, 0xFF)])
    }
}
