// Installs the host tools a command needs, from Debian's packages, the first time.
//
// The one list of what toro needs from the host lives here. When a tool is missing and
// toro runs as root, it runs `apt-get update` and `apt-get install -y <packages>` with
// progress shown; otherwise it prints the exact command and fails with status 69.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

public struct HostTool: Sendable, Equatable {
    /// The executable looked up on PATH.
    public var command: String
    /// The Debian package that provides it.
    public var package: String
}

public enum Installer {
    public static let qemu = HostTool(command: "qemu-system-x86_64", package: "qemu-system-x86")
    public static let curl = HostTool(command: "curl", package: "curl")
    public static let socat = HostTool(command: "socat", package: "socat")
    public static let mke2fs = HostTool(command: "mke2fs", package: "e2fsprogs")
    public static let e2fsck = HostTool(command: "e2fsck", package: "e2fsprogs")
    public static let debugfs = HostTool(command: "debugfs", package: "e2fsprogs")
    /// Network namespaces and tap devices for legacy's network boot tests.
    public static let ip = HostTool(command: "ip", package: "iproute2")
    /// A real Linux peer's ICMP echo, against legacy's IPv4 (LegacyNetBootTests).
    public static let ping = HostTool(command: "ping", package: "iputils-ping")
    /// What an ext2 image of a shared folder needs (DiskImage.swift): build, check, extract.
    public static let e2fsprogs: [HostTool] = [mke2fs, e2fsck, debugfs]

    /// What booting a kernel needs.
    public static let forBooting: [HostTool] = [qemu]
    /// What booting with `options` needs: QEMU, and e2fsprogs for a shared folder on legacy.
    public static func forBooting(_ options: RunOptions) -> [HostTool] {
        forBooting + (options.platform == .legacy && !options.shares.isEmpty ? e2fsprogs : [])
    }
    /// What `toro test` needs besides: the boot tests fetch static-web's files with curl and
    /// ping legacy's IPv4 from a network namespace (ip, ping), and the host tests build and
    /// check ext2 images.
    public static let forTesting: [HostTool] = [qemu, curl, ip, ping] + e2fsprogs

    /// The full path of `command` on PATH, or else in /usr/sbin or /sbin (where Debian puts
    /// e2fsprogs, off a normal user's PATH), or nil.
    public static func which(_ command: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin") + ":/usr/sbin:/sbin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(command)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// The apt-get command that installs `tools`, as a user would type it.
    public static func installCommand(for tools: [HostTool], sudo: Bool) -> String {
        let prefix = sudo ? "sudo " : ""
        let packages = packageList(tools).joined(separator: " ")
        return "\(prefix)apt-get update && \(prefix)DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \(packages)"
    }

    /// The packages that provide `tools`, each once, in order.
    static func packageList(_ tools: [HostTool]) -> [String] {
        var seen = Set<String>()
        return tools.map(\.package).filter { seen.insert($0).inserted }
    }

    /// Makes sure every tool in `tools` is on PATH, installing what is missing when root.
    public static func ensure(_ tools: [HostTool]) throws(ToolFailure) {
        let missing = tools.filter { which($0.command) == nil }
        guard !missing.isEmpty else { return }
        let names = missing.map(\.command).joined(separator: ", ")
        guard geteuid() == 0 else {
            throw ToolFailure(.missingTool,
                              "\(names) missing; install with: \(installCommand(for: missing, sudo: true))")
        }
        guard which("apt-get") != nil else {
            throw ToolFailure(.missingTool,
                              "\(names) missing and apt-get is not available; install the package(s) \(packageList(missing).joined(separator: " ")) by hand")
        }
        Console.progress("\(names) missing: installing \(packageList(missing).joined(separator: " ")) from Debian's packages")
        let steps: [[String]] = [
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "--no-install-recommends"] + packageList(missing),
        ]
        for step in steps {
            Console.progress(step.joined(separator: " "))
            var process = Subprocess(step)
            process.environment = ["DEBIAN_FRONTEND": "noninteractive"]
            process.echoOutput = 2
            process.mergeStderr = true
            let result = process.run()
            guard result.exitCode == 0 else {
                throw ToolFailure(.missingTool, "'\(step.joined(separator: " "))' failed; run it by hand to see why")
            }
        }
        let stillMissing = missing.filter { which($0.command) == nil }
        guard stillMissing.isEmpty else {
            throw ToolFailure(.missingTool,
                              "\(stillMissing.map(\.command).joined(separator: ", ")) still missing after installing")
        }
    }
}
