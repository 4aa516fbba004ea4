// Runs a child process: spawns it (optionally in its own process group), streams its
// output live to our own stdout/stderr while capturing it, and enforces a deadline.
// `Subprocess.spawn`, which starts it, is also how BackgroundProcess and the boot tests'
// TimedRun start theirs.
//
// Rules for callers: the child's stdin is /dev/null (QEMU's `-serial stdio` then never
// fights the shell for the terminal, and a backgrounded child never stops on SIGTTIN).
// A child started with `ownGroup` is registered with `ChildRegistry`, so SIGINT/SIGTERM
// of toro kills its whole process group; on timeout the group is killed with SIGKILL.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// How a child process ended.
public enum Termination: Equatable, Sendable {
    /// The child exited with this code.
    case exited(Int32)
    /// A signal ended the child.
    case signaled(Int32)
    /// The deadline passed; the child (and its process group) was killed.
    case timedOut
    /// The child could not be started; the text says why.
    case failedToStart(String)
}

/// What a child produced and how it ended.
public struct ProcessResult: Sendable {
    public var termination: Termination
    /// Everything the child wrote to stdout.
    public var output: String
    /// Everything the child wrote to stderr (empty when `mergeStderr`).
    public var errorOutput: String
    /// Wall time from spawn to exit, in seconds.
    public var seconds: Double

    /// The exit code when the child exited normally.
    public var exitCode: Int32? {
        if case .exited(let code) = termination { return code }
        return nil
    }
}

public struct Subprocess: Sendable {
    public var arguments: [String]
    /// Variables added to (or replacing) toro's own environment.
    public var environment: [String: String] = [:]
    public var directory: String? = nil
    /// Copy the child's stdout (with stderr, when merged) to this file descriptor of ours
    /// as it arrives: 1 for our stdout, 2 for our stderr, nil for nowhere.
    public var echoOutput: Int32? = nil
    /// Copy the child's stderr to ours as it arrives.
    public var echoErrors = false
    /// Send the child's stderr into `output` (interleaved as written).
    public var mergeStderr = false
    /// Start the child in a process group of its own (killed as a whole).
    public var ownGroup = true
    /// Seconds before the child is killed; nil waits forever.
    public var timeout: Double? = nil
    /// Keep at most this many bytes of stdout in `output`: the first half and at least a
    /// quarter of the most recent, with one line saying how much was left out between them. A guest
    /// that prints without end must not exhaust the host tool's memory. nil keeps all.
    public var captureLimit: Int? = nil
    /// Echo stdout with terminal control bytes made visible (`^[` for ESC): the guest's
    /// console is untrusted and must not drive the user's terminal (titles, clipboard,
    /// key remapping). Newline, carriage return, tab and backspace pass.
    public var sanitizeEcho = false

    public init(_ arguments: [String]) { self.arguments = arguments }

    /// Runs the child to completion.
    public func run() -> ProcessResult {
        let start = Date()
        let pid: pid_t, outRead: Int32, errRead: Int32
        do throws(ToolFailure) {
            (pid, outRead, errRead) = try Subprocess.spawn(arguments, environment: environment, directory: directory,
                                                           mergeStderr: mergeStderr, ownGroup: ownGroup,
                                                           defaultSignals: true, searchPath: true)
        } catch {
            return ProcessResult(termination: .failedToStart(error.message), output: "", errorOutput: "", seconds: 0)
        }
        ChildRegistry.add(pid: pid, group: ownGroup)
        defer { ChildRegistry.remove(pid: pid) }

        var capture = BoundedCapture(limit: captureLimit), errors = [UInt8]()
        var open: [(fd: Int32, isOutput: Bool)] = [(outRead, true), (errRead, false)]
        var status: Int32 = 0
        var exited = false, timedOut = false
        var exitTime: Date? = nil
        let deadline = timeout.map { start.addingTimeInterval($0) }
        var buffer = [UInt8](repeating: 0, count: 65536)

        while !open.isEmpty {
            if !exited, waitpid(pid, &status, WNOHANG) == pid { exited = true; exitTime = Date() }
            if let deadline, !exited, Date() >= deadline {
                kill(ownGroup ? -pid : pid, SIGKILL)
                waitpid(pid, &status, 0)
                exited = true; timedOut = true; exitTime = Date()
            }
            // Once the child is gone, drain what is buffered and stop waiting for
            // writers it may have left behind.
            if let exitTime, Date().timeIntervalSince(exitTime) > 1 { break }
            var fds = open.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), exited ? 20 : 50)
            if ready < 0 && errno != EINTR { break }
            if ready <= 0 { if exited { break } else { continue } }
            var closed: [Int32] = []
            for (index, entry) in fds.enumerated() where entry.revents != 0 {
                let count = read(entry.fd, &buffer, buffer.count)
                if count <= 0 {
                    if count < 0 && errno == EINTR { continue }
                    closed.append(entry.fd); continue
                }
                let chunk = buffer[0..<count]
                if open[index].isOutput {
                    capture.append(chunk)
                    if let echoOutput { writeAll(echoOutput, sanitizeEcho ? Subprocess.visible(chunk)[...] : chunk) }
                } else {
                    errors.append(contentsOf: chunk)
                    if echoErrors { writeAll(2, chunk) }
                }
            }
            for fd in closed { close(fd) }
            open.removeAll { closed.contains($0.fd) }
        }
        for entry in open { close(entry.fd) }
        if !exited {
            if let deadline {
                let remaining = deadline.timeIntervalSinceNow
                if remaining <= 0 || !waitWithDeadline(pid: pid, status: &status, seconds: remaining) {
                    kill(ownGroup ? -pid : pid, SIGKILL)
                    waitpid(pid, &status, 0)
                    timedOut = true
                }
            } else {
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            }
            exitTime = Date()
        }
        if ownGroup { kill(-pid, SIGKILL) }   // nothing of the group outlives its leader

        let termination: Termination
        if timedOut {
            termination = .timedOut
        } else if status & 0x7f == 0 {
            termination = .exited((status >> 8) & 0xff)
        } else {
            termination = .signaled(status & 0x7f)
        }
        return ProcessResult(termination: termination,
                             output: String(decoding: capture.bytes, as: UTF8.self),
                             errorOutput: String(decoding: errors, as: UTF8.self),
                             seconds: (exitTime ?? Date()).timeIntervalSince(start))
    }
}

/// A child's stdout as kept: all of it, or (with a limit) its first half-limit bytes and
/// between a quarter and a half limit of its most recent bytes.
struct BoundedCapture {
    let limit: Int?
    private var head: [UInt8] = []
    private var tail: [UInt8] = []
    private(set) var dropped = 0

    init(limit: Int?) { self.limit = limit.map { max($0, 2) } }

    mutating func append(_ chunk: ArraySlice<UInt8>) {
        guard let limit else { head.append(contentsOf: chunk); return }
        let half = limit / 2
        var rest = chunk
        if head.count < half {
            let take = min(half - head.count, rest.count)
            head.append(contentsOf: rest.prefix(take))
            rest = rest.dropFirst(take)
        }
        tail.append(contentsOf: rest)
        // Past half the limit, trim to a quarter: large steps, so a long stream costs
        // amortised O(1) per byte, and head + tail never exceed the limit.
        if tail.count > half {
            let excess = tail.count - half / 2
            tail.removeFirst(excess)
            dropped += excess
        }
    }

    var bytes: [UInt8] {
        guard dropped > 0 || !tail.isEmpty else { return head }
        if dropped == 0 { return head + tail }
        return head + Array("\n[toro: \(dropped) bytes of console output not kept]\n".utf8) + tail
    }
}

extension Subprocess {
    /// `bytes` with terminal control bytes (C0 other than \n, \r, \t, backspace; DEL)
    /// written as `^X`, so they show instead of acting.
    public static func visible(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        guard bytes.contains(where: { ($0 < 0x20 && $0 != 10 && $0 != 13 && $0 != 9 && $0 != 8) || $0 == 0x7f }) else {
            return Array(bytes)
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        for byte in bytes {
            if (byte < 0x20 && byte != 10 && byte != 13 && byte != 9 && byte != 8) || byte == 0x7f {
                out.append(0x5e)                              // ^
                out.append(byte == 0x7f ? 0x3f : byte + 0x40) // ^? for DEL, ^[ for ESC
            } else {
                out.append(byte)
            }
        }
        return out
    }

    /// Starts `arguments` with stdin on /dev/null and stdout and stderr on pipes of their
    /// own (stderr into the stdout pipe when `mergeStderr`; the stderr pipe then only ever
    /// reports end-of-file). Returns the child's pid and our read ends of the two pipes,
    /// which the caller reads, closes, and reaps the pid. The pipe ends are close-on-exec,
    /// so that a child spawned by another thread at the same moment does not inherit them
    /// and keep our reader from seeing end-of-file.
    ///
    /// `environment` is added to (or replaces) toro's own; `directory` is the child's
    /// working directory. `ownGroup` starts the child in a process group of its own.
    /// `defaultSignals` gives it the default handling of SIGINT, SIGTERM, SIGPIPE and SIGHUP
    /// and an empty signal mask, whatever ours are (otherwise it inherits our ignored
    /// signals and mask). `searchPath` looks a command without a slash up in PATH
    /// (posix_spawnp); otherwise it is a path (posix_spawn). Failures are `.qemuFailed`,
    /// the message saying why ("pipe: …", "COMMAND: …").
    public static func spawn(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil,
                             mergeStderr: Bool = false, ownGroup: Bool = false, defaultSignals: Bool = false,
                             searchPath: Bool = false)
        throws(ToolFailure) -> (pid: pid_t, stdout: Int32, stderr: Int32) {
        guard let command = arguments.first else { throw ToolFailure(.qemuFailed, "no command") }
        if directory != nil && spawnAddChdir == nil {
            throw ToolFailure(.qemuFailed, "this C library cannot set a child's directory")
        }
        var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0 else { throw ToolFailure(.qemuFailed, "pipe: \(errnoText())") }
        guard pipe(&errPipe) == 0 else {
            let failure = ToolFailure(.qemuFailed, "pipe: \(errnoText())")
            close(outPipe[0]); close(outPipe[1])
            throw failure
        }
        // Swift's Glibc module has no pipe2; the dup2 actions below clear the flag on 1 and 2.
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, mergeStderr ? outPipe[1] : errPipe[1], 2)
        for fd in outPipe + errPipe { posix_spawn_file_actions_addclose(&actions, fd) }
        if let directory, let addChdir = spawnAddChdir { _ = addChdir(&actions, directory) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var flags: Int32 = 0
        if defaultSignals {
            var defaults = sigset_t()
            sigemptyset(&defaults)
            for signal in [SIGINT, SIGTERM, SIGPIPE, SIGHUP] { sigaddset(&defaults, signal) }
            posix_spawnattr_setsigdefault(&attributes, &defaults)
            var empty = sigset_t()
            sigemptyset(&empty)
            posix_spawnattr_setsigmask(&attributes, &empty)
            flags |= Int32(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        }
        if ownGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv + envp { free(p) } }

        var pid: pid_t = 0
        let spawnError = searchPath ? posix_spawnp(&pid, command, &actions, &attributes, argv, envp)
                                    : posix_spawn(&pid, command, &actions, &attributes, argv, envp)
        close(outPipe[1]); close(errPipe[1])
        guard spawnError == 0 else {
            close(outPipe[0]); close(errPipe[0])
            throw ToolFailure(.qemuFailed, "\(command): \(String(cString: strerror(spawnError)))")
        }
        return (pid, outPipe[0], errPipe[0])
    }
}

/// glibc's posix_spawn_file_actions_addchdir_np (2.29+), which Swift's Glibc module does
/// not export; looked up once at run time.
private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>,
                                             UnsafePointer<CChar>) -> Int32
private let spawnAddChdir: AddChdir? = {
    guard let symbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else { return nil }
    return unsafeBitCast(symbol, to: AddChdir.self)
}()

private func waitWithDeadline(pid: pid_t, status: inout Int32, seconds: Double) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if waitpid(pid, &status, WNOHANG) == pid { return true }
        usleep(20_000)
    }
    return false
}

/// Writes every byte of `bytes` to `fd`, retrying short writes.
func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) {
    var rest = bytes
    while !rest.isEmpty {
        let written = rest.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if written < 0 { if errno == EINTR { continue } else { return } }
        rest = rest.dropFirst(written)
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
