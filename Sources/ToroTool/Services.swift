// The services (applications) the kernel can run, as `toro services` lists them and as
// `--service` validates them. The kernel keeps its own list (Sources/Core/Services);
// keep the two in step when a service is added.

public struct ServiceInfo: Sendable, Equatable {
    public var name: String
    public var summary: String
}

public enum Services {
    public static let all: [ServiceInfo] = [
        ServiceInfo(name: "hello", summary: "prints a greeting with the platform, CPU count and memory size, then exits 0"),
        ServiceInfo(name: "fault", summary: "touches an unmapped address: the kernel reports the page fault and exits 3"),
        ServiceInfo(name: "memtest", summary: "allocates all memory and proves every RAM range is used, then exits 0"),
        ServiceInfo(name: "intercore", summary: "CPU 0 sends ping to every CPU through the mailboxes; each answers pong"),
        ServiceInfo(name: "threads", summary: "threads on every CPU yield and sleep in a deterministic pattern"),
        ServiceInfo(name: "clock", summary: "prints the wall-clock date and measures sleep(100 ms) five times"),
        ServiceInfo(name: "threadstress", summary: "creates and finishes 100,000 threads across all CPUs; heap returns to baseline"),
        ServiceInfo(name: "kv", summary: "key-value server on port 80 (SET, GET, DEL, SAVE, QUIT); microvm with -p HOSTPORT:80, kv.db with --share DIR"),
        ServiceInfo(name: "hostping", summary: "connects out to the host over vsock (CID 2, -- port=N) and prints its answer"),
        ServiceInfo(name: "stackoverflow", summary: "a thread recurses forever: its guard page faults, the report names it, exit 3"),
        ServiceInfo(name: "static-web", summary: "serves the shared folder over HTTP/1.1; microvm with --share DIR -p HOSTPORT:80"),
        ServiceInfo(name: "fs-manifest", summary: "prints each file of the shared folder (--share DIR) with its size and CRC-32, sorted, then exits 0"),
        ServiceInfo(name: "irqtest", summary: "raises an interrupt nobody handles: the kernel logs it, acknowledges it, carries on"),
    ]

    public static func named(_ name: String) -> ServiceInfo? { all.first { $0.name == name } }

    /// One line per service: the name, padded, and its description.
    public static func listing() -> String {
        let width = all.map(\.name.count).max() ?? 0
        return all.map { $0.name + String(repeating: " ", count: width + 2 - $0.name.count) + $0.summary }
            .joined(separator: "\n")
    }
}
