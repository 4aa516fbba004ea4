// `toro compare` over the network: each platform's socket device, and the boot that runs
// a Compat client script against it.
//
// Ports: the user's `-p H:G` when given (an ad-hoc run: the forwards are there for as long
// as each platform's guest runs), else, for a scenario with `client:`, one free host port
// per platform forwarded to the scenario's `port:` (80 by default). microvm gets toro-vsock
// with those forwards, legacy QEMU's user networking with hostfwd (QEMUCommand) behind
// toro's own front on each host port (LegacyFront, started in CompareCommand); the rule
// for whether a run gets its socket device at all is `RunOptions.wantsNetwork`, as for `run`.
//
// A boot with a client: QEMU runs in the background, its console collected (bounded like
// `run`'s); once the service prints `ready: <service>` (a forwarded port accepts before the
// guest answers, on slirp as on toro-vsock, so the line is the only sign of readiness) the
// script runs, half a second is left for the service to log what the last connection
// left, and the guest, a server that would run for ever, is stopped. Its transcript then
// ends `exit status: stopped after the client` instead of a status. A guest that exits,
// panics or times out before then keeps its own status, and the script is reported as not
// run. The replies are compared in `CompareCommand.compare`.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

public enum CompareNetwork {
    /// What one platform's boot with a client gave.
    public struct Run: Sendable {
        /// The guest's console (lines joined with "\n").
        public var output: String
        /// toro's status for the run; nil when compare stopped the guest after the client.
        public var status: ToroStatus?
        /// One line for the user when the run did not go as planned.
        public var message: String?
        public var client: ClientOutcome
    }

    /// The last transcript line of a guest that compare stopped after its client.
    public static let stoppedLine = "exit status: stopped after the client"

    /// The forwards a platform's run gets: the user's, or one free host port for the
    /// client's guest port. Throws when the user's forwards miss the client's port.
    public static func forwards(given: [PortForward], clientPort: Int?) throws(ToolFailure) -> [PortForward] {
        guard let clientPort else { return given }
        if !given.isEmpty {
            guard given.contains(where: { $0.guest == clientPort }) else {
                let list = given.map { "\($0.host):\($0.guest)" }.joined(separator: ", ")
                throw ToolFailure(.badArgument,
                                  "-p \(list): the client script connects to guest port \(clientPort), which no -p forwards (add -p HOSTPORT:\(clientPort))")
            }
            return given
        }
        guard let port = KVClient.freePort() else { throw ToolFailure(.qemuFailed, "no free TCP port on 127.0.0.1") }
        return [PortForward(host: port, guest: clientPort)]
    }

    /// Starts toro-vsock for a microvm run that wants sockets and points `command` at it;
    /// nil when the run wants none or the platform is legacy (its NIC is in the command).
    public static func attachVsock(_ options: RunOptions, to command: inout QEMUCommand,
                                   paths: Paths) throws(ToolFailure) -> HostBackend? {
        guard options.platform == .microvm, options.wantsNetwork else { return nil }
        let backend = try VsockBackend.start(paths: paths, ports: options.ports)
        command.vsockSocket = backend.socketPath
        return backend
    }

    /// Boots `command`, runs `script` against host port `port` once `ready: <service>`
    /// appears, then stops the guest. `timeout` bounds the wait for the ready line.
    public static func boot(_ command: QEMUCommand, service: String, timeout: Int,
                            script: ClientScript, port: Int) -> Run {
        let qemu: BackgroundProcess
        var arguments = command.arguments
        if !arguments[0].contains("/"), let path = Installer.which(arguments[0]) { arguments[0] = path }
        do throws(ToolFailure) {
            qemu = try BackgroundProcess(arguments, captureLimit: Boot.consoleCaptureLimit)
        } catch {
            return Run(output: "", status: .qemuFailed, message: "could not start QEMU: \(error.message)",
                       client: notRun("QEMU did not start", file: script.file))
        }
        let readyLine = "ready: \(service)"
        let ready = qemu.waitForLine(timeout: Double(timeout), where: { $0 == readyLine }) != nil
        var client: ClientOutcome
        var stopped = false
        var timedOut = false
        if ready {
            client = ClientRunner.run(script, port: port)
            usleep(500_000)
            if qemu.termination == nil {
                stopped = true
                qemu.stop()
            }
        } else {
            if qemu.termination == nil {
                timedOut = true
                qemu.stop()
            }
            client = notRun("the service never printed '\(readyLine)'", file: script.file)
        }
        let termination = qemu.wait(timeout: 15) ?? .timedOut
        let output = qemu.outputLines.joined(separator: "\n") + "\n"
        if stopped { return Run(output: output, status: nil, message: nil, client: client) }
        if timedOut {
            return Run(output: output, status: .timeout, message: "timeout after \(timeout) s without '\(readyLine)' (guest killed)",
                       client: client)
        }
        let (status, message) = Boot.interpret(termination, output: output, errors: qemu.errorLines.joined(separator: "\n"),
                                               timeout: timeout)
        return Run(output: output, status: status, message: message, client: client)
    }

    /// The outcome of a script that could not run.
    static func notRun(_ why: String, file: String) -> ClientOutcome {
        var outcome = ClientOutcome()
        outcome.replies = ["not run: \(why)"]
        outcome.mismatches = ["\(file): not run: \(why)"]
        return outcome
    }

    /// The service transcript of a run (`Transcript.normalise`, with the stopped line).
    public static func transcript(_ run: Run) -> [String] {
        var lines = Transcript.normalise(run.output, status: run.status?.rawValue ?? 0)
        if run.status == nil { lines[lines.count - 1] = stoppedLine }
        return lines
    }
}
