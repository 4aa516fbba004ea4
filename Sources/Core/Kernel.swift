// Kernel start-up, shared by both platforms.
//
// A platform's entry code brings up its console, starts the heap on a small .bss region
// (`KernelMemory`), reads its boot protocol into a `BootInfo`, and calls `Kernel.start`.
// From there the order is: command line, page tables from the memory map, the rest of
// RAM to the page-frame allocator, the devices the service uses, then the image's one
// service (Service.swift); a command line naming another service is refused (status 2).

public struct KernelImage {
    /// The loaded image, .bss included.
    public var range: PhysicalRange
    /// The boot stack (inside `range`), for backtraces.
    public var stack: PhysicalRange
    public init(range: PhysicalRange, stack: PhysicalRange) { self.range = range; self.stack = stack }
}

public enum Kernel {
    /// Identity-mapped by the boot trampoline: the page-table pages must come from here.
    static let bootMappedLimit: UInt64 = 1 << 30

    /// The processor: how a panic or the service's end leaves the machine. Set by `start`.
    nonisolated(unsafe) static var cpu: (any CPUControl)?

    /// Called by a platform once its console works and the early heap is installed. Each
    /// capability goes to the part of the kernel that uses it; none is kept whole.
    public static func start(_ platform: Platform, boot: BootInfo, image: KernelImage, service: Service) -> Never {
        Log.console = platform.console
        Clock.source = platform.clocks
        cpu = platform.cpu
        Scheduler.attach(cpu: platform.cpu, interrupts: platform.interrupts)
        ExceptionReport.stack = image.stack
        Log.milestone("boot: console and early heap ready")

        let commandLine: KernelCommandLine
        do {
            commandLine = try KernelCommandLine(parsing: boot.commandLine)
        } catch {
            Log.timestamp()
            Log.write("boot: malformed kernel command line (")
            describe(error)
            Log.write(")\n")
            finish(.badCommandLine)
        }

        if let named = commandLine.service, !service.isNamed(named) {
            Log.timestamp()
            Log.write("boot: this image runs the service '")
            Log.write(service.name)
            Log.write("', not '")
            Log.write(named)
            Log.write("' (build that one with ./toro build --service NAME)\n")
            finish(.badCommandLine)
        }
        let usable = setUpMemory(platform.cpu, windows: platform.devices.mmioWindows, boot: boot, image: image)
        MemoryBudget.isEnforced = true
        Log.milestone("boot: memory ready")
        let cpus = platform.interrupts.startCPUs()
        platform.interrupts.logBootDetails()
        Log.timestamp()
        Log.write("boot: ")
        Log.decimal(cpus)
        Log.write(cpus == 1 ? " CPU running\n" : " CPUs running\n")

        platform.devices.startDevices(commandLine: commandLine, ram: boot.memoryMap.ramRanges, wanted: service.devices)

        Log.timestamp()
        Log.write("boot: starting service ")
        Log.write(service.name)
        Log.put(10)
        let context = ServiceContext(platformName: platform.name, devices: platform.devices,
                                     interrupts: platform.interrupts, commandLine: commandLine, memoryMap: boot.memoryMap,
                                     usableRanges: usable, kernelImage: image.range, name: service.name)
        // The service runs as a thread on CPU 0; this boot context becomes CPU 0's idle loop.
        let started = Scheduler.spawn(on: 0) {
            let status = service.run(context)
            finish(status)
        }
        if started == nil { panic("no memory for the service's thread") }
        Scheduler.runIdleLoop()
    }

    /// Run by `finish` before the exit report, in the order registered: a mounted disk's
    /// final sync and its cache statistics. A device's attach function adds one once the
    /// device is in use.
    nonisolated(unsafe) public static var beforeExit: [() -> Void] = []

    /// Runs `beforeExit`, logs the exit status and leaves the VM.
    public static func finish(_ status: ExitStatus) -> Never {
        let hooks = beforeExit
        beforeExit = []
        for hook in hooks { hook() }
        logHeapStatistics()
        MemoryBudget.logRefusals()
        Log.timestamp()
        Log.write("exit: ")
        Log.decimal(UInt64(status.rawValue))
        Log.put(10)
        guard let cpu else { while true {} }
        cpu.exit(status)
    }

    /// Builds page tables for all RAM and the platform's MMIO, switches to them, then
    /// gives every usable page to the page-frame allocator. Returns the usable ranges.
    static func setUpMemory(_ cpu: any CPUControl, windows: [PhysicalRange], boot: BootInfo, image: KernelImage) -> [PhysicalRange] {
        let ram = boot.memoryMap.ramRanges
        guard !ram.isEmpty else { panic("the memory map has no RAM") }
        // Page 0 stays unused and unmapped (null pointer dereferences fault).
        var inUse = boot.loaderRanges
        inUse.append(image.range)
        inUse.append(PhysicalRange(start: 0, end: 4096))
        let usable = boot.memoryMap.usableRanges(excluding: inUse)

        // First the parts the trampoline already maps, so the tables can be built there.
        for range in usable where range.start < bootMappedLimit {
            KernelMemory.addFree(PhysicalRange(start: range.start, end: min(range.end, bootMappedLimit)))
        }
        var mappings = ram.map { IdentityMapping(range: $0, uncached: false) }
        mappings.append(IdentityMapping(range: image.range, uncached: false))
        for window in windows { mappings.append(IdentityMapping(range: window, uncached: true)) }
        do {
            var tables = try PageTables(allocatePage: {
                guard let page = KernelMemory.allocatePages(1, below: bootMappedLimit) else { return nil }
                UnsafeMutableRawPointer(bitPattern: UInt(page))!.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
                return page
            })
            try tables.map(mappings)
            cpu.loadPageTables(root: tables.root)
            KernelPageTables.install(tables)
            Log.timestamp()
            Log.write("boot: page tables map ")
            Log.decimal(UInt64(mappings.count))
            Log.write(" ranges in ")
            Log.decimal(UInt64(tables.pageCount))
            Log.write(" pages\n")
        } catch {
            panic("not enough memory for the page tables")
        }
        for range in usable where range.end > bootMappedLimit {
            KernelMemory.addFree(PhysicalRange(start: max(range.start, bootMappedLimit), end: range.end))
        }
        return usable
    }

    /// `heap: in use B bytes in N allocations, free F bytes, peak P bytes, P pages`.
    public static func logHeapStatistics() {
        let stats = KernelMemory.statistics()
        logHeap("heap:", stats)
        Log.write(", free ")
        Log.decimal(stats.bytesFree)
        Log.write(" bytes, peak ")
        Log.decimal(stats.peakBytesInUse)
        Log.write(" bytes, ")
        Log.decimal(stats.pagesHeld)
        Log.write(" pages\n")
    }

    /// Starts a timestamped line `<prefix> in use B bytes in N allocations` (no newline):
    /// the figures every heap report shares, and the ones the boot tests compare.
    public static func logHeap(_ prefix: StaticString, _ stats: HeapStatistics) {
        Log.timestamp()
        Log.write(prefix)
        Log.write(" in use ")
        Log.decimal(stats.bytesInUse)
        Log.write(" bytes in ")
        Log.decimal(stats.liveAllocations)
        Log.write(" allocations")
    }

    static func describe(_ error: CommandLineError) {
        switch error {
        case .invalidByte(let offset): Log.write("invalid byte at offset "); Log.decimal(offset)
        case .emptyKey(let offset): Log.write("value without a key at offset "); Log.decimal(offset)
        case .duplicateService: Log.write("service= given twice")
        case .emptyService: Log.write("empty service name")
        }
    }
}
