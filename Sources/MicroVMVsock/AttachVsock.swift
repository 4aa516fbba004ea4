// microvm's virtio-vsock attach function: the driver, its thread, the socket provider.
// Only the image's driver table references it (MicroVM/DeviceAttach.swift says why each
// driver's attach function is a module of its own).
import Core
import Drivers
import MicroVM
import PC
import VirtIO
import VirtIOMMIO
import VsockDriver

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
#endif
