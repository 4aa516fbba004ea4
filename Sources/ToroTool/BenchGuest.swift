// Boots a service for a benchmark or the soak: this same tool as a child
// (`toro run --service S [--share DIR] -p PORT:80 --accel tcg -- ARGS`), waiting for its
// `ready:` line; stopped with SIGTERM by the caller (its handler stops QEMU and the
// back-ends).

#if canImport(Glibc)
import Glibc
#endif
import Foundation

enum BenchGuest {
    static func start(service: String, share: String? = nil, kernelArguments: [String] = [],
                      paths: Paths) throws(ToolFailure) -> BackgroundProcess {
        guard let port = KVClient.freePort() else { throw ToolFailure(.qemuFailed, "no free TCP port on 127.0.0.1") }
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var command = [binary, "run", "--service", service]
        if let share { command += ["--share", share] }
        command += ["-p", "\(port):80", "--accel", "tcg", "--timeout", "\(RunOptions.maxTimeout)"]
        if !kernelArguments.isEmpty { command += ["--"] + kernelArguments }
        Console.progress("starting toro " + command.dropFirst().joined(separator: " ") + "…")
        var environment = ["TORO_ROOT": paths.root]
        if KernelBuilder.skipBuild { environment["TORO_NO_BUILD"] = "1" }
        let guest = try BackgroundProcess(command, environment: environment, echoErrors: true)
        guest.port = port
        guard guest.waitForLine(timeout: 600, where: { $0 == "ready: \(service)" }) != nil else {
            let tail = guest.outputLines.suffix(20).joined(separator: "\n")
            _ = guest.stop()
            throw ToolFailure(.qemuFailed, "\(service) did not print 'ready: \(service)' (\(guest.termination.map { "\($0)" } ?? "timeout"))"
                              + (tail.isEmpty ? "" : "; its console ended with:\n" + tail))
        }
        return guest
    }
}
