// COM1 over a recording port bus: the initialisation the C `arch_serial_init` did, byte
// for byte (PC16550D datasheet, table 2), polling before each byte, a UART that never
// drains, and the isa-debug-exit write.
import XCTest
import PC
import TestSupport

final class UART16550Tests: XCTestCase {
    let bus = RegisterRecorder()
    lazy var uart = UART16550Chip(ports: bus, base: 0x3F8)

    func testInitialisation() {
        uart.initialize()
        XCTAssertEqual(bus.trace, [
            .out8(0x3F9, 0x00),                 // IER: no UART interrupts
            .out8(0x3FB, 0x80),                 // LCR: DLAB on
            .out8(0x3F8, 0x01),                 // divisor 1: 115200 baud
            .out8(0x3F9, 0x00),
            .out8(0x3FB, 0x03),                 // 8 data bits, no parity, 1 stop bit
            .out8(0x3FA, 0xC7),                 // FIFOs on and cleared
            .out8(0x3FC, 0x03),                 // DTR, RTS
        ])
    }

    func testPutWaitsForTheTransmitter() {
        bus.script(.port(0x3FD), [0x00, 0x00, 0x60])
        uart.put(0x41)
        XCTAssertEqual(bus.trace, [.in8(0x3FD, 0), .in8(0x3FD, 0), .in8(0x3FD, 0x60), .out8(0x3F8, 0x41)])
    }

    func testAUARTThatNeverDrainsCostsABoundedWait() {
        bus.isRecording = false                 // line status reads 0 forever
        uart.put(0x41)
        uart.put(0x42)
        XCTAssertEqual(bus.accessCount, 2 * (UARTRegisters.spinLimit + 1))
    }

    func testTheKernelsCOM1() {
        XCTAssertEqual(UART16550().base, 0x3F8)
    }

    func testDebugExit() {
        DebugExit.write(3, ports: bus)
        XCTAssertEqual(bus.trace, [.out32(0xF4, 3)])
    }
}
