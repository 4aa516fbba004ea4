// Boots one kernel under QEMU and turns what happened into a toro status.
//
// The guest's serial console (QEMU's stdout) is captured and, for `toro run`, copied to
// the user's stdout as it arrives; QEMU's own stderr passes through to ours. QEMU runs in
// a process group of its own, killed whole on timeout or when toro is interrupted.

#if canImport(Glibc)
import Glibc
#endif

public struct BootOutcome: Sendable {
    public var status: ToroStatus
    /// The guest's serial console output.
    public var output: String
    /// What QEMU wrote to stderr.
    public var errorOutput: String
    public var seconds: Double
    /// One line for the user when the status is not success.
    public var message: String?
}

public enum Boot {
    /// How much of a guest's console `toro run` keeps to interpret it: 16 MiB.
    public static let consoleCaptureLimit = 16 << 20

    /// Runs `command` until the guest exits or `timeout` seconds pass.
    public static func run(_ command: QEMUCommand, timeout: Int, echo: Bool) -> BootOutcome {
        var process = Subprocess(command.arguments)
        process.echoOutput = echo ? 1 : nil
        process.echoErrors = echo
        process.timeout = Double(timeout)
        // The guest is untrusted: its console is bounded in memory and shown, not obeyed.
        process.captureLimit = Boot.consoleCaptureLimit
        process.sanitizeEcho = echo && isatty(1) == 1
        let result = process.run()
        let (status, message) = interpret(result.termination, output: result.output,
                                          errors: result.errorOutput, timeout: timeout)
        return BootOutcome(status: status, output: result.output, errorOutput: result.errorOutput,
                           seconds: result.seconds, message: message)
    }

    /// The status and reason line for a QEMU run that ended with `termination`.
    public static func interpret(_ termination: Termination, output: String, errors: String,
                                 timeout: Int) -> (ToroStatus, String?) {
        switch termination {
        case .timedOut:
            return (.timeout, "timeout after \(timeout) s (guest killed)")
        case .failedToStart(let why):
            return (.qemuFailed, "could not start QEMU: \(why)")
        case .signaled(let signal):
            return (.qemuFailed, "QEMU was killed by signal \(signal)")
        case .exited(let code):
            let sawExit = ExitMapping.hasExitLine(output)
            if let status = ExitMapping.guestStatus(qemuExitCode: code, sawExitLine: sawExit) {
                return (status, status.reason)
            }
            let complaint = errors.split(separator: "\n").first.map(String.init)
            if code == 0 {
                return (.qemuFailed,
                        "the guest ended without an exit status (QEMU exit code 0: reset, shutdown or triple fault)")
            }
            if let complaint, !complaint.isEmpty {
                return (.qemuFailed, "QEMU failed (exit code \(code)): \(complaint)")
            }
            return (.qemuFailed,
                    "the guest ended without an exit status (QEMU exit code \(code), no 'exit:' line on the console)")
        }
    }
}
