// The Legacy platform's devices: the modern virtio-pci functions the PCI walk found
// (vendor 0x1AF4, device 0x1040 + type), each given its transport (VirtIOPCI), bus
// mastering, its INTx line on the 8259, and the driver the image's table names for its
// kind: virtio-net (type 1) carrying the sockets over Toro's TCP/IP (the first NIC only),
// virtio-blk (type 2) holding the ext2 file system. Transitional and legacy
// devices (0x1000-0x103F) are refused with one line: `toro run` passes `disable-legacy=on`.
// Reached only through the driver table's `toro_driver_scan` (Legacy/LegacyDevices.swift).
import Core
import Legacy
import PC
import VirtIO
import VirtIOPCI

final class LegacyDevices {
    let scan: LegacyDeviceScan
    let pci = PCIBus()
    /// The first virtio-net function was offered to the sockets driver (used or not).
    var nicTried = false

    init(scan: LegacyDeviceScan) { self.scan = scan }

    func start() {
        for function in scan.functions where function.vendorID == 0x1AF4 {
            guard function.deviceID >= 0x1040 else {
                logPCIFound("virtio (transitional)", function)
                Log.write(": a legacy virtio-pci interface, left alone; run QEMU with disable-legacy=on\n")
                continue
            }
            let type = function.deviceID - 0x1040
            switch type {
            case UInt16(VirtIODeviceID.block) where scan.fileSystem == nil:
                attach(.files, "virtio-blk", DriverHooks.files, function)
                if scan.badArgument { scan.badCommandLine() }
            case UInt16(VirtIODeviceID.network) where scan.sockets == nil && !nicTried:
                nicTried = true
                attach(.sockets, "virtio-net", DriverHooks.sockets, function)
                if scan.badArgument { scan.badCommandLine() }
            case UInt16(VirtIODeviceID.network):
                logPCIFound("virtio-net", function)
                Log.write(": a second NIC, left alone (Toro uses one)\n")
            default:
                logPCIFound("virtio", function)
                Log.write(": device type ")
                Log.decimal(UInt64(type))
                Log.write(" has no driver, left alone\n")
            }
        }
    }

    /// Starts the driver `hook` for a device of `kind` when the service uses that kind and
    /// the image links its driver; otherwise logs why not.
    func attach(_ kind: ServiceDevices, _ name: StaticString, _ hook: DriverHooks.Attach?, _ function: PCIFunction) {
        guard scan.wanted.contains(kind), let hook else {
            logPCIFound(name, function)
            Log.write(scan.wanted.contains(kind) ? ": this image has no driver for it, left alone\n"
                                                 : ": the service does not use it, left alone\n")
            return
        }
        let layout: VirtIOPCILayout
        do throws(VirtIOPCILayout.Problem) {
            layout = try VirtIOPCILayout.find(function, pci: pci)
        } catch {
            logPCIFound(name, function)
            Log.write(error == .missingCapability ? ": no virtio 1.x capabilities, left alone\n"
                                                  : ": a capability lies outside its BAR, left alone\n")
            return
        }
        pci.enableBusMastering(function.address)
        let attachment = PCIDeviceAttachment(scan: scan, function: function,
                                             transport: PCITransport(function: function, layout: layout))
        withExtendedLifetime(attachment) {
            _ = hook(Unmanaged.passUnretained(attachment).toOpaque())
        }
    }
}

#if hasFeature(Embedded)
/// The driver table's scan hook on Legacy.
@_cdecl("toro_scan_pci")
func scanPCI(_ raw: UnsafeMutableRawPointer?) -> Bool {
    guard let raw else { return false }
    let scan = Unmanaged<LegacyDeviceScan>.fromOpaque(raw).takeUnretainedValue()
    LegacyDevices(scan: scan).start()
    return true
}
#endif
