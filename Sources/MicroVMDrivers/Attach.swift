// The microvm attach functions: each starts a driver over a virtio-mmio transport that
// MicroVM/Devices.swift found, and records the result there. Only the image's driver table
// references them (MicroVM/DeviceAttach.swift says why they are a module of their own).
import Core
import Drivers
import MicroVM
import PC
import VirtIO
import X86Asm

/// What an attach function needs: the device found and where to record the result.
final class DeviceAttachment {
    let devices: MicroVMDevices
    let transport: VirtioMMIO
    let hint: VirtioMMIOHint
    let memory: IdentityMemory
    let commandLine: KernelCommandLine
    let now: () -> UInt64

    init(devices: MicroVMDevices, transport: VirtioMMIO, hint: VirtioMMIOHint, memory: IdentityMemory,
         commandLine: KernelCommandLine, now: @escaping () -> UInt64) {
        self.devices = devices
        self.transport = transport
        self.hint = hint
        self.memory = memory
        self.commandLine = commandLine
        self.now = now
    }
}

#if hasFeature(Embedded)
/// virtio-vsock: the driver, its thread, the socket provider and its idle sweeper.
@_cdecl("toro_attach_sockets_mmio")
func attachSocketsMMIO(_ raw: UnsafeMutableRawPointer?) -> Bool {
    guard let raw else { return false }
    let attachment = Unmanaged<DeviceAttachment>.fromOpaque(raw).takeUnretainedValue()
    let devices = attachment.devices, transport = attachment.transport, hint = attachment.hint
    let memory = attachment.memory
    guard let driver = VsockDriver(transport: transport, memory: memory) else { return false }
    devices.route(hint.irq) { driver.handleInterrupt() }
    if Scheduler.spawn(on: 0, { driver.serve() }) == nil {
        Log.write("devices: no memory for the vsock driver thread\n")
        return false
    }
    let provider = VsockSockets(driver: driver)
    if Scheduler.spawn(on: 0, { provider.sweepSilent() }) == nil {
        Log.write("devices: no memory for the vsock idle sweeper thread\n")
        return false
    }
    devices.sockets = provider
    devices.logFound("virtio-vsock", hint)
    Log.write(", guest CID ")
    Log.decimal(driver.guestCID)
    Log.put(10)
    return true
}

/// virtio-fs: the driver, FUSE INIT, and the mounted file system.
@_cdecl("toro_attach_files_mmio")
func attachFilesMMIO(_ raw: UnsafeMutableRawPointer?) -> Bool {
    guard let raw else { return false }
    let attachment = Unmanaged<DeviceAttachment>.fromOpaque(raw).takeUnretainedValue()
    let devices = attachment.devices, transport = attachment.transport, hint = attachment.hint
    let memory = attachment.memory, commandLine = attachment.commandLine, now = attachment.now
    let timeout: Int
    do throws(KernelArgumentError) {
        timeout = try FUSEStallGuard.timeoutSeconds(commandLine)
    } catch {
        // A typo must not silently mean 30 s: refused like every bad argument.
        Log.write("devices: ")
        error.describe()
        Log.put(10)
        devices.badArgument = true
        return false
    }
    guard let driver = VirtioFSDriver(transport: transport, memory: memory, now: now,
                                      pause: { arch_pause() }, timeoutSeconds: timeout) else { return false }
    devices.route(hint.irq) { driver.handleInterrupt() }
    // INIT runs now, before the scheduler: the driver polls the used ring.
    let mounted: FUSEFileSystem
    do {
        mounted = try FUSEFileSystem.mount(channel: driver)
    } catch {
        devices.logFound("virtio-fs", hint)
        Log.write(": FUSE INIT failed; no shared folder\n")
        return false
    }
    driver.polling = false
    devices.fileSystem = mounted
    devices.logFound("virtio-fs", hint)
    Log.write(", tag ")
    for byte in driver.tag { Log.put(byte) }
    Log.write(", FUSE 7.31, max write ")
    Log.decimal(UInt64(mounted.maximumWrite))
    Log.put(10)
    return true
}
#endif
