// A child process that runs while the caller talks to it: `toro bench kv` and the kv boot
// test boot the kv service this way and wait for its "ready: kv" line.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A child process that runs while the caller talks to it (a booted service): its stdout
/// and stderr lines are collected as they arrive, and the caller can wait for a line.
/// stdin is /dev/null; the pipe ends are close-on-exec. The child is registered with
/// ChildRegistry, so interrupting toro stops it too.
public final class BackgroundProcess: @unchecked Sendable {
    public let pid: pid_t
    /// The host port the caller forwarded to the guest, for its own bookkeeping.
    public var port = 0
    private let condition = NSCondition()
    private var out: [String] = []
    private var err: [String] = []
    private var status: Termination?
    private var openReaders = 2
    /// The most bytes of stdout kept in `outputLines` (later lines are read and dropped).
    private let captureLimit: Int
    private var captured = 0

    /// Starts `arguments` with `environment` added to ours; `echoErrors` copies the child's
    /// stderr lines to ours as they arrive. `captureLimit` bounds the stdout kept (an
    /// untrusted guest's console).
    public init(_ arguments: [String], environment: [String: String] = [:], echoErrors: Bool = false,
                captureLimit: Int = Int.max) throws(ToolFailure) {
        self.captureLimit = captureLimit
        let spawned: (pid: pid_t, stdout: Int32, stderr: Int32)
        do throws(ToolFailure) {
            spawned = try Subprocess.spawn(arguments, environment: environment)
        } catch {
            throw ToolFailure(error.status, "could not start \(error.message)")
        }
        self.pid = spawned.pid
        let child = spawned.pid
        ChildRegistry.add(pid: child, group: false)
        for (fd, isOutput) in [(spawned.stdout, true), (spawned.stderr, false)] {
            Thread.detachNewThread { [self] in
                collect(fd, isOutput: isOutput, echo: echoErrors && !isOutput)
                close(fd)
            }
        }
        Thread.detachNewThread { [self] in
            var raw: Int32 = 0
            while waitpid(child, &raw, 0) < 0 && errno == EINTR {}
            ChildRegistry.remove(pid: child)
            condition.lock()
            status = raw & 0x7f == 0 ? .exited((raw >> 8) & 0xff) : .signaled(raw & 0x7f)
            condition.broadcast()
            condition.unlock()
        }
    }

    private func collect(_ fd: Int32, isOutput: Bool, echo: Bool) {
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        func add(_ bytes: [UInt8]) {
            let line = String(decoding: bytes.filter { $0 != 13 }, as: UTF8.self)
            if echo { writeAll(2, Array((line + "\n").utf8)[...]) }
            condition.lock()
            if isOutput {
                captured += line.utf8.count + 1
                if captured <= captureLimit { out.append(line) }
            } else {
                err.append(line)
            }
            condition.broadcast()
            condition.unlock()
        }
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            for byte in buffer[0..<count] {
                if byte == 10 {
                    add(pending)
                    pending.removeAll(keepingCapacity: true)
                } else if pending.count < captureLimit {
                    pending.append(byte)
                }
            }
        }
        if !pending.isEmpty { add(pending) }
        condition.lock(); openReaders -= 1; condition.broadcast(); condition.unlock()
    }

    /// The child's stdout lines so far (without "\r" and "\n").
    public var outputLines: [String] { condition.lock(); defer { condition.unlock() }; return out }
    /// The child's stderr lines so far.
    public var errorLines: [String] { condition.lock(); defer { condition.unlock() }; return err }
    /// How the child ended, or nil while it runs.
    public var termination: Termination? { condition.lock(); defer { condition.unlock() }; return status }

    /// Waits for the first stdout line at index `from` or later that satisfies `predicate`;
    /// nil after `timeout` seconds, or once the child has exited and its output is read.
    public func waitForLine(from: Int = 0, timeout: Double, where predicate: (String) -> Bool) -> (index: Int, line: String)? {
        let deadline = Date().addingTimeInterval(timeout)
        var exitSeen: Date? = nil
        condition.lock(); defer { condition.unlock() }
        var next = from
        while true {
            while next < out.count {
                if predicate(out[next]) { return (next, out[next]) }
                next += 1
            }
            if status != nil {
                // Output may lag the exit a little, or stay open in a grandchild: give it 1 s.
                if openReaders == 0 || Date().timeIntervalSince(exitSeen ?? Date()) > 1 { return nil }
                if exitSeen == nil { exitSeen = Date() }
            }
            if Date() >= deadline { return nil }
            _ = condition.wait(until: min(deadline, Date().addingTimeInterval(0.2)))
        }
    }

    /// Waits up to `timeout` seconds for the child to exit; its termination, or nil.
    public func wait(timeout: Double) -> Termination? {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock(); defer { condition.unlock() }
        while status == nil && Date() < deadline { _ = condition.wait(until: deadline) }
        return status
    }

    /// Sends `signal` to the child (if it still runs).
    public func send(_ signal: Int32) {
        if termination == nil { kill(pid, signal) }
    }

    /// Stops the child: SIGTERM, then SIGKILL after `grace` seconds. Returns how it ended.
    @discardableResult
    public func stop(grace: Double = 10) -> Termination {
        send(SIGTERM)
        if let ended = wait(timeout: grace) { return ended }
        send(SIGKILL)
        return wait(timeout: 10) ?? .timedOut
    }

    /// The pids of the child's own children whose command name (`/proc/PID/comm`) is `name`.
    public func children(named name: String) -> [pid_t] {
        BackgroundProcess.children(of: pid).filter { BackgroundProcess.commandName(of: $0) == name }
    }

    /// The pids whose parent is `parent` (from /proc/PID/stat).
    public static func children(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { processState(of: $0)?.parent == parent }
    }

    /// The state letter and parent pid of `pid`, or nil when there is no such process.
    public static func processState(of pid: pid_t) -> (state: Character, parent: pid_t)? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count >= 2, let state = fields[0].first, let parent = pid_t(fields[1]) else { return nil }
        return (state, parent)
    }

    /// `/proc/PID/comm` (the command name, at most 15 bytes), or nil.
    public static func commandName(of pid: pid_t) -> String? {
        (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether `pid` is a running process (a zombie counts as gone).
    public static func isAlive(_ pid: pid_t) -> Bool {
        guard let state = processState(of: pid)?.state else { return false }
        return state != "Z" && state != "X"
    }

    static func monotonicNow() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
