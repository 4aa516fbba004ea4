// The virtio-mmio transport, modern interface (virtio 1.2 §4.2.2, version 2).
//
// Registers are declared once (`Register`) and reached only through this type; device
// drivers see the `VirtioTransport` protocol from Core, never an offset. QEMU's microvm
// offers version 2 only with `-global virtio-mmio.force-legacy=false` (`toro run` passes
// it); a version-1 (legacy) transport is refused with a log line.
import _Volatile
import Core

struct VirtioMMIO {
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

    static let magicValue: UInt32 = 0x7472_6976

    let base: UInt
    let irq: Int

    init(hint: VirtioMMIOHint) {
        base = UInt(hint.base)
        irq = hint.irq
    }

    func read(_ register: Register) -> UInt32 {
        VolatileMappedRegister<UInt32>(unsafeBitPattern: base + register.rawValue).load()
    }

    func write(_ register: Register, _ value: UInt32) {
        VolatileMappedRegister<UInt32>(unsafeBitPattern: base + register.rawValue).store(value)
    }

    /// The device ID of a modern transport with a device behind it, or nil (no device:
    /// ID 0; wrong magic; legacy version 1).
    var deviceID: UInt32? {
        guard read(.magic) == VirtioMMIO.magicValue, read(.version) == 2 else { return nil }
        let id = read(.deviceID)
        return id == 0 ? nil : id
    }

    var isLegacy: Bool { read(.magic) == VirtioMMIO.magicValue && read(.version) == 1 }

    func configByte(_ offset: Int) -> UInt8 {
        VolatileMappedRegister<UInt8>(unsafeBitPattern: base + Register.config.rawValue + UInt(offset)).load()
    }
}
