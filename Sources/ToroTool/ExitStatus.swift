// The exit statuses of `toro run` (and `compare`, `test`, `bench`), and how a QEMU exit
// code becomes one.
//
// The guest leaves through isa-debug-exit (iobase 0xf4): writing status s makes QEMU exit
// with code (s << 1) | 1. So code 1 is ambiguous: guest status 0, or QEMU failing on its
// own (a bad option, a missing kernel file). The kernel's last log line `exit: <s>`
// settles it. Code 0 means the guest reset or shut down without reporting a status (a
// triple fault under -no-reboot ends this way).
//
//   status  meaning
//   0       the service succeeded (guest status 0)
//   1       the service reported a failure (guest status 1)
//   2       the kernel rejected its command line, e.g. an unknown service (guest status 2)
//   3       the guest panicked: CPU exception or kernel panic (guest status 3)
//   64      bad argument: one line on stderr, nothing built or started
//   69      a required tool is missing and could not be installed
//   70      the kernel build failed
//   124     timeout (--timeout, default 60 s): QEMU and its process group were killed
//   125     QEMU failed to start, or the guest ended without an exit status

public enum ToroStatus: Int32, Sendable, CaseIterable {
    case success = 0
    case serviceFailed = 1
    case badCommandLine = 2
    case panic = 3
    case badArgument = 64
    case missingTool = 69
    case buildFailed = 70
    case timeout = 124
    case qemuFailed = 125

    /// One line for the user when a run ends with this status (nil for success).
    public var reason: String? {
        switch self {
        case .success: nil
        case .serviceFailed: "the service reported a failure (guest exit status 1)"
        case .badCommandLine: "the kernel rejected its command line (guest exit status 2)"
        case .panic: "the guest panicked: CPU exception or kernel panic (guest exit status 3)"
        case .badArgument: "bad argument"
        case .missingTool: "a required tool is missing"
        case .buildFailed: "the kernel build failed"
        case .timeout: "timeout (guest killed)"
        case .qemuFailed: "QEMU failed, or the guest ended without an exit status"
        }
    }
}

/// An error that ends a command with a status and one line for the user.
public struct ToolFailure: Error, Equatable, Sendable {
    public var status: ToroStatus
    public var message: String
    public init(_ status: ToroStatus, _ message: String) {
        self.status = status
        self.message = message
    }
}

public enum ExitMapping {
    /// The guest's status from QEMU's exit code, or nil when QEMU failed or the guest
    /// left without a status. `sawExitLine` tells whether the console showed the kernel's
    /// `exit:` log line (only needed to tell guest status 0 from QEMU's own failure).
    public static func guestStatus(qemuExitCode code: Int32, sawExitLine: Bool) -> ToroStatus? {
        if code == 1 { return sawExitLine ? .success : nil }
        guard code & 1 == 1 else { return nil }
        switch code >> 1 {
        case 1: return .serviceFailed
        case 2: return .badCommandLine
        case 3: return .panic
        default: return nil
        }
    }

    /// Whether `output` holds the kernel's last log line, `[ timestamp ] exit: <status>`.
    public static func hasExitLine(_ output: String) -> Bool {
        output.consoleLines().contains { line in
            guard let rest = KernelLog.stripTimestamp(Substring(line)) else { return false }
            return rest.hasPrefix("exit: ")
        }
    }
}
