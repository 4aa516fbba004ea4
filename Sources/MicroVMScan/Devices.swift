// The MicroVM platform's devices, all in one place: the virtio-mmio transports QEMU
// announces on the command line (`virtio_mmio.device=`), probed and bound to drivers.
// Today: virtio-vsock (device 19) for sockets and virtio-fs (device 26) for the shared folder. Every device IRQ goes through the IOAPIC to
// CPU 0, level-triggered (virtio-mmio's interrupt line stays up until InterruptACK).
// The drivers (Sources/Drivers) are generic over the transport and memory: here they get
// `MMIOTransport` and `IdentityMemory`, with the interrupt routing, clock and spin hint.
import Core
import PC
import MicroVM
import VirtIO
import VirtIOMMIO
import X86Asm

final class MicroVMDevices: DeviceRecorder {
    package var sockets: (any SocketProvider)? = nil
    package var fileSystem: (any FileSystem)? = nil
    var ioapic: IOAPIC? = nil
    var bootstrapAPIC: UInt8 = 0
    /// Set by an attach function that found a malformed kernel argument (status 2).
    package var badArgument = false

    /// Starts the driver `hook` for a device of `kind`, when the service uses that kind
    /// and the image links its driver (DeviceAttach.swift); otherwise logs why not.
    func attach(_ kind: ServiceDevices, _ name: StaticString, _ hook: DriverHooks.Attach?, wanted: ServiceDevices,
                _ attachment: DeviceAttachment) {
        guard wanted.contains(kind), let hook else {
            logFound(name, attachment.hint)
            Log.write(wanted.contains(kind) ? ": this image has no driver for it, left alone\n"
                                            : ": the service does not use it, left alone\n")
            return
        }
        withExtendedLifetime(attachment) {
            _ = hook(Unmanaged.passUnretained(attachment).toOpaque())
        }
    }

    /// Sends device interrupt `irq` (an IOAPIC pin) to CPU 0, level-triggered, to `handler`.
    package func route(_ irq: Int, _ handler: @escaping () -> Void) {
        Interrupts.deviceHandlers[irq] = handler
        ioapic?.route(pin: irq, vector: InterruptVector.deviceBase + UInt8(irq), apicID: bootstrapAPIC, levelTriggered: true)
    }

    /// Starts a device's boot line: `devices: <name> at 0x…, IRQ n` (the caller ends it).
    package func logFound(_ name: StaticString, _ hint: VirtIOMMIOHint) {
        Log.timestamp()
        Log.write("devices: ")
        Log.write(name)
        Log.write(" at ")
        Log.hex(hint.base, digits: 8)
        Log.write(", IRQ ")
        Log.decimal(UInt64(hint.irq))
    }

    /// `badCommandLine` ends the boot with status 2 (a malformed device argument).
    func start(commandLine: KernelCommandLine, ram: [PhysicalRange], wanted: ServiceDevices, ioapic: IOAPIC, bootstrapAPIC: UInt8,
               badCommandLine: () -> Never, now: @escaping () -> UInt64) {
        self.ioapic = ioapic
        self.bootstrapAPIC = bootstrapAPIC
        let memory = IdentityMemory(ranges: ram.map { GuestRange(start: $0.start, end: $0.end) })
        for text in commandLine.values("virtio_mmio.device") {
            let hint: VirtIOMMIOHint
            do {
                hint = try VirtIOMMIOHint.parse(text)
            } catch {
                Log.timestamp()
                Log.write("devices: ignoring malformed virtio_mmio.device=")
                Log.write(text)
                Log.put(10)
                continue
            }
            guard MicroVMAddresses.virtioMMIO.contains(hint.base), hint.base + hint.size <= MicroVMAddresses.virtioMMIO.end,
                  hint.irq < 24 else {
                Log.timestamp()
                Log.write("devices: virtio-mmio window outside the mapped range, ignored\n")
                continue
            }
            let transport = MMIOTransport(hint: hint)
            if transport.isLegacy {
                Log.timestamp()
                Log.write("devices: legacy (version 1) virtio-mmio device ignored; run QEMU with -global virtio-mmio.force-legacy=false\n")
                continue
            }
            guard let id = transport.deviceID else { continue }
            let found = DeviceAttachment(devices: self, transport: transport, hint: hint, memory: memory,
                                         commandLine: commandLine, now: now)
            switch id {
            case VirtIODeviceID.socket where sockets == nil:
                attach(.sockets, "virtio-vsock", DriverHooks.sockets, wanted: wanted, found)
            case VirtIODeviceID.fileSystem where fileSystem == nil:
                attach(.files, "virtio-fs", DriverHooks.files, wanted: wanted, found)
                if badArgument { badCommandLine() }
            default:
                Log.timestamp()
                Log.write("devices: virtio device ")
                Log.decimal(UInt64(id))
                Log.write(" has no driver, left alone\n")
            }
        }
    }
}

#if hasFeature(Embedded)
/// The driver table's scan hook: finds the virtio-mmio devices and attaches those the
/// service uses (MicroVM/DeviceAttach.swift).
@_cdecl("toro_scan_mmio")
func scanMMIO(_ raw: UnsafeMutableRawPointer?) -> Bool {
    guard let raw else { return false }
    let scan = Unmanaged<DeviceScan>.fromOpaque(raw).takeUnretainedValue()
    let devices = MicroVMDevices()
    devices.start(commandLine: scan.commandLine, ram: scan.ram, wanted: scan.wanted, ioapic: scan.ioapic,
                  bootstrapAPIC: scan.bootstrapAPIC, badCommandLine: scan.badCommandLine, now: scan.now)
    scan.sockets = devices.sockets
    scan.fileSystem = devices.fileSystem
    return true
}
#endif
