// The two cascaded 8259A programmable interrupt controllers of the PC (IRQ 0-15): the
// Legacy platform's interrupt controller. `PIC8259` is the kernel's pair over the CPU's
// I/O ports; the host tests run `PIC8259Chip` over a `RegisterRecorder` (Tests/PCTests).
//
// Rules for callers:
//   * Call `remap` once, with interrupts disabled (cli), before enabling any. The BIOS
//     leaves the master on vectors 0x08-0x0F, which collide with CPU exceptions. After
//     `remap` every line is masked; `unmask` each line once its handler is installed.
//   * IRQ n arrives on vector `vector(irq: n)` = base + n (master base for 0-7, slave
//     base for 8-15).
//   * A handler for IRQ 7 or 15 first asks `isSpurious(irq:)`; when it answers true the
//     handler returns without `endOfInterrupt` (for IRQ 15 `isSpurious` has already sent
//     the master its EOI). Every other handled IRQ ends with `endOfInterrupt(irq:)`.
//   * `disable` when the LAPIC/IOAPIC take over; call `remap` before it so that a
//     spurious IRQ 7/15, which a masked 8259 can still raise, lands on a harmless vector.
//   * Mask state lives in the chips (OCW1 reads back), so two values of this type agree.
//
// References (Intel 8259A datasheet, "Programming the 8259A"):
//   * ICW1 (command port, bit 4 set): bit 0 IC4 (ICW4 follows), bit 1 SNGL = 0 (cascade),
//     bit 3 LTIM = 0 (edge triggered). Starting ICW1 clears the IMR: mask after ICW4.
//   * ICW2 (data port): vector base; in 8086 mode bits 2-0 are ignored, so bases are
//     multiples of 8.
//   * ICW3: master, a bit per input that has a slave (IRQ2: 0x04); slave, its cascade
//     identity (2).
//   * ICW4: bit 0 uPM = 1 (8086/8088 mode), no auto-EOI, not buffered, not SFNM.
//   * OCW1 (data port): the interrupt mask register, 1 = masked; reading the data port
//     returns it.
//   * OCW2 (command port): 0x20 = non-specific EOI.
//   * OCW3 (command port): 0x0A selects IRR, 0x0B selects ISR for the next read of the
//     command port.
//   * Spurious interrupts: if the request goes away before INTA, the 8259 answers with
//     IR7 of the chip without setting its ISR bit (datasheet, "Interrupt Sequence").
/// Fixed PC I/O ports of the 8259 pair (IBM PC/AT; QEMU hw/intc/i8259.c).
public enum PICPorts {
    public static let masterCommand: UInt16 = 0x20
    public static let masterData: UInt16 = 0x21
    public static let slaveCommand: UInt16 = 0xA0
    public static let slaveData: UInt16 = 0xA1
    /// The POST diagnostic port: a write to it is a harmless ~1 µs delay between the
    /// initialisation words, which old 8259s needed (Linux outb_p does the same).
    public static let delay: UInt16 = 0x80
}

/// The initialisation and operation command words Toro writes (see the references above).
public enum PICCommand {
    public static let icw1Init: UInt8 = 0x10        // bit 4: this is ICW1
    public static let icw1NeedsICW4: UInt8 = 0x01
    public static let icw4Mode8086: UInt8 = 0x01
    public static let ocw2EOI: UInt8 = 0x20
    public static let ocw3ReadIRR: UInt8 = 0x0A
    public static let ocw3ReadISR: UInt8 = 0x0B
    /// OCW1 with every line masked.
    public static let maskAll: UInt8 = 0xFF
}

/// The kernel's 8259 pair, over the CPU's I/O ports.
public typealias PIC8259 = PIC8259Chip<X86Ports>

extension PIC8259Chip where Ports == X86Ports {
    public init() { self.init(ports: X86Ports()) }
}

public struct PIC8259Chip<Ports: PortAccess> {
    public let ports: Ports

    /// Vector of IRQ 0 (master) and of IRQ 8 (slave); the BIOS values until `remap`.
    public private(set) var masterBase: UInt8 = 0x08
    public private(set) var slaveBase: UInt8 = 0x70

    /// The master input the slave is wired to.
    public static var cascadeIRQ: UInt8 { 2 }

    public init(ports: Ports) { self.ports = ports }

    /// Reinitialises both chips (ICW1-ICW4): edge triggered, cascade on IRQ2, 8086 mode,
    /// IRQ 0-7 on `masterBase`..+7 and IRQ 8-15 on `slaveBase`..+7, then masks every
    /// line. Interrupts must be disabled.
    public mutating func remap(masterBase: UInt8 = 0x20, slaveBase: UInt8 = 0x28) {
        precondition(masterBase & 7 == 0 && slaveBase & 7 == 0, "8259 vector bases are multiples of 8")
        let icw1 = PICCommand.icw1Init | PICCommand.icw1NeedsICW4
        write(PICPorts.masterCommand, icw1)
        write(PICPorts.slaveCommand, icw1)
        write(PICPorts.masterData, masterBase)                          // ICW2
        write(PICPorts.slaveData, slaveBase)
        write(PICPorts.masterData, 1 << Self.cascadeIRQ)                // ICW3: slave on IR2
        write(PICPorts.slaveData, Self.cascadeIRQ)                      // ICW3: identity 2
        write(PICPorts.masterData, PICCommand.icw4Mode8086)             // ICW4
        write(PICPorts.slaveData, PICCommand.icw4Mode8086)
        // ICW1 cleared both masks: close every line until a handler asks for it.
        write(PICPorts.masterData, PICCommand.maskAll)
        write(PICPorts.slaveData, PICCommand.maskAll)
        self.masterBase = masterBase
        self.slaveBase = slaveBase
    }

    /// The vector IRQ `irq` (0...15) arrives on.
    public func vector(irq: UInt8) -> UInt8 {
        precondition(irq < 16, "the 8259 pair has IRQs 0-15")
        return irq < 8 ? masterBase + irq : slaveBase + (irq - 8)
    }

    /// The IRQ behind `vector`, or nil when the vector is not one of the 8259's.
    public func irq(vector: UInt8) -> UInt8? {
        if vector >= masterBase && vector - masterBase < 8 { return vector - masterBase }
        if vector >= slaveBase && vector - slaveBase < 8 { return vector - slaveBase + 8 }
        return nil
    }

    /// Lets IRQ `irq` through. A slave line also opens the master's cascade input.
    public func unmask(irq: UInt8) {
        precondition(irq < 16, "the 8259 pair has IRQs 0-15")
        if irq < 8 {
            ports.out8(PICPorts.masterData, ports.in8(PICPorts.masterData) & ~(1 << irq))
        } else {
            ports.out8(PICPorts.slaveData, ports.in8(PICPorts.slaveData) & ~(1 << (irq - 8)))
            ports.out8(PICPorts.masterData, ports.in8(PICPorts.masterData) & ~(1 << Self.cascadeIRQ))
        }
    }

    /// Blocks IRQ `irq`. The cascade input closes when the last slave line does.
    public func mask(irq: UInt8) {
        precondition(irq < 16, "the 8259 pair has IRQs 0-15")
        if irq < 8 {
            ports.out8(PICPorts.masterData, ports.in8(PICPorts.masterData) | (1 << irq))
        } else {
            let slave = ports.in8(PICPorts.slaveData) | (1 << (irq - 8))
            ports.out8(PICPorts.slaveData, slave)
            if slave == 0xFF {
                ports.out8(PICPorts.masterData, ports.in8(PICPorts.masterData) | (1 << Self.cascadeIRQ))
            }
        }
    }

    /// The interrupt mask registers: bit n set = IRQ n masked.
    public var masks: UInt16 {
        UInt16(ports.in8(PICPorts.slaveData)) << 8 | UInt16(ports.in8(PICPorts.masterData))
    }

    /// Non-specific EOI (OCW2) for IRQ `irq`: the slave's first for IRQ 8-15, since its
    /// request also occupies the master's IR2.
    public func endOfInterrupt(irq: UInt8) {
        if irq >= 8 { ports.out8(PICPorts.slaveCommand, PICCommand.ocw2EOI) }
        ports.out8(PICPorts.masterCommand, PICCommand.ocw2EOI)
    }

    /// True when IRQ 7 or 15 is spurious: its chip's in-service bit 7 is clear. A spurious
    /// IRQ 15 still came through the master's IR2, which is in service, so this sends the
    /// master its EOI; the caller sends none. Other IRQs are never spurious.
    public func isSpurious(irq: UInt8) -> Bool {
        guard irq == 7 || irq == 15 else { return false }
        if inService & (1 << UInt16(irq)) != 0 { return false }
        if irq == 15 { ports.out8(PICPorts.masterCommand, PICCommand.ocw2EOI) }
        return true
    }

    /// The in-service registers (OCW3 read ISR): bit n set = IRQ n being handled.
    public var inService: UInt16 { readBoth(PICCommand.ocw3ReadISR) }

    /// The interrupt request registers (OCW3 read IRR): bit n set = IRQ n raised.
    public var requested: UInt16 { readBoth(PICCommand.ocw3ReadIRR) }

    /// Masks every line, for when the LAPIC and IOAPIC take over.
    public func disable() {
        ports.out8(PICPorts.masterData, PICCommand.maskAll)
        ports.out8(PICPorts.slaveData, PICCommand.maskAll)
    }

    private func readBoth(_ ocw3: UInt8) -> UInt16 {
        ports.out8(PICPorts.masterCommand, ocw3)
        ports.out8(PICPorts.slaveCommand, ocw3)
        let value = UInt16(ports.in8(PICPorts.slaveCommand)) << 8 | UInt16(ports.in8(PICPorts.masterCommand))
        // Leave both chips reading IRR, their power-on default.
        ports.out8(PICPorts.masterCommand, PICCommand.ocw3ReadIRR)
        ports.out8(PICPorts.slaveCommand, PICCommand.ocw3ReadIRR)
        return value
    }

    private func write(_ port: UInt16, _ value: UInt8) {
        ports.out8(port, value)
        ports.out8(PICPorts.delay, 0)
    }
}
