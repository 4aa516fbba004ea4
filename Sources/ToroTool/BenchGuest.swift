// Boots a service for a benchmark (kv, web) or the soak: this same tool as a child
// (`toro run --platform P --service S [--share DIR | --disk IMAGE] -p PORT:80 --accel tcg
// -- ARGS`), waiting for its `ready:` line; stopped with SIGTERM by the caller (its handler
// stops QEMU and the back-ends). On microvm the port is toro-vsock's; on legacy it is a
// hostfwd of QEMU's user networking to virtio-net and Toro's TCP/IP, behind the front
// `toro run` puts on the port (LegacyFront.swift).

#if canImport(Glibc)
import Glibc
#endif
import Foundation

enum BenchGuest {
    /// Builds the platform's kernel and the back-ends the run needs (the child then builds
    /// nothing), starts it, and waits up to 600 s for `ready: <service>`. `share` is a
    /// folder for microvm's virtio-fs, `disk` an image for legacy's virtio-blk.
    static func start(service: String, platform: GuestPlatform = .microvm, share: String? = nil, disk: String? = nil,
                      kernelArguments: [String] = [], paths: Paths) throws(ToolFailure) -> BackgroundProcess {
        try KernelBuilder(paths: paths).build(platform, service: service)
        if platform == .microvm {
            _ = try VsockBackend.executable(paths: paths)
            if share != nil { _ = try FSBackend.executable(paths: paths) }
        }
        guard let port = KVClient.freePort() else { throw ToolFailure(.qemuFailed, "no free TCP port on 127.0.0.1") }
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var command = [binary, "run", "--platform", platform.rawValue, "--service", service]
        if let share { command += ["--share", share] }
        if let disk { command += ["--disk", disk] }
        command += ["-p", "\(port):80", "--accel", "tcg", "--timeout", "\(RunOptions.maxTimeout)"]
        if !kernelArguments.isEmpty { command += ["--"] + kernelArguments }
        Console.progress("starting toro " + command.dropFirst().joined(separator: " ") + "…")
        let guest = try BackgroundProcess(command, environment: ["TORO_ROOT": paths.root, "TORO_NO_BUILD": "1"],
                                          echoErrors: true)
        guest.port = port
        guard guest.waitForLine(timeout: 600, where: { $0 == "ready: \(service)" }) != nil else {
            let tail = guest.outputLines.suffix(20).joined(separator: "\n")
            _ = guest.stop()
            throw ToolFailure(.qemuFailed, "\(service) on \(platform.rawValue) did not print 'ready: \(service)' (\(guest.termination.map { "\($0)" } ?? "timeout"))"
                              + (tail.isEmpty ? "" : "; its console ended with:\n" + tail))
        }
        return guest
    }
}
