// Legacy's sockets: the virtio-net attach function. The NIC behind a modern virtio-net-pci
// function gets the driver (NetDriver), an IPv4 interface configured from the command line
// (Inet's InetConfiguration: `ip=A.B.C.D/N`, `gateway=A.B.C.D`, QEMU user networking's
// 10.0.2.15/24 via 10.0.2.2 by default), Toro's TCP over it, and the socket provider the
// service uses.
//
// Threads. The INTx handler only acknowledges the device (reading its ISR deasserts the
// line, which may be shared) and signals an event; frames are taken on the network thread,
// on CPU 0 with the service threads that use the sockets (TCPSockets.swift), never in the
// interrupt handler. The thread loops:
//   wait for the event, at most until ARP's or TCP's next timer or 50 ms from now
//   reset the event, drain the NIC (each frame -> NetInterface.receive), run the timers,
//   yield (so that a flood of frames or a timer always due cannot starve the services)
// An interrupt that comes after the reset signals the event again, so no frame waits past
// the next loop. A failed device tells the socket provider once; its calls then throw.
//
// Only the image's driver table references this module (Legacy/LegacyDevices.swift).
import Core
import Drivers
import Inet
import Legacy
import NetDriver
import PC
import VirtIO
import VirtIOPCI
import Wire
import X86Asm

enum LegacyNetLimits {
    /// The longest the network thread sleeps without a timer due (ns).
    static let idleWake: UInt64 = 50_000_000
}

#if hasFeature(Embedded)
@_cdecl("toro_attach_sockets_pci")
func attachSocketsPCI(_ raw: UnsafeMutableRawPointer?) -> Bool {
    guard let raw else { return false }
    let attachment = Unmanaged<PCIDeviceAttachment>.fromOpaque(raw).takeUnretainedValue()
    let scan = attachment.scan, function = attachment.function
    let configuration: InetConfiguration
    do throws(KernelArgumentError) {
        configuration = try InetConfiguration(commandLine: scan.commandLine)
    } catch {
        Log.write("devices: ")
        error.describe()
        Log.put(10)
        scan.badArgument = true
        return false
    }
    let memory = IdentityMemory(ranges: scan.ram.map { GuestRange(start: $0.start, end: $0.end) })
    guard let driver = VirtIONetDriver(transport: attachment.transport, memory: memory) else { return false }
    let m = driver.mac
    let mac = MACAddress(m[0], m[1], m[2], m[3], m[4], m[5])
    let interface = NetInterface(mac: mac, configuration: configuration) { frame in driver.send(frame) }
    let stack = TCPStack(output: interface, secret: UInt64.random(in: 0 ... UInt64.max) ^ arch_rdtsc())
    interface.transport = stack
    let sockets = TCPSockets(stack: stack, host: configuration.gateway ?? .any)
    driver.onFrame = { frame in interface.receive(frame: frame, now: Clock.monotonicNanoseconds()) }

    let wake = Event()
    let started = Scheduler.spawn(on: 0) {
        var reported = false
        interface.announce()
        while true {
            let now = Clock.monotonicNanoseconds()
            var deadline = now &+ LegacyNetLimits.idleWake
            if let next = interface.nextDeadline, next < deadline { deadline = next }
            if deadline > now { wake.wait(deadline: deadline) }
            wake.reset()
            driver.drain()
            interface.tick(now: Clock.monotonicNanoseconds())
            if driver.failed && !reported {
                reported = true
                sockets.deviceFailed()
            }
            // Nothing preempts a thread: when the wait did not block (a flood of frames, a
            // timer already due), the service threads of CPU 0 still get their turn.
            Scheduler.yield()
        }
    }
    guard started != nil else {
        logPCIFound("virtio-net", function)
        Log.write(": no memory for the network thread, left alone\n")
        return false
    }
    scan.route(Int(function.interruptLine)) { if driver.acknowledgeInterrupt() { wake.signal() } }
    scan.sockets = sockets
    logPCIFound("virtio-net", function)
    Log.write(", MAC ")
    Log.mac(mac)
    Log.write(", ")
    interface.describeAddress()
    if !driver.linkUp { Log.write(", link down") }
    Log.put(10)
    Kernel.beforeExit.append { interface.logStatistics() }
    return true
}
#endif
