// The I/O APIC (82093AA datasheet, 3.2): routes device interrupt pins to CPUs. On
// microvm every device IRQ (the virtio-mmio transports' among them) comes through it;
// the legacy PC leaves its IOAPIC alone and uses the 8259.
//
// Registers are reached indirectly: write the register index to IOREGSEL (offset 0x00),
// then read or write IOWIN (offset 0x10). Redirection entry n is registers 0x10 + 2n
// (low word: vector, trigger, mask) and 0x11 + 2n (high word: destination APIC ID in
// bits 24-31). `IOAPIC` is the kernel's chip over its MMIO page; the host tests run
// `IOAPICChip` over a `RegisterRecorder` (Tests/PCTests).
//
// Rules for callers:
//   * `maskAll` once at boot, before interrupts are enabled; then `route` each pin a
//     driver has a handler for.
//   * Not reentrant: IOREGSEL selects what the next IOWIN access sees. Program it from
//     one CPU with no interrupt handler touching it.
//   * The version register's entry count is the chip's word: `route` ignores a pin it
//     does not have, `maskAll` masks at most 24 pins (the 82093AA has 24).

/// The I/O APIC's registers and the values Toro writes to them (82093AA datasheet, 3.0-3.2).
public enum IOAPICRegisters {
    /// The two memory-mapped registers.
    public enum Offset: UInt {
        /// IOREGSEL: the index of the register IOWIN reaches.
        case select = 0x00
        /// IOWIN: the selected register's data.
        case window = 0x10
    }

    /// IOAPICVER: bits 16-23 are the number of redirection entries minus one.
    public static let version: UInt32 = 0x01

    /// The index of redirection entry `pin`'s low word (high word: one more).
    public static func redirectionLow(_ pin: Int) -> UInt32 { 0x10 + UInt32(pin) * 2 }
    public static func redirectionHigh(_ pin: Int) -> UInt32 { 0x11 + UInt32(pin) * 2 }

    /// Redirection entry, low word (datasheet 3.2.4): bit 16 masks the pin.
    public static let masked: UInt32 = 1 << 16
    /// Bit 15: level-triggered (clear: edge). Bit 13 (polarity) stays 0: active high.
    public static let levelTriggered: UInt32 = 1 << 15

    /// Redirection entry, high word: physical destination, an APIC ID in bits 24-31.
    public static func destination(apicID: UInt8) -> UInt32 { UInt32(apicID) << 24 }

    /// The most pins `maskAll` touches (the 82093AA's count).
    public static let maxPins = 24
}

/// The kernel's I/O APIC: the chip over its memory-mapped page.
public typealias IOAPIC = IOAPICChip<MMIOWindow>

extension IOAPICChip where Registers == MMIOWindow {
    public init(base: UInt64) { self.init(registers: MMIOWindow(base: base)) }
}

public struct IOAPICChip<Registers: MMIOAccess> {
    public let registers: Registers

    public init(registers: Registers) { self.registers = registers }

    func read(_ index: UInt32) -> UInt32 {
        registers.store32(IOAPICRegisters.Offset.select.rawValue, index)
        return registers.load32(IOAPICRegisters.Offset.window.rawValue)
    }

    func write(_ index: UInt32, _ value: UInt32) {
        registers.store32(IOAPICRegisters.Offset.select.rawValue, index)
        registers.store32(IOAPICRegisters.Offset.window.rawValue, value)
    }

    /// Number of redirection entries (version register bits 16-23, plus one).
    public var pins: Int { Int((read(IOAPICRegisters.version) >> 16) & 0xFF) + 1 }

    /// Masks every pin: nothing is delivered until a driver routes its IRQ.
    public func maskAll() {
        for pin in 0..<min(pins, IOAPICRegisters.maxPins) {
            write(IOAPICRegisters.redirectionLow(pin), IOAPICRegisters.masked)
            write(IOAPICRegisters.redirectionHigh(pin), 0)
        }
    }

    /// Routes `pin` to `vector` on the CPU with `apicID`: fixed delivery, physical
    /// destination, active high; virtio-mmio interrupts are level-triggered. The high
    /// word first, so the entry is unmasked only once it names its CPU.
    public func route(pin: Int, vector: UInt8, apicID: UInt8, levelTriggered: Bool) {
        guard pin < pins else { return }
        write(IOAPICRegisters.redirectionHigh(pin), IOAPICRegisters.destination(apicID: apicID))
        write(IOAPICRegisters.redirectionLow(pin), UInt32(vector) | (levelTriggered ? IOAPICRegisters.levelTriggered : 0))
    }
}
