// The virtio-mmio transport, modern interface (virtio 1.2 §4.2.2, version 2): a target of
// its own so that the host tests run it over a recording register bus (Tests/
// VirtIOMMIOTests: the exact register sequence of a device's bring-up).
//
// Registers are declared once (`Register`) and reached only through this type, as 32-bit
// accesses at their offsets in the transport's register block (config bytes as 8-bit):
// `MMIOWindow` in the kernel (`MMIOTransport`), any `MMIOAccess` in tests. Device drivers see
// the `VirtIOTransport` protocol from VirtIO, never an offset. QEMU's microvm
// offers version 2 only with `-global virtio-mmio.force-legacy=false` (`toro run` passes
// it); a version-1 (legacy) transport is refused with a log line.
import Core
import PC
import VirtIO

/// The transport the kernel uses: registers at the physical address the command line gave.
package typealias MMIOTransport = VirtIOMMIOTransport<MMIOWindow>

extension VirtIOMMIOTransport where Registers == MMIOWindow {
    package init(hint: VirtIOMMIOHint) {
        self.init(registers: MMIOWindow(base: hint.base), irq: hint.irq)
    }
}

package struct VirtIOMMIOTransport<Registers: MMIOAccess> {
    enum Register: UInt {
        case magic = 0x000              // "virt" (0x74726976)
        case version = 0x004
        case deviceID = 0x008
        case vendorID = 0x00C
        case deviceFeatures = 0x010
        case deviceFeaturesSelect = 0x014
        case driverFeatures = 0x020
        case driverFeaturesSelect = 0x024
        case queueSelect = 0x030
        case queueSizeMax = 0x034
        case queueSize = 0x038
        case queueReady = 0x044
        case queueNotify = 0x050
        case interruptStatus = 0x060
        case interruptAcknowledge = 0x064
        case status = 0x070
        case queueDescriptorLow = 0x080
        case queueDescriptorHigh = 0x084
        case queueDriverLow = 0x090
        case queueDriverHigh = 0x094
        case queueDeviceLow = 0x0A0
        case queueDeviceHigh = 0x0A4
        case configGeneration = 0x0FC
        case config = 0x100
    }

    static var magicValue: UInt32 { 0x7472_6976 }

    /// The transport's register page (PC/RegisterAccess.swift).
    let registers: Registers
    package let irq: Int

    package init(registers: Registers, irq: Int) {
        self.registers = registers
        self.irq = irq
    }

    func read(_ register: Register) -> UInt32 { registers.load32(register.rawValue) }

    func write(_ register: Register, _ value: UInt32) { registers.store32(register.rawValue, value) }

    /// The device ID of a modern transport with a device behind it, or nil (no device:
    /// ID 0; wrong magic; legacy version 1).
    package var deviceID: UInt32? {
        guard read(.magic) == Self.magicValue, read(.version) == 2 else { return nil }
        let id = read(.deviceID)
        return id == 0 ? nil : id
    }

    package var isLegacy: Bool { read(.magic) == Self.magicValue && read(.version) == 1 }

    /// A byte of the device configuration space (§4.2.2: byte reads are allowed there).
    func configByte(_ offset: Int) -> UInt8 { registers.load8(Register.config.rawValue + UInt(offset)) }
}

extension VirtIOMMIOTransport: VirtIOTransport {
    package func deviceFeatures(select: UInt32) -> UInt32 {
        write(.deviceFeaturesSelect, select)
        return read(.deviceFeatures)
    }

    package func setDriverFeatures(select: UInt32, value: UInt32) {
        write(.driverFeaturesSelect, select)
        write(.driverFeatures, value)
    }

    package var status: DeviceStatus {
        get { DeviceStatus(rawValue: UInt8(truncatingIfNeeded: read(.status))) }
        nonmutating set { write(.status, UInt32(newValue.rawValue)) }
    }

    package func queueMax(_ index: UInt16) -> UInt16 {
        write(.queueSelect, UInt32(index))
        guard read(.queueReady) == 0 else { return 0 }
        return UInt16(truncatingIfNeeded: min(read(.queueSizeMax), 32768))
    }

    package func setUpQueue(_ index: UInt16, size: UInt16, descriptor: UInt64, avail: UInt64, used: UInt64) {
        write(.queueSelect, UInt32(index))
        write(.queueSize, UInt32(size))
        write(.queueDescriptorLow, UInt32(truncatingIfNeeded: descriptor))
        write(.queueDescriptorHigh, UInt32(truncatingIfNeeded: descriptor >> 32))
        write(.queueDriverLow, UInt32(truncatingIfNeeded: avail))
        write(.queueDriverHigh, UInt32(truncatingIfNeeded: avail >> 32))
        write(.queueDeviceLow, UInt32(truncatingIfNeeded: used))
        write(.queueDeviceHigh, UInt32(truncatingIfNeeded: used >> 32))
    }

    package func enableQueue(_ index: UInt16) {
        write(.queueSelect, UInt32(index))
        write(.queueReady, 1)
    }

    package func notify(_ index: UInt16) { write(.queueNotify, UInt32(index)) }
    package func interruptStatus() -> UInt32 { read(.interruptStatus) }
    package func acknowledge(_ bits: UInt32) { write(.interruptAcknowledge, bits) }
    package func configGeneration() -> UInt32 { read(.configGeneration) }
    package func configRead(_ offset: Int) -> UInt8 { configByte(offset) }
}
