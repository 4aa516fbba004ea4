// The virtio-pci transport, modern interface (virtio 1.2 §4.1): a device's common
// configuration, notification area, ISR status and device configuration are found through
// its vendor-specific PCI capabilities (§4.1.4), each naming a BAR, an offset and a length,
// never at fixed offsets. A target of its own so that host tests run it over a recording
// register bus, as VirtIOMMIO's are.
//
// `VirtIOPCILayout.find` reads the capabilities of a function `PCIBusChip.scan` found and
// checks that each structure lies inside a memory BAR; `VirtIOPCITransport` is the
// `VirtIOTransport` over that layout, generic over its register access (`MMIOWindow` at
// the BAR's address in the kernel, a `RegisterRecorder` in tests).
//
// Rules for callers:
//   * Modern devices only (device IDs 0x1040 + type; `toro run` passes
//     `disable-legacy=on`). A transitional device's legacy I/O BAR is never used.
//   * Each field is accessed with its own width (§4.1.3.1: "the driver MUST access each
//     field using the natural access method"); 64-bit queue addresses as two 32-bit
//     halves, low first (§4.1.3.1 allows it).
//   * `interruptStatus` reads the ISR, which clears it and deasserts INTx (§4.1.4.5), so
//     `acknowledge` does nothing: a handler on a shared line calls `interruptStatus` of
//     every device there before the EOI.
//   * `setUpQueue` records the queue's notification offset; `notify` writes the queue's
//     index there (§4.1.4.4: cap.offset + queue_notify_off × notify_off_multiplier).
import PC
import VirtIO

/// Where the four structures are: a BAR and an offset each, with the lengths checked.
public struct VirtIOPCILayout: Equatable, Sendable {
    public struct Region: Equatable, Sendable {
        public var bar: Int
        public var offset: UInt64
        public var length: UInt64
    }
    public var common: Region
    public var notify: Region
    public var notifyMultiplier: UInt32
    public var isr: Region
    public var device: Region?

    /// Why a function cannot be driven as a modern virtio device.
    public enum Problem: Error, Equatable, Sendable {
        /// No common, notify or ISR capability (a legacy-only device, or not virtio).
        case missingCapability
        /// A structure names a BAR the function does not have, an I/O BAR, or lies (partly)
        /// outside it, or is shorter than the specification's minimum.
        case badRegion
    }

    /// The capability types (§4.1.4: cfg_type).
    static let commonType: UInt8 = 1
    static let notifyType: UInt8 = 2
    static let isrType: UInt8 = 3
    static let deviceType: UInt8 = 4

    /// Reads the vendor capabilities (ID 0x09) of `function` through `pci`. The first
    /// capability of each type is used (§4.1.4: "the driver SHOULD use the first").
    public static func find<Ports: PortAccess>(_ function: PCIFunction, pci: PCIBusChip<Ports>) throws(Problem) -> VirtIOPCILayout {
        var common: Region?, notify: Region?, isr: Region?, device: Region?
        var multiplier: UInt32 = 0
        for capability in function.capabilities where capability.id == 0x09 {
            let at = capability.offset
            let length8 = pci.read8(function.address, at &+ 2)
            let type = pci.read8(function.address, at &+ 3)
            let barIndex = Int(pci.read8(function.address, at &+ 4))
            guard length8 >= 16, barIndex < 6, [commonType, notifyType, isrType, deviceType].contains(type) else { continue }
            let region = Region(bar: barIndex, offset: UInt64(pci.read32(function.address, at &+ 8)),
                                length: UInt64(pci.read32(function.address, at &+ 12)))
            switch type {
            case commonType where common == nil: common = region
            case notifyType where notify == nil:
                guard length8 >= 20 else { continue }
                notify = region
                multiplier = pci.read32(function.address, at &+ 16)
            case isrType where isr == nil: isr = region
            case deviceType where device == nil: device = region
            default: break
            }
        }
        guard let common, let notify, let isr else { throw .missingCapability }
        let layout = VirtIOPCILayout(common: common, notify: notify, notifyMultiplier: multiplier, isr: isr, device: device)
        // §4.1.4.3: the common structure is 0x38 bytes (with queue_notify_data and
        // queue_reset, 0x3C); the ISR is one byte; notify needs 2 bytes per write.
        for (region, minimum) in [(common, UInt64(0x38)), (notify, UInt64(2)), (isr, UInt64(1))] + (device.map { [($0, UInt64(1))] } ?? []) {
            guard region.length >= minimum, let bar = function.bar(region.bar), bar.kind != .io,
                  region.offset <= bar.size, region.length <= bar.size - region.offset else { throw .badRegion }
        }
        return layout
    }
}

/// The transport the kernel uses: registers in a BAR mapped at its physical address.
public typealias PCITransport = VirtIOPCITransport<MMIOWindow>

public struct VirtIOPCITransport<Registers: MMIOAccess> {
    /// The common configuration structure (§4.1.4.3), offsets from its start.
    enum Common: UInt {
        case deviceFeatureSelect = 0x00     // le32
        case deviceFeature = 0x04           // le32
        case driverFeatureSelect = 0x08     // le32
        case driverFeature = 0x0C           // le32
        case msixConfig = 0x10              // le16
        case numQueues = 0x12               // le16
        case deviceStatus = 0x14            // u8
        case configGeneration = 0x15        // u8
        case queueSelect = 0x16             // le16
        case queueSize = 0x18               // le16
        case queueMSIXVector = 0x1A         // le16
        case queueEnable = 0x1C             // le16
        case queueNotifyOff = 0x1E          // le16
        case queueDescriptor = 0x20         // le64
        case queueDriver = 0x28             // le64
        case queueDevice = 0x30             // le64
    }

    let common: Registers
    let notifyArea: Registers
    let isr: Registers
    let deviceConfig: Registers?
    let notifyMultiplier: UInt32
    let notifyLength: UInt64
    let deviceLength: UInt64
    /// Each queue's notification offset, from `setUpQueue` (§4.1.4.4); 16 queues at most here.
    let notifyOffsets: UnsafeMutablePointer<UInt32>
    public static var maximumQueues: Int { 16 }
    /// The INTx line firmware routed the device to.
    public let irq: Int

    /// One register access per structure; they may share a BAR.
    public init(common: Registers, notify: Registers, isr: Registers, device: Registers?,
                notifyMultiplier: UInt32, notifyLength: UInt64, deviceLength: UInt64 = 0x1000, irq: Int) {
        self.common = common
        self.notifyArea = notify
        self.isr = isr
        self.deviceConfig = device
        self.notifyMultiplier = notifyMultiplier
        self.notifyLength = notifyLength
        self.deviceLength = device == nil ? 0 : deviceLength
        self.irq = irq
        notifyOffsets = UnsafeMutablePointer<UInt32>.allocate(capacity: Self.maximumQueues)
        notifyOffsets.initialize(repeating: UInt32.max, count: Self.maximumQueues)
    }

    func load16(_ field: Common) -> UInt16 { common.load16(field.rawValue) }
    func store16(_ field: Common, _ value: UInt16) { common.store16(field.rawValue, value) }
    func store64(_ field: Common, _ value: UInt64) {
        common.store32(field.rawValue, UInt32(truncatingIfNeeded: value))
        common.store32(field.rawValue + 4, UInt32(truncatingIfNeeded: value >> 32))
    }

    /// How many queues the device has (num_queues).
    public var queueCount: UInt16 { load16(.numQueues) }
}

extension VirtIOPCITransport where Registers == MMIOWindow {
    /// The transport over `layout`'s BARs of `function`, mapped identity at their addresses.
    public init(function: PCIFunction, layout: VirtIOPCILayout) {
        func window(_ region: VirtIOPCILayout.Region) -> MMIOWindow {
            MMIOWindow(base: (function.bar(region.bar)?.address ?? 0) + region.offset)
        }
        self.init(common: window(layout.common), notify: window(layout.notify), isr: window(layout.isr),
                  device: layout.device.map { window($0) }, notifyMultiplier: layout.notifyMultiplier,
                  notifyLength: layout.notify.length, deviceLength: layout.device?.length ?? 0, irq: Int(function.interruptLine))
    }
}

extension VirtIOPCITransport: VirtIOTransport {
    public func deviceFeatures(select: UInt32) -> UInt32 {
        common.store32(Common.deviceFeatureSelect.rawValue, select)
        return common.load32(Common.deviceFeature.rawValue)
    }

    public func setDriverFeatures(select: UInt32, value: UInt32) {
        common.store32(Common.driverFeatureSelect.rawValue, select)
        common.store32(Common.driverFeature.rawValue, value)
    }

    public var status: DeviceStatus {
        get { DeviceStatus(rawValue: common.load8(Common.deviceStatus.rawValue)) }
        nonmutating set { common.store8(Common.deviceStatus.rawValue, newValue.rawValue) }
    }

    /// 0 for a queue the device does not have, one already enabled, or one beyond what
    /// this transport keeps notification offsets for.
    public func queueMax(_ index: UInt16) -> UInt16 {
        guard Int(index) < Self.maximumQueues, index < load16(.numQueues) else { return 0 }
        store16(.queueSelect, index)
        guard load16(.queueEnable) == 0 else { return 0 }
        return min(load16(.queueSize), 32768)
    }

    public func setUpQueue(_ index: UInt16, size: UInt16, descriptor: UInt64, avail: UInt64, used: UInt64) {
        guard Int(index) < Self.maximumQueues else { return }
        store16(.queueSelect, index)
        store16(.queueSize, size)
        store64(.queueDescriptor, descriptor)
        store64(.queueDriver, avail)
        store64(.queueDevice, used)
        // Interrupts come as INTx: no MSI-X vector for the queue (§4.1.4.3: VIRTIO_MSI_NO_VECTOR).
        store16(.queueMSIXVector, 0xFFFF)
        notifyOffsets[Int(index)] = UInt32(load16(.queueNotifyOff)) &* notifyMultiplier
    }

    public func enableQueue(_ index: UInt16) {
        store16(.queueSelect, index)
        store16(.queueEnable, 1)
    }

    /// Writes the queue's index at its notification address; a queue never set up, or one
    /// whose address lies outside the notify structure (a device's lie), is not notified.
    public func notify(_ index: UInt16) {
        guard Int(index) < Self.maximumQueues else { return }
        let offset = notifyOffsets[Int(index)]
        guard offset != UInt32.max, UInt64(offset) + 2 <= notifyLength else { return }
        notifyArea.store16(UInt(offset), index)
    }

    public func interruptStatus() -> UInt32 { UInt32(isr.load8(0)) }
    public func acknowledge(_ bits: UInt32) {}
    public func configGeneration() -> UInt32 { UInt32(common.load8(Common.configGeneration.rawValue)) }
    /// A byte of the device configuration; 0 outside it, or when the device has none.
    public func configRead(_ offset: Int) -> UInt8 {
        guard let deviceConfig, offset >= 0, UInt64(offset) < deviceLength else { return 0 }
        return deviceConfig.load8(UInt(offset))
    }
}
