// The I/O APIC (82093AA datasheet, 3.2): routes device interrupt pins to CPUs. On
// microvm every device IRQ (the virtio-mmio transports' among them) comes through it.
//
// Registers are reached indirectly: write the register index to IOREGSEL (base + 0x00),
// then read or write IOWIN (base + 0x10). Redirection entry n is registers 0x10 + 2n
// (low word) and 0x11 + 2n (high word: destination APIC ID in bits 24-31).
import _Volatile
import Core

struct IOAPIC {
    let base: UInt

    init(base: UInt64) { self.base = UInt(base) }

    func read(_ index: UInt32) -> UInt32 {
        VolatileMappedRegister<UInt32>(unsafeBitPattern: base).store(index)
        return VolatileMappedRegister<UInt32>(unsafeBitPattern: base + 0x10).load()
    }

    func write(_ index: UInt32, _ value: UInt32) {
        VolatileMappedRegister<UInt32>(unsafeBitPattern: base).store(index)
        VolatileMappedRegister<UInt32>(unsafeBitPattern: base + 0x10).store(value)
    }

    /// Number of redirection entries (version register bits 16-23, plus one).
    var pins: Int { Int((read(0x01) >> 16) & 0xFF) + 1 }

    static let masked: UInt32 = 1 << 16

    /// Masks every pin: nothing is delivered until a driver routes its IRQ.
    func maskAll() {
        for pin in 0..<min(pins, 24) {
            write(0x10 + UInt32(pin) * 2, IOAPIC.masked)
            write(0x11 + UInt32(pin) * 2, 0)
        }
    }

    /// Routes `pin` to `vector` on the CPU with `apicID`: fixed delivery, physical
    /// destination; virtio-mmio interrupts are level-triggered, active high.
    func route(pin: Int, vector: UInt8, apicID: UInt8, levelTriggered: Bool) {
        guard pin < pins else { return }
        write(0x11 + UInt32(pin) * 2, UInt32(apicID) << 24)
        write(0x10 + UInt32(pin) * 2, UInt32(vector) | (levelTriggered ? 1 << 15 : 0))
    }
}
