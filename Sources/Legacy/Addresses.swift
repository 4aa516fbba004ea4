// Every fixed physical address the Legacy platform uses, in one place.
import Core

enum LegacyAddresses {
    /// The I/O APIC of QEMU's pc machine (hw/i386/pc.c, IO_APIC_DEFAULT_ADDRESS).
    static let ioAPIC = PhysicalRange(start: 0xFEC0_0000, end: 0xFEC0_1000)
    /// The local APIC (SDM vol. 3, 11.4.1 default base); the 8259 is the interrupt
    /// controller here, but SMP start-up talks to the LAPIC.
    static let localAPIC = PhysicalRange(start: 0xFEE0_0000, end: 0xFEE0_1000)

    static let mmioWindows = [ioAPIC, localAPIC]
}
