// A service: the one application (or kernel probe) an image runs.
//
// A service is its own module under Sources/Services/Applications/<name> or
// Sources/Services/Probes/<name>; it imports Core (and Wire, and the libraries beside it)
// and nothing of a platform. Its one Swift file defines the image's service:
//
//     @_silgen_name("toro_service")
//     public func service() -> Service {
//         Service(name: "greeter", summary: "says hello", devices: []) { context in
//             context.ready()
//             Log.write("hello\n")
//             return .success
//         }
//     }
//
// `toro_service` is the symbol the platform's entry code calls (PC/ImageService.swift); an
// image links one platform with exactly one service module, so the name is defined once.
// `./toro services` reads `name:`, `summary:` and `devices:` from that file, and the kernel
// reads the same values from the `Service` it returns: one list, kept in one place.
//
// Rules for services: print `ready: <name>` (through `context.ready()`) when serving
// starts, print results as plain lines (no timestamps: those mark kernel log lines, which
// the cross-platform comparison ignores), and return an `ExitStatus`. The API a service may
// use is the kernel's public one: threads (`Scheduler.spawn`, `Scheduler.sleep`, `yield`),
// the clock (`Clock`), sockets and files (`context.sockets`, `context.fileSystem`), the log
// (`Log`), the memory budget (`MemoryBudget`) and the exit status it returns.

/// The kinds of device a service uses. An image links a device's driver only when its
/// service names that kind here, and the kernel starts only those drivers.
public struct ServiceDevices: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Stream sockets (`context.sockets`): virtio-vsock on microvm.
    public static let sockets = ServiceDevices(rawValue: 1 << 0)
    /// The shared folder (`context.fileSystem`): virtio-fs on microvm.
    public static let files = ServiceDevices(rawValue: 1 << 1)
}

public struct ServiceContext {
    /// The platform's name as services print it: "microvm" or "legacy".
    public let platformName: StaticString
    let devices: any DeviceSet
    let interrupts: any InterruptController
    public let commandLine: KernelCommandLine
    public let memoryMap: MemoryMap
    /// The ranges handed to the page-frame allocator at boot.
    public let usableRanges: [PhysicalRange]
    /// The loaded kernel image (.bss, and so the early heap, included).
    public let kernelImage: PhysicalRange
    public let name: StaticString

    /// The CPUs running.
    public var cpuCount: Int { Scheduler.cpuCount }
    /// Stream sockets, when the service declared `.sockets` and the platform has a device.
    public var sockets: (any SocketProvider)? { devices.sockets }
    /// The shared folder, when the service declared `.files` and one was attached.
    public var fileSystem: (any FileSystem)? { devices.fileSystem }

    /// Sends this CPU an interrupt on a vector with no handler: the kernel must log it,
    /// acknowledge it and carry on (the `irqtest` probe).
    public func raiseUnhandledInterrupt() { interrupts.raiseUnhandledInterrupt() }

    public func ready() {
        Log.write("ready: ")
        Log.write(name)
        Log.put(10)
    }
}

public struct Service: Sendable {
    public let name: StaticString
    public let summary: StaticString
    public let devices: ServiceDevices
    public let run: @Sendable (ServiceContext) -> ExitStatus

    public init(name: StaticString, summary: StaticString, devices: ServiceDevices = [],
                run: @escaping @Sendable (ServiceContext) -> ExitStatus) {
        self.name = name
        self.summary = summary
        self.devices = devices
        self.run = run
    }

    /// Whether `text` (the kernel command line's `service=`) names this service.
    public func isNamed(_ text: String) -> Bool {
        name.withUTF8Buffer { Array($0) } == Array(text.utf8)
    }
}
