// The real `toro-vsock` and `toro-fs` binaries with their descriptor limit lowered under
// them (prlimit on the running process) until an accept fails with EMFILE: the listener
// stays readable, so a back-end that polled it again at once would burn a whole CPU. Each
// test measures the process's CPU time (/proc/PID/stat) over 1.5 s of exhaustion, then
// gives the descriptors back and checks the back-end serves again without a restart: it
// accepts what was queued and answers QEMU's first vhost-user message (GET_FEATURES).
import XCTest
import TestSupport
import Foundation
import Glibc
@testable import VhostUser

final class BackendDescriptorLimitTests: XCTestCase {
    var directory = ""
    var running: [Process] = []

    override func setUp() { directory = temporaryDirectory() }

    override func tearDown() {
        for process in running where process.isRunning { process.terminate(); process.waitUntilExit() }
        HostFiles.removeTree(directory)
    }

    /// The back-end binary next to the test bundle (swift build builds it with the tests).
    func binary(_ name: String) throws -> String {
        var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path]
        candidates += Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent().path }
        let found = candidates.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
        return try XCTUnwrap(found, "\(name) is not built next to the tests: swift build --product \(name)")
    }

    func start(_ executable: String, _ arguments: [String], socket: String) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        running.append(process)
        let ready = Posix.monotonicNow() + 10
        while !HostFiles.exists(socket) && Posix.monotonicNow() < ready { usleep(10_000) }
        XCTAssertTrue(HostFiles.exists(socket), "\(executable) created \(socket)")
        return (process, errors)
    }

    typealias Prlimit = @convention(c) (pid_t, Int32, UnsafePointer<rlimit>?, UnsafeMutablePointer<rlimit>?) -> Int32

    /// Sets `pid`'s soft RLIMIT_NOFILE (the hard limit unchanged).
    func setDescriptorLimit(_ pid: pid_t, _ soft: Int) {
        let call = LinuxCalls.symbol("prlimit", as: Prlimit.self)
        var current = rlimit()
        XCTAssertEqual(call(pid, Int32(RLIMIT_NOFILE.rawValue), nil, &current), 0, "prlimit read")
        var wanted = current
        wanted.rlim_cur = rlim_t(soft)
        XCTAssertEqual(call(pid, Int32(RLIMIT_NOFILE.rawValue), &wanted, nil), 0, "prlimit set")
    }

    /// The descriptors `pid` has open.
    func descriptors(_ pid: pid_t) -> Set<Int> {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { return [] }
        return Set(names.compactMap { Int($0) })
    }

    /// The soft limit that leaves `pid` exactly `free` new descriptors: a new descriptor
    /// takes the lowest free number below the limit, and a limit below descriptors already
    /// open (some inherited, high-numbered) leaves them open.
    func limitLeaving(_ free: Int, _ pid: pid_t) -> Int {
        let open = descriptors(pid)
        var limit = 0
        var left = free
        while true {
            if !open.contains(limit) {
                if left == 0 { return limit }
                left -= 1
            }
            limit += 1
        }
    }

    /// User plus system CPU seconds `pid` has used (/proc/PID/stat fields 14 and 15).
    func cpuSeconds(_ pid: pid_t) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return -1 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After ")": state is field 3, so utime (14) and stime (15) are at 11 and 12.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return -1 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// CPU seconds used over `seconds` of wall time.
    func cpuUsed(_ pid: pid_t, over seconds: Double) -> Double {
        let before = cpuSeconds(pid)
        usleep(UInt32(seconds * 1_000_000))
        return cpuSeconds(pid) - before
    }

    /// Plays QEMU's first step: GET_FEATURES on the vhost-user socket; the features, or nil.
    func getFeatures(_ socket: String) throws -> UInt64? {
        let fd = try unixClient(socket)
        defer { close(fd) }
        return getFeatures(on: fd)
    }

    /// GET_FEATURES on a connected vhost-user client `fd`.
    func getFeatures(on fd: Int32) -> UInt64? {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        request.appendLE(UInt32(1))   // VHOST_USER_GET_FEATURES
        request.appendLE(UInt32(1))   // version 1
        request.appendLE(UInt32(0))
        writeAll(fd, request)
        var reply = [UInt8](repeating: 0, count: 20)
        var got = 0
        while got < 20 {
            let n = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, 20 - got, 0) }
            if n <= 0 { return nil }
            got += n
        }
        return reply.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 12, as: UInt64.self) }
    }

    func finish(_ process: Process, _ errors: Pipe) -> (status: Int32, stderr: String) {
        let end = Posix.monotonicNow() + 10
        while process.isRunning && Posix.monotonicNow() < end { usleep(20_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    func testToroVsockAtDescriptorExhaustionDoesNotSpinAndRecovers() throws {
        let socket = directory + "/vhost.sock"
        let port = freeTCPPort()
        let (process, errors) = try start(try binary("toro-vsock"), ["--socket", socket, "--uds", directory + "/v.sock",
                                                                   "--forward", "\(port):5000"], socket: socket)
        let pid = process.processIdentifier
        let open = descriptors(pid)
        setDescriptorLimit(pid, limitLeaving(2, pid))    // room for two clients
        let clients = (0..<10).map { _ in tcpClient(port) }
        defer { clients.forEach { close($0) } }
        usleep(300_000)
        let used = cpuUsed(pid, over: 1.5)
        let whileShort = descriptors(pid).count
        setDescriptorLimit(pid, 4096)
        let recovered = Posix.monotonicNow() + 5
        while descriptors(pid).count < open.count + 10 && Posix.monotonicNow() < recovered { usleep(20_000) }
        let afterwards = descriptors(pid).count
        let features = try getFeatures(socket)
        let outcome = finish(process, errors)

        XCTAssertEqual(whileShort, open.count + 2, "two clients accepted, the rest queued")
        XCTAssertLessThan(used, 0.2, "no busy loop at EMFILE (\(used) s of CPU in 1.5 s)\n\(outcome.stderr)")
        XCTAssertEqual(afterwards, open.count + 10, "the queued clients are accepted once descriptors return")
        XCTAssertEqual(features, (1 << 32) | (1 << 30), "QEMU is served")
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        let lines = outcome.stderr.split(separator: "\n").filter { $0.contains("Too many open files") }
        XCTAssertGreaterThan(lines.count, 0, "the shortage is logged\n\(outcome.stderr)")
        XCTAssertLessThanOrEqual(lines.count, 3, "at most a line a second\n\(outcome.stderr)")
    }

    func testToroFSAtDescriptorExhaustionDoesNotSpinAndRecovers() throws {
        let socket = directory + "/fs.sock"
        mkdir(directory + "/share", 0o755)
        let (process, errors) = try start(try binary("toro-fs"), ["--socket", socket, "--share", directory + "/share"], socket: socket)
        let pid = process.processIdentifier
        setDescriptorLimit(pid, limitLeaving(0, pid))           // not one more: QEMU cannot be accepted
        let qemu = try unixClient(socket)                        // queued in the listener's backlog
        usleep(300_000)
        let used = cpuUsed(pid, over: 1.5)
        setDescriptorLimit(pid, 4096)
        let features = getFeatures(on: qemu)                     // accepted at the end of a pause
        close(qemu)
        let outcome = finish(process, errors)

        XCTAssertLessThan(used, 0.2, "no busy loop at EMFILE (\(used) s of CPU in 1.5 s)\n\(outcome.stderr)")
        XCTAssertNotNil(features, "the back-end answers once descriptors return\n\(outcome.stderr)")
        XCTAssertEqual(outcome.status, 0, "exits 0 when QEMU disconnects\n\(outcome.stderr)")
        XCTAssertTrue(outcome.stderr.contains("Too many open files; not accepting"), outcome.stderr)
    }
}
