// The options of `toro run` (and of `compare`, which shares them), parsed and validated.
//
// Validation happens before anything is built or started: each error is one line and
// status 64. Well-formed options the platform cannot honour are refused on purpose rather
// than ignored, which would let a user believe a port or a folder is there. One `--share
// DIR[:ro]` is served on microvm by toro-fs over virtio-fs, on legacy as an ext2 image on
// virtio-blk written back into DIR after the guest exits (DiskImage.swift); a second is
// refused. `--disk IMAGE` (legacy only, not with --share, an existing file) attaches the
// user's own image as it is.
//
// Sockets: a run gets its platform's socket device (`wantsNetwork`) when it forwards a
// port (`-p H:G`, many allowed, each host port once), when the service declares the
// `sockets` device (hostping connects out without any `-p`), or, on legacy, with
// `--net-socket PATH`. microvm: toro-vsock, which listens on 127.0.0.1:H for each `-p`;
// legacy: a virtio-net NIC on QEMU's user networking, each `-p` a hostfwd behind toro's
// own front on 127.0.0.1:H (QEMUCommand.swift, LegacyFront.swift), or with `--net-socket PATH` on an existing Unix stream socket
// instead (a link of a test's own, so no `-p`).
//
#if canImport(Glibc)
import Glibc
#endif

public enum AccelChoice: String, Sendable, CaseIterable {
    case auto, tcg, kvm
}

public struct PortForward: Equatable, Sendable {
    public var host: Int
    public var guest: Int
    public init(host: Int, guest: Int) { self.host = host; self.guest = guest }
}

public struct SharedFolder: Equatable, Sendable {
    public var path: String
    public var readOnly: Bool
}

public struct RunOptions: Equatable, Sendable {
    public var platform: GuestPlatform = .microvm
    public var service = "hello"
    public var cpus = 1
    public var memoryMiB = 64
    public var shares: [SharedFolder] = []
    /// `--disk IMAGE`: an existing disk image attached read-write as it is (legacy).
    public var disk: String? = nil
    public var ports: [PortForward] = []
    /// `--net-socket PATH`: the legacy NIC's frames go to this Unix stream socket.
    public var netSocket: String? = nil
    public var accel: AccelChoice = .auto
    public var timeoutSeconds = 60
    public var printCommand = false
    /// Everything after `--`, appended to the kernel command line.
    public var kernelArgs: [String] = []
    /// The flags the user gave (long names), so `compare` knows what overrides a scenario.
    public var given: Set<String> = []

    public init() {}

    /// The kernel runs at most 16 CPUs (KernelHeap.maxCPUs, Arch's per-CPU blocks).
    public static let maxCPUs = 16
    public static let maxMemoryMiB = 1 << 20
    public static let maxTimeout = 86_400

    /// Whether the guest gets its platform's socket device: a forwarded port, a service
    /// that declares `sockets`, or a NIC socket (legacy). One rule for both platforms.
    public var wantsNetwork: Bool {
        !ports.isEmpty || netSocket != nil || (Services.named(service)?.devices.contains("sockets") ?? false)
    }

    /// The longest path a Unix socket address holds (`sun_path`, with its final NUL).
    static let maxSocketPath = 107

    /// The kernel command line: `service=<name>` first, then the user's arguments.
    public var kernelCommandLine: String {
        (["service=\(service)"] + kernelArgs).joined(separator: " ")
    }

    /// Parses `run` arguments (or `compare`'s, which adds `--expect` and has no
    /// `--platform`/`--print-command`). `workingDirectory` resolves relative paths.
    public static func parse(_ arguments: [String], command: String = "run",
                             workingDirectory: String = ".") throws(ToolFailure) -> (RunOptions, expect: String?) {
        var options = RunOptions()
        var expect: String? = nil
        var reader = ArgumentReader(arguments)
        let isCompare = command == "compare"
        while let flag = try reader.nextFlag() {
            switch flag {
            case "--platform" where !isCompare:
                let name = try reader.value(for: flag)
                guard let platform = GuestPlatform(rawValue: name) else {
                    throw ToolFailure(.badArgument, "unknown platform '\(name)' (choose \(GuestPlatform.names))")
                }
                options.platform = platform
            case "--service":
                let name = try reader.value(for: flag)
                guard Services.named(name) != nil else {
                    throw ToolFailure(.badArgument,
                                      "unknown service '\(name)' (known: \(Services.all.map(\.name).joined(separator: ", ")); see ./toro services)")
                }
                options.service = name
            case "--cpus":
                let value = try reader.value(for: flag)
                options.cpus = try ArgumentReader.number(value, flag: flag, range: 0...Int.max, what: "a number of CPUs")
                guard options.cpus >= 1 else { throw ToolFailure(.badArgument, "--cpus must be at least 1, got \(value)") }
                guard options.cpus <= maxCPUs else {
                    throw ToolFailure(.badArgument, "--cpus \(value): the kernel supports at most \(maxCPUs) CPUs")
                }
            case "--memory":
                options.memoryMiB = try ArgumentReader.number(try reader.value(for: flag), flag: flag,
                                                              range: 1...maxMemoryMiB, what: "a size in MiB")
            case "--timeout":
                options.timeoutSeconds = try ArgumentReader.number(try reader.value(for: flag), flag: flag,
                                                                   range: 1...maxTimeout, what: "a number of seconds")
            case "--accel":
                let name = try reader.value(for: flag)
                guard let accel = AccelChoice(rawValue: name) else {
                    throw ToolFailure(.badArgument, "unknown accelerator '\(name)' (choose auto, tcg, kvm)")
                }
                options.accel = accel
            case "-p", "--publish":
                options.ports.append(try parsePort(try reader.value(for: flag)))
            case "--share":
                options.shares.append(try parseShare(try reader.value(for: flag), workingDirectory: workingDirectory))
            case "--disk" where !isCompare:
                let path = try reader.value(for: flag)
                if options.disk != nil {
                    throw ToolFailure(.badArgument, "--disk given twice: the guest has one disk")
                }
                options.disk = try parseDisk(path, workingDirectory: workingDirectory)
            case "--disk":
                throw ToolFailure(.badArgument, "--disk does not apply to compare: microvm has no block device (use --share DIR)")
            case "--net-socket" where !isCompare:
                let path = try reader.value(for: flag)
                if options.netSocket != nil {
                    throw ToolFailure(.badArgument, "--net-socket given twice: the guest has one NIC")
                }
                options.netSocket = try parseNetSocket(path, workingDirectory: workingDirectory)
            case "--net-socket":
                throw ToolFailure(.badArgument, "--net-socket does not apply to compare: microvm has no NIC (use -p HOSTPORT:GUESTPORT)")
            case "--print-command" where !isCompare:
                try reader.noValue(for: flag)
                options.printCommand = true
            case "--expect" where isCompare:
                expect = absolutePath(try reader.value(for: flag), from: workingDirectory)
            case "--platform", "--print-command":
                throw ToolFailure(.badArgument, "\(flag) does not apply to compare, which boots both platforms")
            default:
                throw ArgumentReader.unknown(flag, command: command)
            }
            options.given.insert(flag == "-p" ? "--publish" : flag)
        }
        options.kernelArgs = reader.passthrough
        try options.refuseMissingDevices()
        return (options, expect)
    }

    /// `HOSTPORT:GUESTPORT`, each 1–65535.
    static func parsePort(_ text: String) throws(ToolFailure) -> PortForward {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        func port(_ s: Substring) -> Int? {
            guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let v = Int(s),
                  (1...65535).contains(v) else { return nil }
            return v
        }
        guard parts.count == 2, let host = port(parts[0]), let guest = port(parts[1]) else {
            throw ToolFailure(.badArgument, "-p needs HOSTPORT:GUESTPORT with ports 1-65535, got '\(text)'")
        }
        return PortForward(host: host, guest: guest)
    }

    /// `DIR` or `DIR:ro`; DIR must be an existing folder.
    static func parseShare(_ text: String, workingDirectory: String) throws(ToolFailure) -> SharedFolder {
        var path = text
        var readOnly = false
        if text.hasSuffix(":ro") { path = String(text.dropLast(3)); readOnly = true }
        guard !path.isEmpty else { throw ToolFailure(.badArgument, "--share needs DIR[:ro], got '\(text)'") }
        let absolute = absolutePath(path, from: workingDirectory)
        var info = stat()
        guard stat(absolute, &info) == 0 else {
            throw ToolFailure(.badArgument, "--share: no such folder '\(path)'")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw ToolFailure(.badArgument, "--share: '\(path)' is not a folder")
        }
        return SharedFolder(path: absolute, readOnly: readOnly)
    }

    /// `--disk IMAGE`: IMAGE must be an existing regular file (or block device).
    static func parseDisk(_ text: String, workingDirectory: String) throws(ToolFailure) -> String {
        let absolute = absolutePath(text, from: workingDirectory)
        var info = stat()
        guard stat(absolute, &info) == 0 else {
            throw ToolFailure(.badArgument, "--disk: no such file '\(text)' (make an ext2 image with mke2fs -t ext2 FILE SIZE)")
        }
        let kind = info.st_mode & S_IFMT
        guard kind == S_IFREG || kind == S_IFBLK else {
            throw ToolFailure(.badArgument, "--disk: '\(text)' is not a disk image file")
        }
        return absolute
    }

    /// `--net-socket PATH`: PATH must be an existing Unix socket (QEMU connects to it at
    /// start and, in 7.2, does not say when nothing listens there).
    static func parseNetSocket(_ text: String, workingDirectory: String) throws(ToolFailure) -> String {
        let absolute = absolutePath(text, from: workingDirectory)
        var info = stat()
        guard stat(absolute, &info) == 0 else {
            throw ToolFailure(.badArgument, "--net-socket: no such socket '\(text)' (start the program that listens on it first)")
        }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw ToolFailure(.badArgument, "--net-socket: '\(text)' is not a Unix socket")
        }
        guard absolute.utf8.count <= maxSocketPath else {
            throw ToolFailure(.badArgument, "--net-socket: the path '\(absolute)' is longer than a Unix socket address allows (\(maxSocketPath) bytes)")
        }
        return absolute
    }

    /// Refuses well-formed options whose devices the platform does not have, and
    /// combinations that cannot both hold.
    func refuseMissingDevices() throws(ToolFailure) {
        var hostPorts: Set<Int> = []
        for port in ports where !hostPorts.insert(port.host).inserted {
            throw ToolFailure(.badArgument, "-p: host port \(port.host) is forwarded twice (each host port forwards to one guest port)")
        }
        if let netSocket, platform == .microvm {
            throw ToolFailure(.badArgument,
                              "--net-socket \(netSocket) needs virtio-net, which only legacy has (add --platform legacy)")
        }
        if let netSocket, let port = ports.first {
            throw ToolFailure(.badArgument,
                              "-p \(port.host):\(port.guest) and --net-socket \(netSocket) both give the NIC its network: "
                              + "-p forwards through QEMU's user networking, --net-socket puts the guest on your link instead; choose one")
        }
        if let disk, platform == .microvm {
            throw ToolFailure(.badArgument,
                              "--disk \(disk) needs virtio-blk, which only legacy has (add --platform legacy)")
        }
        if let disk, let share = shares.first {
            throw ToolFailure(.badArgument,
                              "--disk \(disk) and --share \(share.path) both give the guest its disk: choose one")
        }
        if shares.count > 1 {
            throw ToolFailure(.badArgument,
                              "--share given \(shares.count) times: the guest mounts one shared folder (\(shares[0].path))")
        }
    }

    /// Refuses a memory size below what the kernel image needs (see `ELFImage`).
    public func checkMemory(minimumMiB: Int) throws(ToolFailure) {
        if memoryMiB < minimumMiB {
            throw ToolFailure(.badArgument,
                              "--memory \(memoryMiB): too little memory for the kernel (at least \(minimumMiB) MiB)")
        }
    }
}

/// `path` made absolute against `directory` (which is itself absolute or ".").
func absolutePath(_ path: String, from directory: String) -> String {
    path.hasPrefix("/") ? path : (directory == "." ? path : directory + "/" + path)
}
