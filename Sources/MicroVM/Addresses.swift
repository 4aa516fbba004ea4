// Every fixed physical address the MicroVM platform uses, in one place
// (QEMU hw/i386/microvm.c and include/hw/i386/microvm.h).
import Core

package enum MicroVMAddresses {
    /// virtio-mmio transports: 512 bytes each from 0xfeb00000 (microvm.h VIRTIO_MMIO_BASE).
    package static let virtioMMIO = PhysicalRange(start: 0xFEB0_0000, end: 0xFEB0_4000)
    /// The I/O APIC (microvm.h IOAPIC base).
    static let ioAPIC = PhysicalRange(start: 0xFEC0_0000, end: 0xFEC0_1000)
    /// The local APIC of every CPU (SDM vol. 3, 11.4.1 default base).
    static let localAPIC = PhysicalRange(start: 0xFEE0_0000, end: 0xFEE0_1000)

    static let mmioWindows = [virtioMMIO, ioAPIC, localAPIC]
}
