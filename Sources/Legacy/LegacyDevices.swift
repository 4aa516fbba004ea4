// What Legacy hands its device scan (Sources/LegacyScan, reached through the image's driver
// table: DriverHooks in PC) and what an attach function gets for one virtio-pci device.
// Same shape as microvm's (MicroVM/DeviceAttach.swift): the scan and each driver's attach
// function are modules of their own, so an image links only what its service uses.
//
// Interrupts: PCI INTx lines arrive on the 8259, level-triggered (SeaBIOS sets the ELCR for
// the lines it routes) and possibly shared by several devices. `route` chains the handlers
// of one line; each reads its device's ISR, which deasserts the device's INTx, and only
// then does the platform send the EOI (Interrupts.acknowledgeDevice), so a line another
// device still holds up fires again.
//
// Rules for callers: the scan runs once, before the scheduler; an attach function returns
// whether the device is in use.
import Core
import PC
import VirtIOPCI

/// The scan's input (the machine's PCI functions, found when the platform started) and
/// output (what the service gets).
package final class LegacyDeviceScan {
    package let functions: [PCIFunction]
    package let commandLine: KernelCommandLine
    package let ram: [PhysicalRange]
    package let wanted: ServiceDevices
    package let route: (Int, @escaping () -> Void) -> Void
    package let badCommandLine: () -> Never
    package let now: () -> UInt64
    package var sockets: (any SocketProvider)? = nil
    package var fileSystem: (any FileSystem)? = nil
    /// Set by an attach function that found a malformed kernel argument (status 2).
    package var badArgument = false

    package init(functions: [PCIFunction], commandLine: KernelCommandLine, ram: [PhysicalRange], wanted: ServiceDevices,
                 route: @escaping (Int, @escaping () -> Void) -> Void, badCommandLine: @escaping () -> Never,
                 now: @escaping () -> UInt64) {
        self.functions = functions
        self.commandLine = commandLine
        self.ram = ram
        self.wanted = wanted
        self.route = route
        self.badCommandLine = badCommandLine
        self.now = now
    }
}

/// One modern virtio-pci device the scan found, for an attach function.
package final class PCIDeviceAttachment {
    package let scan: LegacyDeviceScan
    package let function: PCIFunction
    package let transport: PCITransport

    package init(scan: LegacyDeviceScan, function: PCIFunction, transport: PCITransport) {
        self.scan = scan
        self.function = function
        self.transport = transport
    }
}

/// Starts a device's boot line: `devices: <name> at PCI bus:device.function, IRQ n` (the
/// caller ends it).
package func logPCIFound(_ name: StaticString, _ function: PCIFunction) {
    Log.timestamp()
    Log.write("devices: ")
    Log.write(name)
    Log.write(" at PCI ")
    Log.decimal(UInt64(function.address.bus))
    Log.write(":")
    Log.decimal(UInt64(function.address.device))
    Log.write(".")
    Log.decimal(UInt64(function.address.function))
    Log.write(", IRQ ")
    Log.decimal(UInt64(function.interruptLine))
}
