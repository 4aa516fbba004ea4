// microvm's virtio-fs attach function: the driver, FUSE INIT, the mounted file system.
// Only the image's driver table references it (MicroVM/DeviceAttach.swift says why each
// driver's attach function is a module of its own).
import Core
import Drivers
import FSDriver
import MicroVM
import PC
import VirtIO
import VirtIOMMIO
import X86Asm

#if hasFeature(Embedded)
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
    guard let driver = VirtIOFSDriver(transport: transport, memory: memory, now: now,
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
