// The device scan and the drivers an image links are reached only through the hooks of the
// image's driver table (`toro_driver_scan`, `toro_driver_sockets`, `toro_driver_files`: a C object `./toro build` writes per
// image from the service's `devices:`; ImageLinker.swift), which point at the attach
// functions in Sources/MicroVMVsock and MicroVMFS or are null (the scan is linked when the service
// uses any device). That module is separate so that the
// drivers' specialised class metadata lives in its object, not in MicroVM's `.data`
// (which every image keeps): a service that uses no sockets has a null hook, nothing
// references the vsock driver, and `ld --gc-sections` leaves it out of the image.
//
// Rules for callers: `MicroVMDevices.attach` passes a `DeviceAttachment` it keeps alive for
// the call; an attach function returns whether the device is in use.
import Core
import PC
import VirtIO
import VirtIOMMIO
import X86Asm

/// What the device scan (MicroVMScan/Devices.swift) is given, and what it found.
package final class DeviceScan {
    package let commandLine: KernelCommandLine
    package let ram: [PhysicalRange]
    package let wanted: ServiceDevices
    package let ioapic: IOAPIC
    package let bootstrapAPIC: UInt8
    package let badCommandLine: () -> Never
    package let now: () -> UInt64
    package var sockets: (any SocketProvider)? = nil
    package var fileSystem: (any FileSystem)? = nil

    package init(commandLine: KernelCommandLine, ram: [PhysicalRange], wanted: ServiceDevices, ioapic: IOAPIC,
                 bootstrapAPIC: UInt8, badCommandLine: @escaping () -> Never, now: @escaping () -> UInt64) {
        self.commandLine = commandLine
        self.ram = ram
        self.wanted = wanted
        self.ioapic = ioapic
        self.bootstrapAPIC = bootstrapAPIC
        self.badCommandLine = badCommandLine
        self.now = now
    }
}

/// What an attach function needs: the device found and where to record the result.
package final class DeviceAttachment {
    package let devices: DeviceRecorder
    package let transport: MMIOTransport
    package let hint: VirtIOMMIOHint
    package let memory: IdentityMemory
    package let commandLine: KernelCommandLine
    package let now: () -> UInt64

    package init(devices: DeviceRecorder, transport: MMIOTransport, hint: VirtIOMMIOHint, memory: IdentityMemory,
         commandLine: KernelCommandLine, now: @escaping () -> UInt64) {
        self.devices = devices
        self.transport = transport
        self.hint = hint
        self.memory = memory
        self.commandLine = commandLine
        self.now = now
    }
}

/// Where an attach function records what it started and routes the device's interrupt
/// (MicroVMScan/Devices.swift implements it).
package protocol DeviceRecorder: AnyObject {
    var sockets: (any SocketProvider)? { get set }
    var fileSystem: (any FileSystem)? { get set }
    var badArgument: Bool { get set }
    func route(_ irq: Int, _ handler: @escaping () -> Void)
    func logFound(_ name: StaticString, _ hint: VirtIOMMIOHint)
}
