// What every boot test needs: the toro binary, the repository, QEMU, and a way to run
// two boots at once (the machines have 2 cores: at most 2 QEMUs run together).
//
// The tests drive the real `toro` tool (TORO_CLI, set by `./toro test`; otherwise
// .build/debug/toro-cli), so they exercise the same code path a user does. When QEMU or
// the tool is missing they fail with the reason; they never skip. `toroTimed` also
// records when each console line reached the host, for tests that time the guest.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ToroTool

enum Harness {
    /// The repository root: TORO_ROOT, else two folders above this file's folder.
    static let root: String = ProcessInfo.processInfo.environment["TORO_ROOT"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path

    static let paths = Paths(root: root)

    /// The toro tool binary.
    static let cli: String = ProcessInfo.processInfo.environment["TORO_CLI"] ?? root + "/.build/debug/toro-cli"

    /// Fails the calling test (with the reason) unless QEMU and the toro tool are there.
    static func preflight(file: StaticString = #filePath, line: UInt = #line) -> Bool {
        guard Installer.which("qemu-system-x86_64") != nil else {
            XCTFail("qemu-system-x86_64 is not on PATH: run ./toro test, which installs it", file: file, line: line)
            return false
        }
        guard FileManager.default.isExecutableFile(atPath: cli) else {
            XCTFail("the toro tool is missing at \(cli): run ./toro test (or swift build --product toro-cli)",
                    file: file, line: line)
            return false
        }
        return true
    }

    /// Runs `toro <arguments>` from the repository root; `limit` bounds the wall time.
    static func toro(_ arguments: [String], limit: Double = 240) -> ProcessResult {
        var process = Subprocess([cli] + arguments)
        process.directory = root
        process.environment = ["TORO_ROOT": root, "TORO_CWD": root]
        process.timeout = limit
        return process.run()
    }

    /// Runs `body` for both platforms at once and returns the results in platform order.
    static func onBothPlatforms<T: Sendable>(_ body: @Sendable @escaping (GuestPlatform) -> T) -> [T] {
        let platforms = GuestPlatform.allCases
        let results = ResultBox<T>(count: platforms.count)
        DispatchQueue.concurrentPerform(iterations: platforms.count) { index in
            results.set(index, body(platforms[index]))
        }
        return results.values
    }

    /// Runs `body(0..<count)` with at most two running at once (this machine has 2 cores,
    /// and each body boots at most one QEMU at a time); results in index order.
    static func twoAtATime<T: Sendable>(_ count: Int, _ body: @Sendable @escaping (Int) -> T) -> [T] {
        guard count > 0 else { return [] }
        let results = ResultBox<T>(count: count)
        let next = Counter()
        DispatchQueue.concurrentPerform(iterations: min(2, count)) { _ in
            while let index = next.take(below: count) { results.set(index, body(index)) }
        }
        return results.values
    }

    /// Runs `toro <arguments>` like `toro(_:limit:)`, but records when each line of its
    /// stdout arrived (host clocks), for tests that time the guest from outside.
    static func toroTimed(_ arguments: [String], limit: Double = 120) -> TimedRun {
        // The tool finds everything through TORO_ROOT and TORO_CWD, so the child needs
        // no particular working directory.
        TimedRun.start([cli] + arguments, environment: ["TORO_ROOT": root, "TORO_CWD": root], limit: limit)
    }

    /// Lines of `text` without `\r`.
    static func lines(_ text: String) -> [String] {
        text.unicodeScalars.filter { $0 != "\r" }.map(String.init).joined()
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// A readable dump of a run for failure messages.
    static func describe(_ result: ProcessResult) -> String {
        "termination \(result.termination) after \(String(format: "%.1f", result.seconds)) s\n--- stdout\n\(result.output)\n--- stderr\n\(result.errorOutput)"
    }
}

/// Results written from concurrent threads, one slot each.
final class ResultBox<T>: @unchecked Sendable {
    private var slots: [T?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: T) { lock.lock(); slots[index] = value; lock.unlock() }
    var values: [T] { lock.lock(); defer { lock.unlock() }; return slots.map { $0! } }
}


final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    /// The next number below `limit`, or nil when they have all been taken.
    func take(below limit: Int) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard value < limit else { return nil }
        defer { value += 1 }
        return value
    }
}

/// One line of a child's stdout and when it arrived (the moment its `\n` was read).
struct TimedLine: Sendable {
    /// The line without `\r` and `\n`.
    var text: String
    /// Host wall-clock time, seconds since 1970 (compare with the guest's date).
    var unixTime: Double
    /// Host monotonic time in seconds (for intervals between lines).
    var monotonic: Double
}

/// A child process whose stdout is read line by line with each line's arrival time.
///
/// Spawned by `Subprocess.spawn` (stdin /dev/null, close-on-exec pipe ends, so a child
/// spawned by another thread cannot hold them open); stdout is read on its own thread, so each
/// line is stamped when it arrives rather than when the child ends. On `limit` the child
/// gets SIGTERM (toro then kills its QEMU's process group), then SIGKILL.
struct TimedRun: Sendable {
    var termination: Termination
    var lines: [TimedLine]
    var errorOutput: String
    var seconds: Double

    /// Everything the child wrote to stdout, one `\n` after each line.
    var output: String { lines.map { $0.text + "\n" }.joined() }

    /// A readable dump for failure messages, each line with its arrival time (ms after
    /// the first line).
    var description: String {
        let first = lines.first?.monotonic ?? 0
        let stamped = lines.map { String(format: "%9.1f ms  ", ($0.monotonic - first) * 1000) + $0.text }
        return "termination \(termination) after \(String(format: "%.1f", seconds)) s\n--- stdout (host arrival times)\n"
            + stamped.joined(separator: "\n") + "\n--- stderr\n\(errorOutput)"
    }

    static func monotonicNow() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    static func start(_ arguments: [String], environment: [String: String], limit: Double) -> TimedRun {
        let begin = monotonicNow()
        func failed(_ why: String) -> TimedRun {
            TimedRun(termination: .failedToStart(why), lines: [], errorOutput: "", seconds: 0)
        }
        let spawned: (pid: pid_t, stdout: Int32, stderr: Int32)
        do throws(ToolFailure) {
            spawned = try Subprocess.spawn(arguments, environment: environment)
        } catch {
            return failed(error.message)
        }
        let pid = spawned.pid

        let lines = LineCollector()
        let errors = LineCollector()
        let readers = DispatchGroup()
        for (fd, collector) in [(spawned.stdout, lines), (spawned.stderr, errors)] {
            readers.enter()
            Thread.detachNewThread {
                collector.read(fd)
                close(fd)
                readers.leave()
            }
        }
        var timedOut = false
        if readers.wait(timeout: .now() + limit) == .timedOut {
            timedOut = true
            kill(pid, SIGTERM)
            if readers.wait(timeout: .now() + 5) == .timedOut { kill(pid, SIGKILL) }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        _ = readers.wait(timeout: .now() + 5)
        let termination: Termination
        if timedOut {
            termination = .timedOut
        } else if status & 0x7f == 0 {
            termination = .exited((status >> 8) & 0xff)
        } else {
            termination = .signaled(status & 0x7f)
        }
        return TimedRun(termination: termination, lines: lines.lines,
                        errorOutput: errors.lines.map { $0.text + "\n" }.joined(),
                        seconds: monotonicNow() - begin)
    }
}

/// Splits what is read from a file descriptor into lines stamped with their arrival.
final class LineCollector: @unchecked Sendable {
    private var collected: [TimedLine] = []
    private let lock = NSLock()

    var lines: [TimedLine] { lock.lock(); defer { lock.unlock() }; return collected }

    /// Reads `fd` to its end.
    func read(_ fd: Int32) {
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        func add(_ bytes: [UInt8]) {
            let line = TimedLine(text: String(decoding: bytes.filter { $0 != 13 }, as: UTF8.self),
                                 unixTime: Date().timeIntervalSince1970, monotonic: TimedRun.monotonicNow())
            lock.lock(); collected.append(line); lock.unlock()
        }
        while true {
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            for byte in buffer[0..<count] {
                if byte == 10 { add(pending); pending.removeAll(keepingCapacity: true) } else { pending.append(byte) }
            }
        }
        if !pending.isEmpty { add(pending) }
    }
}

/// A service booted in the background with `toro run`, as the kv, static-web, echo and
/// persistence tests use it, on either platform (microvm's `-p` is toro-vsock over
/// virtio-vsock, legacy's is QEMU's user networking over virtio-net and Toro's TCP/IP).
enum ServiceGuest {
    /// `toro run --platform <platform> --service <service> <arguments> --timeout <seconds>
    /// [-p <free port>:<guestPort>] [-- <kernel arguments>]`, once it printed `ready: <service>`;
    /// nil (after failing the test) when it does not.
    static func boot(service: String, platform: GuestPlatform = .microvm, arguments: [String] = [], port: Bool,
                     guestPort: Int = 80, timeout: Int = 300, kernelArguments: [String] = [],
                     file: StaticString = #filePath, line: UInt = #line) -> BackgroundProcess? {
        var command = [Harness.cli, "run", "--platform", platform.rawValue, "--service", service] + arguments
            + ["--timeout", "\(timeout)"]
        var hostPort = 0
        if port {
            guard let free = KVClient.freePort() else {
                XCTFail("no free TCP port on 127.0.0.1", file: file, line: line)
                return nil
            }
            hostPort = free
            command += ["-p", "\(free):\(guestPort)"]
        }
        if !kernelArguments.isEmpty { command += ["--"] + kernelArguments }
        let guest: BackgroundProcess
        do throws(ToolFailure) {
            guest = try BackgroundProcess(command, environment: ["TORO_ROOT": Harness.root, "TORO_CWD": Harness.root])
        } catch {
            XCTFail(error.message, file: file, line: line)
            return nil
        }
        guest.port = hostPort
        guard guest.waitForLine(timeout: 300, where: { $0 == "ready: \(service)" }) != nil else {
            guest.stop()
            XCTFail("\(service) did not print 'ready: \(service)'\n" + describe(guest), file: file, line: line)
            return nil
        }
        return guest
    }

    /// Stops the run (SIGTERM: toro stops QEMU and the back-ends) if it still runs.
    static func stop(_ guest: BackgroundProcess) {
        if guest.termination == nil { guest.stop() }
    }

    static func describe(_ guest: BackgroundProcess) -> String {
        "toro run: \(guest.termination.map { "\($0)" } ?? "running"), port \(guest.port)\n--- stdout (last 80 lines)\n"
            + guest.outputLines.suffix(80).joined(separator: "\n") + "\n--- stderr\n" + guest.errorLines.joined(separator: "\n")
    }

    /// The processes whose command line contains `marker` (a back-end's folder: the
    /// back-end itself and QEMU), sorted.
    static func processes(mentioning marker: String) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(marker)
        }.sorted()
    }
}
