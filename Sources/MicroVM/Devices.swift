// The MicroVM platform's devices, all in one place: the virtio-mmio transports QEMU
// announces on the command line (`virtio_mmio.device=`), probed and bound to drivers.
// Today: virtio-vsock (device 19) for sockets and virtio-fs (device 26) for the shared folder. Every device IRQ goes through the IOAPIC to
// CPU 0, level-triggered (virtio-mmio's interrupt line stays up until InterruptACK).
// The drivers (Sources/Drivers) are generic over the transport and memory: here they get
// `VirtioMMIO` and `IdentityMemory`, with the interrupt routing, clock and spin hint.
import Core
import Drivers
import PC
import VirtIO
import X86Asm

final class MicroVMDevices {
    var sockets: VsockSockets? = nil
    var fileSystem: (any FileSystem)? = nil
    var ioapic: IOAPIC? = nil
    var bootstrapAPIC: UInt8 = 0

    /// Sends device interrupt `irq` (an IOAPIC pin) to CPU 0, level-triggered, to `handler`.
    func route(_ irq: Int, _ handler: @escaping () -> Void) {
        Interrupts.deviceHandlers[irq] = handler
        ioapic?.route(pin: irq, vector: InterruptVector.deviceBase + UInt8(irq), apicID: bootstrapAPIC, levelTriggered: true)
    }

    /// Starts a device's boot line: `devices: <name> at 0x…, IRQ n` (the caller ends it).
    func logFound(_ name: StaticString, _ hint: VirtioMMIOHint) {
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
            let hint: VirtioMMIOHint
            do {
                hint = try VirtioMMIOHint.parse(text)
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
            let transport = VirtioMMIO(hint: hint)
            if transport.isLegacy {
                Log.timestamp()
                Log.write("devices: legacy (version 1) virtio-mmio device ignored; run QEMU with -global virtio-mmio.force-legacy=false\n")
                continue
            }
            guard let id = transport.deviceID else { continue }
            switch id {
            case VirtioDeviceID.socket where sockets == nil && wanted.contains(.sockets):
                guard let driver = VsockDriver(transport: transport, memory: memory) else { continue }
                route(hint.irq) { driver.handleInterrupt() }
                if Scheduler.spawn(on: 0, { driver.serve() }) == nil {
                    Log.write("devices: no memory for the vsock driver thread\n")
                    continue
                }
                let provider = VsockSockets(driver: driver)
                if Scheduler.spawn(on: 0, { provider.sweepSilent() }) == nil {
                    Log.write("devices: no memory for the vsock idle sweeper thread\n")
                    continue
                }
                sockets = provider
                logFound("virtio-vsock", hint)
                Log.write(", guest CID ")
                Log.decimal(driver.guestCID)
                Log.put(10)
            case VirtioDeviceID.fileSystem where fileSystem == nil && wanted.contains(.files):
                let timeout: Int
                do throws(KernelArgumentError) {
                    timeout = try FUSEStallGuard.timeoutSeconds(commandLine)
                } catch {
                    // A typo must not silently mean 30 s: refused like every bad argument.
                    Log.write("devices: ")
                    error.describe()
                    Log.put(10)
                    badCommandLine()
                }
                guard let driver = VirtioFSDriver(transport: transport, memory: memory, now: now,
                                                  pause: { arch_pause() }, timeoutSeconds: timeout) else { continue }
                route(hint.irq) { driver.handleInterrupt() }
                // INIT runs now, before the scheduler: the driver polls the used ring.
                let mounted: FUSEFileSystem
                do {
                    mounted = try FUSEFileSystem.mount(channel: driver)
                } catch {
                    logFound("virtio-fs", hint)
                    Log.write(": FUSE INIT failed; no shared folder\n")
                    continue
                }
                driver.polling = false
                fileSystem = mounted
                logFound("virtio-fs", hint)
                Log.write(", tag ")
                for byte in driver.tag { Log.put(byte) }
                Log.write(", FUSE 7.31, max write ")
                Log.decimal(UInt64(mounted.maximumWrite))
                Log.put(10)
            default:
                Log.timestamp()
                Log.write("devices: virtio device ")
                Log.decimal(UInt64(id))
                Log.write(" has no driver, left alone\n")
            }
        }
    }
}
