// Tier 2: static-web serving a host folder through `-p`, driven by WebClient
// (ToroTool/WebBench.swift) over raw TCP, on both platforms: on microvm the folder is
// toro-fs over virtio-fs and the port toro-vsock; on legacy the folder is an ext2 image on
// virtio-blk and the port QEMU's user networking on virtio-net with Toro's own TCP/IP.
//
//   * Every file of ShareFixture (empty, 1 KiB, 1 MiB, 64 MiB of random bytes, nested
//     folders, names with spaces and UTF-8, index.html, a symlink inside) comes back byte
//     for byte on one kept-alive connection; HEAD, 404, 405, 301, pipelining.
//   * Traversal (`/../`, `/%2e%2e/`, `%2f`) is 400 and the symlink that points out of the
//     folder is refused: the outside file's bytes never appear.
//   * 2,000 more requests, then the guest's `static-web: idle` heap figures equal those
//     after the first round, and (microvm) toro-fs holds as many descriptors as it did then.
// Legacy has no virtio-fs; there `--share` is an ext2 image on virtio-blk (DiskImage.swift),
// and `--share` beside `--disk` is refused with one line, status 64.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ToroTool

final class StaticWebBootTests: XCTestCase {
    func testLegacyRefusesShareBesideDiskWithOneLine() {
        guard Harness.preflight() else { return }
        let folder = NSTemporaryDirectory() + "toro-share-legacy-\(getpid())"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let image = folder + "/disk.img"
        FileManager.default.createFile(atPath: image, contents: Data(count: 4096))
        let result = Harness.toro(["run", "--platform", "legacy", "--service", "static-web", "--share", folder, "--disk", image], limit: 60)
        let dump = Harness.describe(result)
        XCTAssertEqual(result.termination, .exited(64), dump)
        XCTAssertEqual(result.output, "", dump)
        let lines = result.errorOutput.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, dump)
        XCTAssertTrue(lines.first.map { $0.hasPrefix("toro: ") && $0.contains("--disk") && $0.contains("--share") } ?? false, dump)
    }

    func testServesTheFolderExactlyAndLeaksNothing() throws {
        try servesTheFolderExactlyAndLeaksNothing(on: .microvm)
    }

    func testLegacyServesTheFolderExactlyAndLeaksNothing() throws {
        try servesTheFolderExactlyAndLeaksNothing(on: .legacy)
    }

    func servesTheFolderExactlyAndLeaksNothing(on platform: GuestPlatform) throws {
        guard Harness.preflight() else { return }
        let testBegan = Date()
        defer { print("static-web boot test (\(platform)): \(String(format: "%.1f", Date().timeIntervalSince(testBegan))) s in all") }
        // Both platforms follow the link inside the folder (toro-fs; ext2's lookup), and the
        // link out of the folder is refused (toro-fs) or left out of the image (legacy).
        let fixture = try ShareFixture(insideLink: true)
        defer { fixture.remove() }
        // Read-only on legacy: nothing is written, so no e2fsck and write-back of 64 MiB at the end.
        guard let guest = ShareGuest.boot(service: "static-web", platform: platform, share: fixture.share,
                                          readOnly: platform == .legacy, port: true) else { return }
        defer { ShareGuest.stop(guest) }
        let dump = { ShareGuest.describe(guest) }
        print("static-web boot test (\(platform)): ready after \(String(format: "%.1f", Date().timeIntervalSince(testBegan))) s")
        let port = guest.port
        var responses = 0
        let began = Date()

        // Round 1: correctness, with a holder connection open throughout, so the idle
        // report that follows comes after everything below.
        let holder = try WebClient(port: port)
        XCTAssertEqual(try holder.request("/empty.txt").status, 200, dump())
        responses += 1
        let client = try WebClient(port: port)
        // Legacy moves 64 MiB through slirp at a few MiB/s under TCG: big.bin comes once,
        // through curl below, to keep the test's time modest.
        for (path, bytes) in fixture.files.sorted(by: { $0.key < $1.key }) where platform == .microvm || path != "big.bin" {
            let response = try client.request(ShareFixture.urlPath(path))
            responses += 1
            XCTAssertEqual(response.status, 200, "\(path)\n" + dump())
            XCTAssertEqual(response.header("Content-Length"), "\(bytes.count)", path)
            XCTAssertTrue(response.body == bytes, "\(path): \(response.bodyLength) bytes, not the file's \(bytes.count)")
            XCTAssertFalse(response.closes, "keep-alive: \(path)")
        }
        print("static-web boot test (\(platform)): every file fetched in \(String(format: "%.1f", Date().timeIntervalSince(began))) s")

        // curl, as a user would: every file in one invocation (curl keeps the connection).
        let downloads = fixture.parent + "/curl"
        try FileManager.default.createDirectory(atPath: downloads, withIntermediateDirectories: true)
        let paths = fixture.files.keys.sorted()
        var curl = ["curl", "-sS", "--fail", "--max-time", "300"]
        for (i, path) in paths.enumerated() {
            curl += ["-o", "\(downloads)/\(i)", "http://127.0.0.1:\(port)" + ShareFixture.urlPath(path)]
        }
        var curlProcess = Subprocess(curl)
        curlProcess.timeout = 300
        let fetched = curlProcess.run()
        print("static-web boot test (\(platform)): curl fetched every file in \(String(format: "%.1f", fetched.seconds)) s")
        responses += paths.count
        XCTAssertEqual(fetched.termination, .exited(0), "curl: " + Harness.describe(fetched))
        for (i, path) in paths.enumerated() {
            let got = FileManager.default.contents(atPath: "\(downloads)/\(i)").map { Array($0) }
            XCTAssertTrue(got == fixture.files[path], "curl \(path): \(got?.count ?? -1) bytes, not the file's \(fixture.files[path]?.count ?? -1)")
        }
        let index = try client.request("/")
        XCTAssertEqual(index.status, 200)
        XCTAssertEqual(index.body, fixture.files["index.html"])
        XCTAssertEqual(index.header("Content-Type"), "text/html; charset=utf-8")
        let head = try client.request("/one-m.bin", method: "HEAD")
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.header("Content-Length"), "1048576")
        XCTAssertEqual(head.header("Content-Type"), "application/octet-stream")
        XCTAssertEqual(try client.request("/missing.txt").status, 404)
        let redirect = try client.request("/nested")
        XCTAssertEqual(redirect.status, 301)
        XCTAssertEqual(redirect.header("Location"), "/nested/")
        XCTAssertEqual(try client.request("/nested/").status, 404, "a folder without index.html")
        try client.send(Array("DELETE /one-k.bin HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let delete = try client.readResponse()
        XCTAssertEqual(delete.status, 405)
        XCTAssertEqual(delete.header("Allow"), "GET, HEAD")
        responses += 6

        // Pipelining: three requests in one write, three responses in order.
        try client.send(Array(("GET /one-k.bin HTTP/1.1\r\nHost: x\r\n\r\nHEAD /empty.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                               + "GET /with%20space/a%20b.txt HTTP/1.1\r\nHost: x\r\n\r\n").utf8))
        XCTAssertEqual(try client.readResponse().body, fixture.files["one-k.bin"])
        XCTAssertEqual(try client.readResponse(isHead: true).header("Content-Length"), "0")
        XCTAssertEqual(try client.readResponse().body, fixture.files["with space/a b.txt"])
        responses += 3

        // Traversal and the symlink out: never the outside bytes.
        for target in ["/../outside/secret.txt", "/%2e%2e/outside/secret.txt", "/nested/../../outside/secret.txt",
                       "/..%2foutside%2fsecret.txt", "/outside-link.txt"] {
            let response = try client.request(target)
            responses += 1
            XCTAssertTrue([400, 403, 404].contains(response.status), "\(target): \(response.status)\n" + dump())
            XCTAssertFalse(String(decoding: response.body, as: UTF8.self).contains(ShareFixture.secret), target)
        }
        client.close()
        let idle1 = try waitForIdle(guest, on: platform, after: holder, requests: &responses, dump: dump)

        // Round 2: 2,000 requests on one kept-alive connection over the same paths.
        let backendFDs1 = ShareGuest.backendDescriptors(guest)
        if platform == .microvm { XCTAssertNotNil(backendFDs1, "toro-fs not found\n" + dump()) }
        let holder2 = try WebClient(port: port)
        XCTAssertEqual(try holder2.request("/empty.txt").status, 200)
        responses += 1
        let loop = try WebClient(port: port)
        let cycle: [(String, String, Int)] = [("GET", "/one-k.bin", 200), ("GET", "/empty.txt", 200), ("HEAD", "/one-m.bin", 200),
                                              ("GET", "/missing.txt", 404), ("GET", "/with%20space/a%20b.txt", 200),
                                              ("GET", "/../x", 400), ("GET", "/", 200),
                                              ("GET", "/inside-link.bin", 200)]
        let loopStart = Date()
        for i in 0..<2000 {
            let (method, target, status) = cycle[i % cycle.count]
            let response = try loop.request(target, method: method)
            responses += 1
            guard response.status == status else {
                return XCTFail("request \(i) \(method) \(target): \(response.status), expected \(status)\n" + dump())
            }
        }
        print("static-web boot test (\(platform)): 2,000 requests in \(String(format: "%.1f", Date().timeIntervalSince(loopStart))) s")
        loop.close()
        let idle2 = try waitForIdle(guest, on: platform, after: holder2, requests: &responses, dump: dump)
        guard let idle1, let idle2 else { return }
        XCTAssertEqual(idle2.bytes, idle1.bytes, "heap bytes after round 1 \(idle1), after 2,000 more \(idle2)\n" + dump())
        XCTAssertEqual(idle2.allocations, idle1.allocations, "allocations: \(idle1) then \(idle2)\n" + dump())
        if platform == .microvm { XCTAssertEqual(ShareGuest.backendDescriptors(guest), backendFDs1, "toro-fs descriptors grew") }
        XCTAssertNil(guest.termination, "toro run ended early\n" + dump())
    }

    /// Killing toro-fs while the guest serves stops the guest: `toro run` exits 125 with one
    /// line naming the back-end, and no process of the run is left.
    func testFileBackendDeathStopsTheGuestAndLeavesNothing() throws {
        guard Harness.preflight() else { return }
        let fixture = try ShareFixture(bigFile: false)
        defer { fixture.remove() }
        guard let guest = ShareGuest.boot(service: "static-web", share: fixture.share, port: true) else { return }
        defer { ShareGuest.stop(guest) }
        let dump = { ShareGuest.describe(guest) }
        let client = try WebClient(port: guest.port)
        XCTAssertEqual(try client.request("/one-k.bin").body, fixture.files["one-k.bin"], dump())
        let run = Array(Set(KVGuest.processesOfRun(guest) + ShareGuest.processesOfRun(guest))).sorted()
        XCTAssertEqual(run.count, 3, "toro-fs, toro-vsock and QEMU of this run: \(run)\n" + dump())
        guard let backend = ShareGuest.backendPID(guest) else { return XCTFail("toro-fs not found\n" + dump()) }
        kill(backend, SIGKILL)
        XCTAssertEqual(guest.wait(timeout: 60), .exited(125), dump())
        let reports = guest.errorLines.filter { $0.contains("while the guest ran") }
        XCTAssertEqual(reports, ["toro: the virtio-fs back-end (toro-fs) was killed by signal 9 while the guest ran; the guest was stopped"],
                       dump())
        client.close()
        let deadline = Date().addingTimeInterval(10)
        var alive = run.filter(BackgroundProcess.isAlive)
        while !alive.isEmpty && Date() < deadline {
            usleep(100_000)
            alive = run.filter(BackgroundProcess.isAlive)
        }
        XCTAssertEqual(alive, [], "processes of the run still alive: \(alive)")
    }

    /// Closes `holder` (the last client) and returns the idle report that counts every
    /// response sent so far (each connection is accounted for once it is gone).
    ///
    /// Legacy: then, after a quiet moment longer than TIME-WAIT, one more request on a fresh
    /// connection, and the idle report after it: the guest's TCP tables (whose arrays keep
    /// the capacity the busiest moment gave them) are then in the same state after either
    /// round, and the figures are comparable.
    func waitForIdle(_ guest: BackgroundProcess, on platform: GuestPlatform, after holder: WebClient, requests: inout Int,
                     dump: () -> String) throws -> WebIdleReport? {
        guard let first = try waitForIdle(guest, after: holder, requests: &requests, dump: dump) else { return nil }
        guard platform == .legacy else { return first }
        usleep(UInt32((KVGuest.timeWaitSeconds + 1) * 1_000_000))
        let probe = try WebClient(port: guest.port)
        XCTAssertEqual(try probe.request("/empty.txt").status, 200, dump())
        requests += 1
        return try waitForIdle(guest, after: probe, requests: &requests, dump: dump)
    }

    func waitForIdle(_ guest: BackgroundProcess, after holder: WebClient, requests: inout Int,
                     dump: () -> String) throws -> WebIdleReport? {
        usleep(500_000)
        let start = guest.outputLines.count
        holder.close()
        let expected = requests
        guard let line = guest.waitForLine(from: start, timeout: 60, where: { WebIdleReport.parse($0)?.requests == expected }),
              let report = WebIdleReport.parse(line.line) else {
            XCTFail("no 'static-web: idle' line with \(expected) requests\n" + dump())
            return nil
        }
        return report
    }
}

/// The folder the share tests serve, in a temporary parent that also holds the file a
/// symlink points to from outside:
///
///   <parent>/site/            the share
///     empty.txt  one-k.bin  one-m.bin  big.bin (64 MiB)  index.html
///     nested/deeper/file.txt  nested/deeper/empty
///     with space/a b.txt      utf8 ü/ñandú ☃.txt
///     inside-link.bin -> one-k.bin       (inside: served as the file; not with insideLink: false)
///     outside-link.txt -> ../outside/secret.txt   (out of the share: refused)
///   <parent>/outside/secret.txt
struct ShareFixture {
    static let secret = "TOP-SECRET-OUTSIDE-THE-SHARE"
    let parent: String
    var share: String { parent + "/site" }
    /// Regular files and the inside symlink: relative path -> bytes.
    var files: [String: [UInt8]] = [:]

    /// `insideLink`: whether the share holds inside-link.bin (a symlink to one-k.bin).
    init(bigFile: Bool = true, insideLink: Bool = true) throws {
        parent = NSTemporaryDirectory() + "toro-share-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fm = FileManager.default
        for folder in ["site/nested/deeper", "site/with space", "site/utf8 ü", "outside"] {
            try fm.createDirectory(atPath: parent + "/" + folder, withIntermediateDirectories: true)
        }
        var generator = SystemRandomNumberGenerator()
        func random(_ count: Int) -> [UInt8] {
            // Whole words, then the bytes: a byte-at-a-time loop takes seconds for 64 MiB in a debug build.
            var words = [UInt64](repeating: 0, count: (count + 7) / 8)
            for index in words.indices { words[index] = generator.next() }
            return words.withUnsafeBytes { Array($0.prefix(count)) }
        }
        files["empty.txt"] = []
        files["one-k.bin"] = random(1024)
        files["one-m.bin"] = random(1 << 20)
        if bigFile { files["big.bin"] = random(64 << 20) }
        files["index.html"] = Array("<!doctype html><h1>Toro</h1>\n".utf8)
        files["nested/deeper/file.txt"] = Array("deep\n".utf8)
        files["nested/deeper/empty"] = []
        files["with space/a b.txt"] = Array("a file with spaces in its name\n".utf8)
        files["utf8 ü/ñandú ☃.txt"] = Array("ünïcødé\n".utf8)
        for (path, bytes) in files {
            try Data(bytes).write(to: URL(fileURLWithPath: share + "/" + path))
        }
        try Data(Self.secret.utf8).write(to: URL(fileURLWithPath: parent + "/outside/secret.txt"))
        try fm.createSymbolicLink(atPath: share + "/outside-link.txt", withDestinationPath: "../outside/secret.txt")
        if insideLink {
            try fm.createSymbolicLink(atPath: share + "/inside-link.bin", withDestinationPath: "one-k.bin")
            files["inside-link.bin"] = files["one-k.bin"]
        }
    }

    func remove() { try? FileManager.default.removeItem(atPath: parent) }

    /// `/` + the path with every byte outside [A-Za-z0-9._~/-] percent-encoded.
    static func urlPath(_ path: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~/-".utf8)
        return "/" + path.utf8.map { safe.contains($0) ? String(UnicodeScalar($0)) : String(format: "%%%02X", $0) }.joined()
    }
}

/// Booting a service with a shared folder (and optionally a port) in the background.
enum ShareGuest {
    static func boot(service: String, platform: GuestPlatform = .microvm, share: String, readOnly: Bool = false, port: Bool,
                     file: StaticString = #filePath, line: UInt = #line) -> BackgroundProcess? {
        ServiceGuest.boot(service: service, platform: platform, arguments: ["--share", share + (readOnly ? ":ro" : "")],
                          port: port, timeout: 600, file: file, line: line)
    }

    static func stop(_ guest: BackgroundProcess) { ServiceGuest.stop(guest) }

    static func describe(_ guest: BackgroundProcess) -> String { ServiceGuest.describe(guest) }

    /// The pid of this run's toro-fs: the process whose command line names its socket.
    static func backendPID(_ guest: BackgroundProcess) -> pid_t? {
        let marker = FSBackend.directory(forRun: guest.pid) + "/fs.sock"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.first { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let words = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return words.contains(marker) && words.contains("--share")
        }
    }

    /// The processes whose command line names this run's toro-fs folder (toro-fs, QEMU).
    static func processesOfRun(_ guest: BackgroundProcess) -> [pid_t] {
        ServiceGuest.processes(mentioning: FSBackend.directory(forRun: guest.pid) + "/")
    }

    /// How many descriptors this run's toro-fs holds open (/proc/PID/fd), or nil.
    static func backendDescriptors(_ guest: BackgroundProcess) -> Int? {
        guard let pid = backendPID(guest) else { return nil }
        return (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"))?.count
    }
}
