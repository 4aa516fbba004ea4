// What MicroVM and Legacy share because both are PC-compatible QEMU machines running
// the kernel identity-mapped: the COM1 console (UART16550.swift), the isa-debug-exit port
// (DebugExit.swift), the TSC clock calibrated against the 8254 PIT (PIT8254.swift), the
// early boot sequence, and the processor capability (`PCProcessor`: the CPU index, context
// switches, halt, CR3, exit), which both platforms hand to the kernel as it is. The
// LAPIC-based half of the interrupt controller both share is `LocalAPICInterrupts`.
import X86Asm
import Core

/// Monotonic time from the TSC, calibrated once at boot against the PIT.
public struct TSCClock {
    public let hz: UInt64
    public let start: UInt64

    /// Calibrates over `milliseconds` of PIT time. When no PIT counts, falls back to
    /// 1 GHz and says so in the log: timestamps are then only roughly seconds.
    public static func calibrate(milliseconds: UInt32 = 1) -> TSCClock {
        let start = arch_rdtsc()
        let hz = PIT8254().measureTSC(pitTicks: 1193 * milliseconds)
        return TSCClock(hz: hz ?? 1_000_000_000, start: start, calibrated: hz != nil)
    }

    public let calibrated: Bool

    init(hz: UInt64, start: UInt64, calibrated: Bool) {
        self.hz = hz
        self.start = start
        self.calibrated = calibrated
    }

    public func nanoseconds() -> UInt64 {
        // Whole seconds and the remainder separately: no 128-bit division (which would
        // need compiler-rt), and no overflow while the remainder stays below ~18 GHz.
        let ticks = arch_rdtsc() &- start
        return (ticks / hz) &* 1_000_000_000 &+ (ticks % hz) &* 1_000_000_000 / hz
    }
}

/// The CPU control of both machines: the same x86-64 instructions on each (Arch's
/// assembly: context switch, first stack frame, HLT, CR3; isa-debug-exit to leave).
public final class PCProcessor: CPUControl {
    public init() {}

    public func currentCPU() -> Int { Int(arch_cpu_index()) }

    public func switchContext(save: UnsafeMutablePointer<UInt64>, next: UInt64) {
        arch_context_switch(save, next)
    }

    public func prepareStack(top: UInt64) -> UInt64 { arch_prepare_stack(top) }

    public func waitForInterrupt() { arch_wait_for_interrupt() }

    public func loadPageTables(root: UInt64) { arch_load_page_tables(root) }

    public func exit(_ status: ExitStatus) -> Never { PCProcessor.leave(status) }

    /// Writes `status` to isa-debug-exit and halts (if the port is absent).
    static func leave(_ status: ExitStatus) -> Never {
        DebugExit.write(status.rawValue, ports: X86Ports())
        arch_halt_forever()
    }
}

/// Reads boot structures through the trampoline's identity map of the first GiB.
public struct BootMemoryReader: PhysicalReader {
    public init() {}
    public func bytes(at address: UInt64, count: Int) -> UnsafeRawBufferPointer? {
        // Page 0 is unmapped once the kernel's page tables are in (null pointers fault).
        guard address >= 4096, count >= 0, address < (1 << 30), UInt64(count) <= (1 << 30) - address else { return nil }
        return UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(address)), count: count)
    }
}

/// The shared parts of a platform; MicroVM and Legacy each hold one. A value: it exists
/// before the early heap does (its initializer installs that heap).
public struct PCMachine {
    public let console: SerialConsole
    public let clock: TSCClock
    public let image: KernelImage

    /// The early boot sequence both entry points run first: console, early heap on the
    /// .bss region, IDT, clock. After this `Log` and Swift allocations work.
    public init() {
        KernelMemory.addFree(PhysicalRange(start: arch_early_heap_start(), end: arch_early_heap_limit()))
        console = SerialConsole()   // the first allocation: after the early heap exists
        arch_idt_init()
        arch_cpu_block_init(0)
        PCMachine.installExceptionStack(cpu: 0)
        KernelMemory.setCurrentCPU { arch_cpu_index_c() }
        KernelPageTables.invalidate = { arch_invlpg($0) }
        clock = TSCClock.calibrate()
        image = KernelImage(range: PhysicalRange(start: arch_image_start(), end: arch_image_end()),
                            stack: PhysicalRange(start: arch_stack_bottom(), end: arch_stack_top()))
    }

    static let exceptionStackPages = 2

    /// Gives `cpu` its GDT and TSS with an exception stack of its own (IST1).
    public static func installExceptionStack(cpu: Int) {
        guard let stack = KernelMemory.allocatePages(exceptionStackPages) else {
            panic("no memory for an exception stack")
        }
        arch_cpu_tables_init(UInt32(cpu), stack + UInt64(exceptionStackPages * 4096))
    }

    public var bootProtocol: UInt32 { arch_boot_protocol_value() }
    public var bootMagic: UInt32 { arch_boot_magic_value() }
    public var bootInfoAddress: UInt64 { arch_boot_info_address() }

    public func loadPageTables(root: UInt64) { arch_load_page_tables(root) }

    public func exit(_ status: ExitStatus) -> Never { PCProcessor.leave(status) }

    /// The kernel's view of this machine: its name, this machine's console, the shared CPU
    /// control, and the platform's clocks, interrupt controller and devices.
    public func capabilities(name: StaticString, clocks: any Clocks, interrupts: any InterruptController,
                             devices: any DeviceSet) -> Platform {
        Platform(name: name, console: console, clocks: clocks, cpu: PCProcessor(), interrupts: interrupts,
                 devices: devices)
    }

    /// Logs the clock source; called once the platform is current.
    public func logClock() {
        Log.timestamp()
        Log.write("clock: TSC at ")
        Log.decimal(clock.hz / 1_000_000)
        Log.write(clock.calibrated ? " MHz, calibrated against the PIT\n" : " MHz assumed (no PIT found)\n")
    }

    /// Reports a boot-information error and exits with `ExitStatus.panic`.
    public func bootFailed(_ error: BootInfoError) -> Never {
        Log.write("panic: unusable boot information: ")
        switch error {
        case .badMagic(let magic): Log.write("loader magic "); Log.hex(UInt64(magic), digits: 8)
        case .unreadable(let what): Log.write(what); Log.write(" is unreadable")
        case .commandLineTooLong: Log.write("command line too long")
        case .noMemoryMap: Log.write("no memory map")
        case .memoryMap(let e):
            Log.write("memory map ")
            switch e {
            case .truncated: Log.write("truncated")
            case .overflowingEntry: Log.write("entry overflows")
            case .tooManyEntries: Log.write("has too many entries")
            case .noRAM: Log.write("has no RAM")
            }
        }
        Log.put(10)
        exit(.panic)
    }
}
