// The COM1 serial port, a 16550A-compatible UART at I/O port 0x3F8 on both QEMU
// machines: the kernel's console (`SerialConsole`). Transmit only, polled, no interrupts.
// `UART16550` is the kernel's COM1 over the CPU's I/O ports; the host tests run
// `UART16550Chip` over a `RegisterRecorder` (Tests/PCTests).
//
// Rules for callers:
//   * `initialize` once, before the first `put` (PCMachine does it first thing).
//   * `put` waits for room in the transmitter, at most `spinLimit` polls of the line
//     status: a UART that never drains drops output rather than hanging the kernel.
//   * Not locked: concurrent writers interleave bytes (Core's Log serialises lines).
//
// References (TI PC16550D datasheet, table 2 "Register Summary"; QEMU hw/char/serial.c):
//   * Offsets from the base: 0 THR (write) / divisor latch low when LCR bit 7 (DLAB)
//     is set, 1 IER / divisor latch high under DLAB, 2 FCR (write), 3 LCR, 4 MCR, 5 LSR.
//   * Divisor = 115200 / baud; 1 gives 115200 baud (QEMU ignores the rate).
//   * LSR bit 5 (THRE): the transmitter holding register can take a byte.
import X86Asm
import Core

/// The UART's registers and the values Toro writes (PC16550D datasheet, table 2).
public enum UARTRegisters {
    /// COM1's base port (IBM PC/AT).
    public static let com1: UInt16 = 0x3F8

    /// Offsets from the base port.
    public enum Offset: UInt16 {
        /// THR on write; with DLAB set, the divisor latch's low byte.
        case data = 0
        /// IER; with DLAB set, the divisor latch's high byte.
        case interruptEnable = 1
        case fifoControl = 2
        case lineControl = 3
        case modemControl = 4
        case lineStatus = 5
    }

    /// LCR bit 7: the divisor latch access bit.
    public static let divisorLatchAccess: UInt8 = 0x80
    /// LCR: 8 data bits, no parity, 1 stop bit, DLAB clear.
    public static let eightNoneOne: UInt8 = 0x03
    /// FCR: FIFOs on, both cleared, receive trigger at 14 bytes.
    public static let fifosOnAndCleared: UInt8 = 0xC7
    /// MCR: DTR and RTS.
    public static let dataTerminalReadyRequestToSend: UInt8 = 0x03
    /// LSR bit 5: the transmitter holding register is empty.
    public static let transmitterEmpty: UInt8 = 0x20
    /// Divisor for 115200 baud.
    public static let divisor115200: UInt16 = 1
    /// Line-status polls before `put` writes the byte anyway.
    public static let spinLimit = 100_000
}

/// The kernel's COM1, over the CPU's I/O ports.
public typealias UART16550 = UART16550Chip<X86Ports>

extension UART16550Chip where Ports == X86Ports {
    public init() { self.init(ports: X86Ports(), base: UARTRegisters.com1) }
}

public struct UART16550Chip<Ports: PortAccess> {
    public let ports: Ports
    public let base: UInt16

    public init(ports: Ports, base: UInt16) {
        self.ports = ports
        self.base = base
    }

    @inline(__always)
    func read(_ register: UARTRegisters.Offset) -> UInt8 { ports.in8(base &+ register.rawValue) }

    @inline(__always)
    func write(_ register: UARTRegisters.Offset, _ value: UInt8) { ports.out8(base &+ register.rawValue, value) }

    /// 115200 baud, 8N1, FIFOs on, no UART interrupts.
    public func initialize() {
        write(.interruptEnable, 0)
        write(.lineControl, UARTRegisters.divisorLatchAccess)
        write(.data, UInt8(truncatingIfNeeded: UARTRegisters.divisor115200))          // divisor low
        write(.interruptEnable, UInt8(truncatingIfNeeded: UARTRegisters.divisor115200 >> 8))  // high
        write(.lineControl, UARTRegisters.eightNoneOne)
        write(.fifoControl, UARTRegisters.fifosOnAndCleared)
        write(.modemControl, UARTRegisters.dataTerminalReadyRequestToSend)
    }

    /// Sends `byte` once the transmitter has room, or after `spinLimit` polls regardless.
    public func put(_ byte: UInt8) {
        var spins = 0
        while spins < UARTRegisters.spinLimit && read(.lineStatus) & UARTRegisters.transmitterEmpty == 0 {
            arch_pause()
            spins += 1
        }
        write(.data, byte)
    }
}

/// The kernel's console: COM1.
public final class SerialConsole: Console {
    public init() { UART16550().initialize() }
    public func write(_ byte: UInt8) { UART16550().put(byte) }
}
