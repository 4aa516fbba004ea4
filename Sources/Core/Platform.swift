// What a platform must provide to Core.
//
// Core is written once and never imports a platform: MicroVM and Legacy each conform to
// `Platform` and hand themselves to `Kernel.start(_:)`. Everything here is small and
// explicit; a platform's devices live in its own target.

/// Exit statuses the guest reports through isa-debug-exit. The host tool passes them
/// through unchanged (see README, "Exit statuses").
public enum ExitStatus: UInt8 {
    /// The service finished successfully.
    case success = 0
    /// The service ran and reported a failure.
    case serviceFailed = 1
    /// The kernel command line named an unknown service or held a malformed entry.
    case badCommandLine = 2
    /// A CPU exception or a kernel panic (assertion, out of memory, corrupt boot data).
    case panic = 3
}

/// The byte sink for the kernel log (the serial console on both platforms).
public protocol Console: AnyObject {
    func write(_ byte: UInt8)
}

public protocol Platform: AnyObject {
    /// The platform's name as services print it: "microvm" or "legacy".
    var name: StaticString { get }
    var console: any Console { get }
    /// Number of CPUs the platform found (1 until the scheduler brings up the others).
    var cpuCount: Int { get }
    /// The index of the CPU running the caller (0 on the bootstrap CPU).
    func currentCPU() -> Int
    /// Nanoseconds since an arbitrary point early in boot.
    func monotonicNanoseconds() -> UInt64
    /// Device register windows the kernel must map (uncached), e.g. the LAPIC.
    var mmioWindows: [PhysicalRange] { get }
    /// Switches to the page tables whose top level is at `root` (CR3).
    func loadPageTables(root: UInt64)
    /// Logs what the platform found at boot (clock source, devices), as milestones.
    func logBootDetails()

    // MARK: What the scheduler needs (Scheduler/Scheduler.swift)

    /// Saves the callee-saved registers and RSP into `save`, then resumes the context
    /// whose stack pointer is `next` (Arch: arch_context_switch).
    func switchContext(save: UnsafeMutablePointer<UInt64>, next: UInt64)
    /// Builds the first frame of a thread on a stack ending at `top`; returns its RSP.
    /// The thread starts in `Scheduler.threadStart()`.
    func prepareStack(top: UInt64) -> UInt64
    /// Halts this CPU until an interrupt arrives (interrupts stay disabled otherwise).
    func waitForInterrupt()
    /// Makes this CPU take an interrupt no later than `deadline` (monotonic ns).
    func armWakeup(deadline: UInt64)
    /// Interrupts `cpu` (a wake-up IPI) so that it looks at its mailboxes.
    func wake(cpu: Int)
    /// Sets up interrupts and clocks, finds the CPUs, calls `Scheduler.prepare(cpus:)`
    /// and starts every other CPU into `Scheduler.runIdleLoop()`. Returns the CPUs running.
    func startCPUs() -> Int
    /// Sends this CPU an interrupt on a vector with no handler (the `irqtest` service).
    func raiseUnhandledInterrupt()
    /// Wall-clock time read at boot (Unix seconds) and its source, if there is one.
    var wallClockAtBoot: (seconds: Int64, monotonic: UInt64)? { get }

    /// Finds the platform's devices (virtio-mmio on microvm) and starts the drivers of the
    /// kinds in `wanted` that the image links. `ram` is every RAM range, the memory device
    /// buffers may live in.
    func startDevices(commandLine: KernelCommandLine, ram: [PhysicalRange], wanted: ServiceDevices)
    /// Sockets for services, or nil when the platform has no network device yet.
    var sockets: (any SocketProvider)? { get }
    /// The shared folder (virtio-fs on microvm, `--share DIR`), or nil when there is none.
    /// It may be used by several threads at once: back-ends serialise their own calls.
    var fileSystem: (any FileSystem)? { get }

    /// Leaves the virtual machine with `status`; never returns.
    func exit(_ status: ExitStatus) -> Never
}
