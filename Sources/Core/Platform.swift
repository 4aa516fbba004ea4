// What a platform provides to Core: five small capabilities (console, clocks, CPU
// control, interrupt controller, devices) that its entry code hands to `Kernel.start`.
//
// Core is written once and never imports a platform; no part of Core holds the platform
// as a whole. Each subsystem keeps the one capability it was given: `Log` the console,
// `Clock` the clocks, the scheduler the CPU control and the interrupt controller, the
// service's context the devices. What the two PC machines share (the CPU control, the
// TSC, the COM1 console, the exit port) is written once, in the PC target.

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

/// Time: the monotonic clock the scheduler and the log use, and the wall clock's reading
/// at boot (`Clock`).
public protocol Clocks: AnyObject {
    /// Nanoseconds since an arbitrary point early in boot.
    func monotonicNanoseconds() -> UInt64
    /// Wall-clock time read at boot (Unix seconds) with the monotonic time of that
    /// reading, if the machine has a wall clock.
    var wallClockAtBoot: (seconds: Int64, monotonic: UInt64)? { get }
}

/// The processor, as the scheduler and the memory set-up use it. Every call acts on the
/// calling CPU.
public protocol CPUControl: AnyObject {
    /// The index of the CPU running the caller (0 on the bootstrap CPU).
    func currentCPU() -> Int
    /// Saves the callee-saved registers and RSP into `save`, then resumes the context
    /// whose stack pointer is `next`.
    func switchContext(save: UnsafeMutablePointer<UInt64>, next: UInt64)
    /// Builds the first frame of a thread on a stack ending at `top`; returns its RSP.
    /// The thread starts in `Scheduler.threadStart()`.
    func prepareStack(top: UInt64) -> UInt64
    /// Halts this CPU until an interrupt arrives (interrupts stay disabled otherwise).
    func waitForInterrupt()
    /// Switches to the page tables whose top level is at `root` (CR3).
    func loadPageTables(root: UInt64)
    /// Leaves the virtual machine with `status`; never returns.
    func exit(_ status: ExitStatus) -> Never
}

/// The interrupt controllers and timers: bringing every CPU up, one-shot wake-ups, IPIs.
public protocol InterruptController: AnyObject {
    /// Sets up interrupts and clocks, finds the CPUs, calls `Scheduler.prepare(cpus:)`
    /// and starts every other CPU into `Scheduler.runIdleLoop()`. Returns the CPUs running.
    func startCPUs() -> Int
    /// Makes this CPU take an interrupt no later than `deadline` (monotonic ns).
    func armWakeup(deadline: UInt64)
    /// Interrupts `cpu` (a wake-up IPI) so that it looks at its mailboxes.
    func wake(cpu: Int)
    /// Sends this CPU an interrupt on a vector with no handler (the `irqtest` probe).
    func raiseUnhandledInterrupt()
    /// Logs the clock source and the interrupt set-up, once `startCPUs` has run.
    func logBootDetails()
}

/// The machine's devices: the register windows to map and the drivers to start.
public protocol DeviceSet: AnyObject {
    /// Device register windows the kernel must map (uncached), e.g. the LAPIC.
    var mmioWindows: [PhysicalRange] { get }
    /// Finds the devices (virtio-mmio on microvm) and starts the drivers of the kinds in
    /// `wanted` that the image links. `ram` is every RAM range, the memory device buffers
    /// may live in.
    func startDevices(commandLine: KernelCommandLine, ram: [PhysicalRange], wanted: ServiceDevices)
    /// Sockets for services, or nil when the platform has no network device (yet).
    var sockets: (any SocketProvider)? { get }
    /// The shared folder (virtio-fs on microvm, `--share DIR`), or nil when there is none.
    /// It may be used by several threads at once: back-ends serialise their own calls.
    var fileSystem: (any FileSystem)? { get }
}

/// What a platform hands to `Kernel.start`: its name and five small capabilities. The
/// kernel gives each to the part that needs it (the console and clocks to `Log` and
/// `Clock`, the CPU and interrupt controller to the scheduler, the devices to the
/// service's context); nothing in Core reaches a platform any other way.
public struct Platform {
    /// The platform's name as services print it: "microvm" or "legacy".
    public let name: StaticString
    public let console: any Console
    public let clocks: any Clocks
    public let cpu: any CPUControl
    public let interrupts: any InterruptController
    public let devices: any DeviceSet

    public init(name: StaticString, console: any Console, clocks: any Clocks, cpu: any CPUControl,
                interrupts: any InterruptController, devices: any DeviceSet) {
        self.name = name
        self.console = console
        self.clocks = clocks
        self.cpu = cpu
        self.interrupts = interrupts
        self.devices = devices
    }
}
