// The MicroVM platform: QEMU's microvm machine, booted through PVH.
//
// Interrupts: the LAPIC of each CPU (timer, IPIs) and the IOAPIC for device IRQs.
// CPUs: the MP table that microvm's firmware writes. Clock: the KVM clock when CPUID
// announces it; otherwise (TCG) the TSC calibrated against the PIT for monotonic time and
// the MC146818 RTC, which `toro run` enables on microvm under TCG only, for the date.
// Fixed addresses live in Addresses.swift; the boot path is `toro_kernel_entry`.
import X86Asm
import Core
import PC

/// The clocks, the interrupt controller and the devices of microvm; the CPU control and
/// the console are the PC machine's.
final class MicroVMPlatform: Clocks, LocalAPICInterrupts, DeviceSet {
    let machine: PCMachine
    let mmioWindows: [PhysicalRange] = MicroVMAddresses.mmioWindows
    let lapic = LocalAPIC(base: MicroVMAddresses.localAPIC.start)
    private var timer: APICTimer? = nil
    private var kvmClock: KVMClock? = nil
    private(set) var wallClockAtBoot: (seconds: Int64, monotonic: UInt64)? = nil
    let ioapic = IOAPIC(base: MicroVMAddresses.ioAPIC.start)
    private(set) var sockets: (any SocketProvider)? = nil
    private(set) var fileSystem: (any FileSystem)? = nil

    init(machine: PCMachine) { self.machine = machine }

    func monotonicNanoseconds() -> UInt64 {
        if let kvmClock { return kvmClock.nanoseconds() }
        return machine.clock.nanoseconds()
    }

    func armWakeup(deadline: UInt64) {
        timer?.arm(deadline: deadline, now: monotonicNanoseconds())
    }

    /// Interrupt controllers, clocks and the other CPUs; after the page tables map the
    /// LAPIC and IOAPIC windows.
    func startCPUs() -> Int {
        lapic.enable(virtualWire: false)
        installInterrupts()
        ioapic.maskAll()
        Interrupts.acknowledgeDevice = { [lapic] _ in lapic.endOfInterrupt() }
        timer = APICTimer(lapic: lapic, tscHz: machine.clock.hz)
        kvmClock = KVMClock()
        if let kvmClock {
            wallClockAtBoot = (kvmClock.wallClockBaseSeconds, 0)
        } else if let date = CMOSClock().read() {
            wallClockAtBoot = (date.unixSeconds, machine.clock.nanoseconds())
        }
        return startOtherCPUs(tscHz: machine.clock.hz)
    }

    /// The virtio-mmio scan and the drivers run only in images whose service uses a device
    /// (the driver table's `toro_driver_scan`; DeviceAttach.swift): hello's image has none.
    func startDevices(commandLine: KernelCommandLine, ram: [PhysicalRange], wanted: ServiceDevices) {
        guard !wanted.isEmpty, let hook = DriverHooks.scan else { return }
        let scan = DeviceScan(commandLine: commandLine, ram: ram, wanted: wanted, ioapic: ioapic,
                              bootstrapAPIC: lapic.id, badCommandLine: { Kernel.finish(.badCommandLine) },
                              now: { [self] in self.monotonicNanoseconds() })
        withExtendedLifetime(scan) { _ = hook(Unmanaged.passUnretained(scan).toOpaque()) }
        sockets = scan.sockets
        fileSystem = scan.fileSystem
    }

    func logBootDetails() {
        if kvmClock != nil {
            Log.timestamp()
            Log.write("clock: KVM clock (pvclock); wall clock from the hypervisor\n")
        } else {
            machine.logClock()
            Log.timestamp()
            Log.write(wallClockAtBoot == nil ? "clock: no wall clock (no KVM clock, no RTC)\n"
                                             : "clock: no KVM clock (TCG); wall clock from the RTC\n")
        }
        Log.timestamp()
        Log.write("interrupts: LAPIC one-shot timer (rate measured on first sleep), IOAPIC with every pin masked\n")
    }
}

#if hasFeature(Embedded)
@_cdecl("toro_kernel_entry")
func toroKernelEntry() -> Never {
    let machine = PCMachine()
    Log.console = machine.console
    guard machine.bootProtocol == UInt32(ARCH_BOOT_PVH) else {
        panic("the MicroVM kernel was not started through PVH")
    }
    let boot: BootInfo
    do {
        boot = try BootInfo.parsePVH(at: machine.bootInfoAddress, reader: BootMemoryReader())
    } catch {
        machine.bootFailed(error)
    }
    let platform = MicroVMPlatform(machine: machine)
    Kernel.start(machine.capabilities(name: "microvm", clocks: platform, interrupts: platform, devices: platform),
                 boot: boot, image: machine.image, service: imageService())
}
#endif
