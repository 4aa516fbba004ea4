// The Legacy platform (ToroKernel's machine): QEMU's pc machine with SeaBIOS, booted
// through Multiboot v1.
//
// Interrupts: the 8259 PIC (remapped to vectors 0x20-0x2F, all lines masked but the
// PIT's); the LAPIC only for IPIs (CPU start-up and wake-ups), the BSP's in virtual-wire
// mode so the 8259's interrupts reach it. Ticks: the PIT at 1 kHz on the BSP, which also
// wakes any other CPU whose sleep is due. Wall clock: the CMOS RTC. CPUs: SeaBIOS's MP
// table (one processor per socket: `toro run` passes sockets=N). Devices: PCI, walked when
// the platform starts (LegacyDevices.swift, Sources/LegacyScan); the memory BARs of the
// virtio functions are mapped uncached with the fixed windows.
// Fixed addresses live in Addresses.swift; the boot path is `toro_kernel_entry`.
import _Volatile
import X86Asm
import Core
import PC

/// The clocks, the interrupt controller and the devices of the pc machine; the CPU
/// control and the console are the PC machine's.
final class LegacyPlatform: Clocks, LocalAPICInterrupts, DeviceSet {
    static let tickHz: UInt32 = 1000

    let machine: PCMachine
    private(set) var cpuCount = 1
    /// Every PCI function, as firmware left it (the walk only reads, and sizes BARs).
    let pciFunctions: [PCIFunction]
    let mmioWindows: [PhysicalRange]
    private(set) var sockets: (any SocketProvider)? = nil
    private(set) var fileSystem: (any FileSystem)? = nil
    let lapic = LocalAPIC(base: LegacyAddresses.localAPIC.start)
    var pic = PIC8259()
    var pit = PIT8254()
    /// Each CPU's next wake-up deadline (0: none), written by that CPU, read by the BSP's
    /// tick handler. Aligned 64-bit stores and loads are atomic on x86-64.
    let deadlines: UnsafeMutablePointer<UInt64>
    private(set) var wallClockAtBoot: (seconds: Int64, monotonic: UInt64)? = nil

    init(machine: PCMachine) {
        self.machine = machine
        pciFunctions = PCIBus().scan(log: { line in
            Log.timestamp()
            Log.write(line)
            Log.put(10)
        })
        mmioWindows = LegacyAddresses.mmioWindows + LegacyPlatform.virtioWindows(pciFunctions)
        deadlines = UnsafeMutablePointer<UInt64>.allocate(capacity: KernelHeap.maxCPUs)
        deadlines.initialize(repeating: 0, count: KernelHeap.maxCPUs)
    }

    func monotonicNanoseconds() -> UInt64 { machine.clock.nanoseconds() }

    func deadline(_ cpu: Int) -> VolatileMappedRegister<UInt64> {
        VolatileMappedRegister<UInt64>(unsafeBitPattern: UInt(bitPattern: deadlines + cpu))
    }

    /// The BSP wakes at the next PIT tick anyway; another CPU records its deadline for
    /// the BSP's tick handler.
    func armWakeup(deadline: UInt64) {
        let cpu = Int(arch_cpu_index())
        if cpu != 0 { self.deadline(cpu).store(deadline) }
    }

    /// IRQ 0 on the BSP: wake every other CPU whose deadline has passed.
    func tick() {
        guard cpuCount > 1 else { return }
        let now = monotonicNanoseconds()
        for cpu in 1..<cpuCount {
            let due = deadline(cpu).load()
            if due != 0 && due <= now {
                deadline(cpu).store(0)
                wake(cpu: cpu)
            }
        }
    }

    func startCPUs() -> Int {
        lapic.enable(virtualWire: true)
        installInterrupts()
        pic.remap(masterBase: InterruptVector.deviceBase, slaveBase: InterruptVector.deviceBase + 8)
        Interrupts.acknowledgeDevice = { [pic] irq in
            if !pic.isSpurious(irq: UInt8(irq)) { pic.endOfInterrupt(irq: UInt8(irq)) }
        }
        Interrupts.deviceHandlers[0] = { self.tick() }   // the platform lives as long as the kernel
        _ = pit.startPeriodic(hz: LegacyPlatform.tickHz)
        pic.unmask(irq: 0)
        if let date = CMOSClock().read() {
            wallClockAtBoot = (date.unixSeconds, machine.clock.nanoseconds())
        }
        cpuCount = startOtherCPUs(tscHz: machine.clock.hz)
        return cpuCount
    }

    /// The memory BARs of modern virtio functions (vendor 0x1AF4, device 0x1040 and up),
    /// below 4 GiB's end of the address space and page-aligned outward; the rest are left
    /// unmapped (no driver touches them).
    static func virtioWindows(_ functions: [PCIFunction]) -> [PhysicalRange] {
        var windows: [PhysicalRange] = []
        for function in functions where function.vendorID == 0x1AF4 && function.deviceID >= 0x1040 {
            for bar in function.bars where bar.kind != .io && bar.size > 0 && bar.address != 0 {
                let end = bar.address &+ bar.size
                guard end > bar.address else { continue }
                windows.append(PhysicalRange(start: bar.address & ~0xFFF, end: (end + 0xFFF) & ~0xFFF))
            }
        }
        return windows
    }

    /// Routes an INTx line of the 8259 to `handler`, after the handlers already there: PCI
    /// lines are shared (LegacyDevices.swift).
    func route(_ irq: Int, _ handler: @escaping () -> Void) {
        guard irq > 0 && irq < 16 && irq != 2 else {
            Log.timestamp()
            Log.write("devices: a PCI device has no usable interrupt line; it is left alone\n")
            return
        }
        if let earlier = Interrupts.deviceHandlers[irq] {
            Interrupts.deviceHandlers[irq] = { earlier(); handler() }
        } else {
            Interrupts.deviceHandlers[irq] = handler
        }
        pic.unmask(irq: UInt8(irq))
    }

    /// The PCI scan and the drivers run only in images whose service uses a device (the
    /// driver table's `toro_driver_scan`): hello's image has none. virtio-net and Toro's
    /// TCP/IP stack come later (MIGRATION.md).
    func startDevices(commandLine: KernelCommandLine, ram: [PhysicalRange], wanted: ServiceDevices) {
        guard !wanted.isEmpty, let hook = DriverHooks.scan else { return }
        let scan = LegacyDeviceScan(functions: pciFunctions, commandLine: commandLine, ram: ram, wanted: wanted,
                                    route: { [self] irq, handler in route(irq, handler) },
                                    badCommandLine: { Kernel.finish(.badCommandLine) },
                                    now: { [self] in monotonicNanoseconds() })
        withExtendedLifetime(scan) { _ = hook(Unmanaged.passUnretained(scan).toOpaque()) }
        sockets = scan.sockets
        fileSystem = scan.fileSystem
    }

    func logBootDetails() {
        machine.logClock()
        Log.timestamp()
        Log.write(wallClockAtBoot == nil ? "clock: no wall clock (the RTC did not answer)\n"
                                         : "clock: wall clock from the CMOS RTC\n")
        Log.timestamp()
        Log.write("interrupts: 8259 PIC at vectors 0x20-0x2f, PIT ticking at ")
        Log.decimal(UInt64(pit.frequencyHz))
        Log.write(" Hz\n")
    }
}

#if hasFeature(Embedded)
@_cdecl("toro_kernel_entry")
func toroKernelEntry() -> Never {
    let machine = PCMachine()
    Log.console = machine.console
    Log.put(10)   // SeaBIOS leaves its "Booting from ROM.." line unterminated
    guard machine.bootProtocol == UInt32(ARCH_BOOT_MULTIBOOT) else {
        panic("the Legacy kernel was not started through Multiboot")
    }
    let boot: BootInfo
    do {
        boot = try BootInfo.parseMultiboot(magic: machine.bootMagic, at: machine.bootInfoAddress,
                                           reader: BootMemoryReader())
    } catch {
        machine.bootFailed(error)
    }
    let platform = LegacyPlatform(machine: machine)
    Kernel.start(machine.capabilities(name: "legacy", clocks: platform, interrupts: platform, devices: platform),
                 boot: boot, image: machine.image, service: imageService())
}
#endif
