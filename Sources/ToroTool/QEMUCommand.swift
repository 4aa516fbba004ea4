// The QEMU command line for booting a Toro kernel, and its shell-quoted form for
// `--print-command`.
//
// microvm: `-M microvm,pic=off,rtc=on|off,acpi=off` keeps the PIT (the kernel calibrates its
// TSC against it) and, under TCG only, the RTC: without a KVM clock it is the kernel's
// only source for the date. acpi=off also makes QEMU put `virtio_mmio.device=` hints on the
// command line. legacy: `-M pc` with `sockets=<cpus>`, because SeaBIOS lists one MP-table
// processor per socket. Both: no default devices, the serial port on stdio, and
// isa-debug-exit at 0xf4 so the guest's status becomes QEMU's exit code.
//
// A legacy disk (`--share` on legacy, or `--disk`) is `-drive if=none,format=raw` (format
// given, so QEMU neither probes the guest-written bytes nor refuses writes to sector 0)
// behind `virtio-blk-pci,disable-legacy=on`: a modern-only virtio-pci function, the one
// transport the kernel's virtio-pci driver speaks. Commas in the path are doubled, QEMU's
// escape inside an option list.
//
// Legacy networking (`LegacyNetwork`) is a `virtio-net-pci,disable-legacy=on` NIC (modern
// only, like the disk) on one of two back-ends: QEMU's user networking (slirp: the guest
// is 10.0.2.15, the host's 127.0.0.1 is the gateway 10.0.2.2, and each `-p H:G` is a
// `hostfwd=tcp:127.0.0.1:H-:G` that listens on the host's loopback only; `run` and
// `compare` then put toro's own front on H and rewrite H to an internal port,
// LegacyFront.swift, while `--print-command` prints the user's H), or a Unix
// stream socket someone else listens on (`-netdev stream`, each frame behind a 4-byte
// big-endian length: the link of a test's own relay).
//
// `-display none` rather than `-nographic`: with -nographic QEMU turns on SeaBIOS's serial
// console, which writes terminal escapes (reset, clear screen, no line wrap) to the
// user's terminal before the kernel starts. Neither platform has a display either way.

public struct QEMUCommand: Equatable, Sendable {
    public var executable = "qemu-system-x86_64"
    public var platform: GuestPlatform
    public var accelerator: Accelerator
    public var memoryMiB: Int
    public var cpus: Int
    public var kernelPath: String
    public var kernelCommandLine: String
    /// The vhost-user socket of the vsock back-end (toro-vsock), when sockets are wanted.
    public var vsockSocket: String? = nil
    /// The vhost-user socket of the virtio-fs back-end (toro-fs), when a folder is shared.
    public var fsSocket: String? = nil
    /// The disk image attached as virtio-blk-pci (legacy only).
    public var disk: DiskAttachment? = nil
    /// The NIC attached as virtio-net-pci and its back-end (legacy only).
    public var network: LegacyNetwork? = nil
    /// The tag the guest's virtio-fs driver mounts (virtio 1.2 §5.11.4, `tag`).
    public static let fsTag = "toro"

    public init(platform: GuestPlatform, accelerator: Accelerator, memoryMiB: Int, cpus: Int,
                kernelPath: String, kernelCommandLine: String) {
        self.platform = platform
        self.accelerator = accelerator
        self.memoryMiB = memoryMiB
        self.cpus = cpus
        self.kernelPath = kernelPath
        self.kernelCommandLine = kernelCommandLine
    }

    /// The command for `options` booting the image at `kernelPath`, with `--disk` attached
    /// (a shared folder's image is the caller's to attach once it is built).
    public init(options: RunOptions, accelerator: Accelerator, kernelPath: String) {
        self.init(platform: options.platform, accelerator: accelerator, memoryMiB: options.memoryMiB,
                  cpus: options.cpus, kernelPath: kernelPath, kernelCommandLine: options.kernelCommandLine)
        if let disk = options.disk { self.disk = DiskAttachment(path: disk, readOnly: false) }
        if options.platform == .legacy { network = LegacyNetwork(options: options) }
    }

    public var arguments: [String] {
        var args = [executable]
        switch platform {
        case .microvm:
            // The RTC only under TCG, where there is no KVM clock to give the date.
            let rtc = accelerator == .kvm ? "off" : "on"
            // With a vhost-user back-end, guest memory must be a shared memfd, or the
            // back-end never sees the guest's writes (DESIGN.md).
            let vhostUser = vsockSocket != nil || fsSocket != nil
            let memory = vhostUser ? ",memory-backend=mem" : ""
            args += ["-M", "microvm,pic=off,rtc=\(rtc),acpi=off\(memory)"] + accelerator.qemuArguments
            args += ["-m", "\(memoryMiB)", "-smp", "\(cpus)"]
            if vhostUser {
                args += ["-object", "memory-backend-memfd,id=mem,size=\(memoryMiB)M,share=on",
                         "-global", "virtio-mmio.force-legacy=false"]
            }
            if let vsockSocket {
                args += ["-chardev", "socket,id=vsock0,path=\(vsockSocket)",
                         "-device", "vhost-user-vsock-device,chardev=vsock0"]   // the CID comes from the back-end (GET_CONFIG)
            }
            if let fsSocket {
                args += ["-chardev", "socket,id=fs0,path=\(fsSocket)",
                         "-device", "vhost-user-fs-device,chardev=fs0,tag=\(Self.fsTag)"]
            }
        case .legacy:
            args += ["-M", "pc"] + accelerator.qemuArguments
            args += ["-m", "\(memoryMiB)", "-smp", "\(cpus),sockets=\(cpus)"]
            if let disk {
                let file = disk.path.split(separator: ",", omittingEmptySubsequences: false).joined(separator: ",,")
                args += ["-drive", "file=\(file),if=none,id=disk0,format=raw" + (disk.readOnly ? ",readonly=on" : ""),
                         "-device", "virtio-blk-pci,drive=disk0,disable-legacy=on"]
            }
            if let network {
                args += ["-netdev", network.netdev, "-device", "virtio-net-pci,netdev=\(LegacyNetwork.id),disable-legacy=on"]
            }
        }
        args += ["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                 "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                 "-kernel", kernelPath]
        if !kernelCommandLine.isEmpty { args += ["-append", kernelCommandLine] }
        return args
    }

    /// The command as one line a POSIX shell runs unchanged.
    public var shellLine: String { arguments.map(shellQuote).joined(separator: " ") }
}

/// A disk image QEMU attaches as virtio-blk-pci.
public struct DiskAttachment: Equatable, Sendable {
    public var path: String
    public var readOnly: Bool
    public init(path: String, readOnly: Bool) { self.path = path; self.readOnly = readOnly }
}

/// The back-end of a legacy guest's virtio-net NIC.
public enum LegacyNetwork: Equatable, Sendable {
    /// QEMU's user networking, with each forward listening on the host's 127.0.0.1.
    case user(forwards: [PortForward])
    /// A Unix stream socket QEMU connects to (`--net-socket PATH`): length-prefixed frames.
    case stream(path: String)

    /// The netdev's id, which the NIC names.
    public static let id = "net0"

    /// The network `options` ask for on legacy, or nil when the run needs none
    /// (`RunOptions.wantsNetwork`).
    public init?(options: RunOptions) {
        if let path = options.netSocket {
            self = .stream(path: path)
        } else if options.wantsNetwork {
            self = .user(forwards: options.ports)
        } else {
            return nil
        }
    }

    /// The `-netdev` option's value.
    public var netdev: String {
        switch self {
        case .user(let forwards):
            return (["user,id=\(Self.id)"] + forwards.map { "hostfwd=tcp:127.0.0.1:\($0.host)-:\($0.guest)" })
                .joined(separator: ",")
        case .stream(let path):
            let escaped = path.split(separator: ",", omittingEmptySubsequences: false).joined(separator: ",,")
            return "stream,id=\(Self.id),server=off,addr.type=unix,addr.path=\(escaped)"
        }
    }
}

/// `text` quoted for a POSIX shell: bare when it only holds safe characters, otherwise in
/// single quotes with each `'` written as `'\''`.
public func shellQuote(_ text: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=/.,:@%")
    if !text.isEmpty && text.allSatisfy({ safe.contains($0) }) { return text }
    return "'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
}
