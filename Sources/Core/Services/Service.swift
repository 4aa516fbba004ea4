// Services: the applications a Toro image runs, chosen by `service=` on the kernel
// command line. Each is written once and runs unchanged on every platform.
//
// Rules for services: print `ready: <name>` (through `context.ready()`) when serving
// starts, print results as plain lines (no timestamps: those mark kernel log lines, which
// the cross-platform comparison ignores), and return an `ExitStatus`.

public struct ServiceContext {
    public let platform: any Platform
    public let commandLine: KernelCommandLine
    public let memoryMap: MemoryMap
    /// The ranges handed to the page-frame allocator at boot.
    public let usableRanges: [PhysicalRange]
    /// The loaded kernel image (.bss, and so the early heap, included).
    public let kernelImage: PhysicalRange
    public let name: StaticString

    public func ready() {
        Log.write("ready: ")
        Log.write(name)
        Log.put(10)
    }
}

public struct Service: Sendable {
    public let name: StaticString
    public let summary: StaticString
    public let run: @Sendable (ServiceContext) -> ExitStatus

    public init(name: StaticString, summary: StaticString, run: @escaping @Sendable (ServiceContext) -> ExitStatus) {
        self.name = name
        self.summary = summary
        self.run = run
    }
}

public enum Services {
    /// Every service this kernel carries; the host tool keeps the same list.
    public static let all: [Service] = [
        Service(name: "hello", summary: "prints a greeting with the platform, CPU count and memory size", run: Hello.run),
        Service(name: "fault", summary: "touches an unmapped address to exercise the exception report", run: Fault.run),
        Service(name: "memtest", summary: "allocates all memory and shows every RAM range is used", run: MemTest.run),
        Service(name: "intercore", summary: "CPU 0 sends ping to every CPU through the mailboxes; each answers pong", run: Intercore.run),
        Service(name: "threads", summary: "threads on every CPU yield and sleep in a deterministic pattern", run: Threads.run),
        Service(name: "clock", summary: "prints the wall-clock date and measures sleep(100 ms)", run: ClockService.run),
        Service(name: "threadstress", summary: "creates and finishes 100,000 threads across all CPUs; heap returns to baseline", run: ThreadStress.run),
        Service(name: "kv", summary: "key-value server on port 80 (SET, GET, DEL, SAVE, QUIT), one thread per client", run: KV.run),
        Service(name: "hostping", summary: "connects out to the host (vsock CID 2, port=N) and prints its answer", run: HostPing.run),
        Service(name: "stackoverflow", summary: "a thread recurses forever: its guard page faults and the report names it", run: StackOverflow.run),
        Service(name: "static-web", summary: "serves the shared folder over HTTP/1.1 on port 80 (GET, HEAD, keep-alive)", run: StaticWeb.run),
        Service(name: "fs-manifest", summary: "prints every file of the shared folder with its size and CRC-32, sorted", run: FSManifest.run),
        Service(name: "irqtest", summary: "raises an interrupt nobody handles; the kernel logs it and carries on", run: IRQTest.run),
    ]

    public static func named(_ name: String) -> Service? {
        all.first { service in
            service.name.withUTF8Buffer { Array($0) } == Array(name.utf8)
        }
    }
}
