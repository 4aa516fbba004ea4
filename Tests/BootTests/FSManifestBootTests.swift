// Tier 2: fs-manifest on MicroVM walks ShareFixture's folder through virtio-fs; what it
// prints between `ready: fs-manifest` and `fs-manifest: N files` must equal, byte for
// byte, the host's own walk of the same folder (written here, independently of the
// kernel's code, by the rules at the top of Sources/Core/Services/FSManifest.swift).
// A share 200 folders deep (issue 9: the recursive walk overflowed its stack, exit 3) gives
// the whole manifest under the default depth bound, and one clear line with status 1 under
// a lower `manifest-depth=`. A back-end stopped mid-walk (SIGSTOP) makes the walk's request
// fail after the virtio-fs timeout (30 s by default; 3 s here, `fs-timeout=3`) with one stall line: fs-manifest
// reports an i/o error and exits 1 instead of hanging. A folder of 70,000 files is more
// than one listing may hold (65,536): one line from virtio-fs, one from fs-manifest, status 1.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import Wire
import Wire
import ToroTool

final class FSManifestBootTests: XCTestCase {
    func testManifestMatchesTheHostsWalk() throws {
        guard Harness.preflight() else { return }
        let fixture = try ShareFixture()
        defer { fixture.remove() }
        let expected = try HostManifest.lines(of: fixture.share)
        XCTAssertEqual(expected.count, fixture.files.count + 1, "the fixture's files and the summary")
        let result = Harness.toro(["run", "--service", "fs-manifest", "--share", fixture.share + ":ro", "--timeout", "300"], limit: 360)
        let dump = Harness.describe(result)
        XCTAssertEqual(result.termination, .exited(0), dump)
        let lines = Harness.lines(result.output)
        guard let ready = lines.firstIndex(of: "ready: fs-manifest") else { return XCTFail("no ready line\n" + dump) }
        // The service's lines carry no timestamp; kernel log lines do ("[  1.234567] ...").
        var printed: [String] = []
        for line in lines[(ready + 1)...] where KernelLog.stripTimestamp(Substring(line)) == nil {
            printed.append(line)
            if line.hasPrefix("fs-manifest: ") { break }
        }
        XCTAssertEqual(printed, expected, dump)
        XCTAssertEqual(Array(printed.joined(separator: "\n").utf8), Array(expected.joined(separator: "\n").utf8))
    }

    func testTwoHundredDeepTreeGivesTheManifestOrOneClearLine() throws {
        guard Harness.preflight() else { return }
        let share = NSTemporaryDirectory() + "toro-deep-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: share) }
        let deepest = share + String(repeating: "/d", count: 200)
        try FileManager.default.createDirectory(atPath: deepest, withIntermediateDirectories: true)
        try Data("bottom\n".utf8).write(to: URL(fileURLWithPath: deepest + "/leaf.txt"))
        try Data("top\n".utf8).write(to: URL(fileURLWithPath: share + "/top.txt"))
        try Data("middle\n".utf8).write(to: URL(fileURLWithPath: share + String(repeating: "/d", count: 100) + "/mid.txt"))
        let expected = try HostManifest.lines(of: share)
        XCTAssertEqual(expected.count, 4)

        let whole = Harness.toro(["run", "--service", "fs-manifest", "--share", share + ":ro", "--timeout", "300"], limit: 360)
        let wholeDump = Harness.describe(whole)
        XCTAssertEqual(whole.termination, .exited(0), wholeDump)
        XCTAssertEqual(printed(whole.output), expected, wholeDump)

        let bounded = Harness.toro(["run", "--service", "fs-manifest", "--share", share + ":ro", "--timeout", "300",
                                    "--", "manifest-depth=100"], limit: 360)
        let boundedDump = Harness.describe(bounded)
        XCTAssertEqual(bounded.termination, .exited(1), "a clear refusal, not a crash (3)\n" + boundedDump)
        let line = "fs-manifest: " + Array(repeating: "d", count: 101).joined(separator: "/") + " is more than 100 folders deep; no manifest"
        XCTAssertEqual(printed(bounded.output), [line], boundedDump)
    }

    func testStalledBackEndFailsTheWalkAfterTheTimeout() throws {
        guard Harness.preflight() else { return }
        // 8,000 small files: several seconds of walking under TCG, long enough to stop toro-fs
        // in (3,000 were once about 3 s; on a quiet machine the walk ended before the stop).
        let share = NSTemporaryDirectory() + "toro-stall-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: share) }
        for folder in 0..<80 {
            try FileManager.default.createDirectory(atPath: share + "/d\(folder)", withIntermediateDirectories: true)
            for file in 0..<100 {
                try Data(repeating: 0x78, count: 100).write(to: URL(fileURLWithPath: share + "/d\(folder)/f\(file).txt"))
            }
        }
        guard let guest = ServiceGuest.boot(service: "fs-manifest", arguments: ["--share", share + ":ro"], port: false,
                                            timeout: 240, kernelArguments: ["fs-timeout=3"]) else { return }
        defer { ServiceGuest.stop(guest) }
        let backEnds = guest.children(named: "toro-fs")
        XCTAssertEqual(backEnds.count, 1, ServiceGuest.describe(guest))
        for pid in backEnds { kill(pid, SIGSTOP) }
        let started = Date()
        let stall = guest.waitForLine(timeout: 120) { $0.contains("virtio-fs: no answer from the host within 3 s") }
        let waited = Date().timeIntervalSince(started)
        for pid in backEnds { kill(pid, SIGCONT) }
        XCTAssertNotNil(stall, "no stall line\n" + ServiceGuest.describe(guest))
        XCTAssertGreaterThan(waited, 2, "the request waited its timeout")
        XCTAssertEqual(guest.wait(timeout: 120), .exited(1), ServiceGuest.describe(guest))
        let failure = guest.outputLines.first { $0.hasPrefix("fs-manifest: ") }
        XCTAssertTrue(failure?.hasPrefix("fs-manifest: cannot read ") == true && failure?.hasSuffix(": i/o error") == true,
                      ServiceGuest.describe(guest))
    }

    func testAMalformedFSTimeoutIsOneLineAndStatus2() throws {
        guard Harness.preflight() else { return }
        let share = NSTemporaryDirectory() + "toro-fstimeout-\(getpid())"
        try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: share) }
        let result = Harness.toro(["run", "--service", "fs-manifest", "--share", share + ":ro", "--timeout", "120",
                                   "--", "fs-timeout=0"], limit: 180)
        XCTAssertEqual(result.termination, .exited(2), Harness.describe(result))
        XCTAssertTrue(result.output.contains("devices: kernel argument fs-timeout must be between 1 and 3600"), Harness.describe(result))
    }

    func testAFolderPastTheListingBoundIsRefusedWithOneLine() throws {
        guard Harness.preflight() else { return }
        let share = NSTemporaryDirectory() + "toro-wide-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: share) }
        try FileManager.default.createDirectory(atPath: share + "/wide", withIntermediateDirectories: true)
        for index in 0..<70_000 {
            let fd = open(share + "/wide/f\(index)", O_CREAT | O_WRONLY, 0o644)
            XCTAssertGreaterThanOrEqual(fd, 0)
            close(fd)
        }
        let result = Harness.toro(["run", "--service", "fs-manifest", "--share", share + ":ro", "--timeout", "300"], limit: 360)
        let dump = Harness.describe(result)
        XCTAssertEqual(result.termination, .exited(1), "a clear refusal, not a crash (3)\n" + String(dump.suffix(3000)))
        XCTAssertEqual(printed(result.output), ["fs-manifest: cannot read wide: too large"], String(dump.suffix(3000)))
        XCTAssertTrue(result.output.contains("virtio-fs: a folder lists more entries than allowed (65536); the listing fails"),
                      String(dump.suffix(3000)))
    }

    /// The service's own lines after `ready: fs-manifest`, up to its last (`fs-manifest: ...`).
    func printed(_ output: String) -> [String] {
        let lines = Harness.lines(output)
        guard let ready = lines.firstIndex(of: "ready: fs-manifest") else { return [] }
        var printed: [String] = []
        for line in lines[(ready + 1)...] where KernelLog.stripTimestamp(Substring(line)) == nil {
            printed.append(line)
            if line.hasPrefix("fs-manifest: ") { break }
        }
        return printed
    }
}

/// The host's walk, by FSManifest's documented rules: regular files (and symlinks that
/// resolve to a regular file inside the folder), sorted by raw path bytes.
enum HostManifest {
    static func lines(of root: String) throws -> [String] {
        let realRoot = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
        var entries: [(path: [UInt8], file: String)] = []
        func walk(_ folder: String, _ relative: [UInt8]) throws {
            for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
                let full = folder + "/" + name
                let path = relative.isEmpty ? Array(name.utf8) : relative + [0x2F] + Array(name.utf8)
                var info = stat()
                guard lstat(full, &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR: try walk(full, path)
                case S_IFREG: entries.append((path, full))
                case S_IFLNK:
                    let target = URL(fileURLWithPath: full).resolvingSymlinksInPath().path
                    var resolved = stat()
                    guard target.hasPrefix(realRoot + "/"), stat(target, &resolved) == 0,
                          resolved.st_mode & S_IFMT == S_IFREG else { continue }
                    entries.append((path, target))
                default: continue
                }
            }
        }
        try walk(root, [])
        entries.sort { $0.path.lexicographicallyPrecedes($1.path) }
        var lines: [String] = []
        for entry in entries {
            let data = try Data(contentsOf: URL(fileURLWithPath: entry.file))
            var crc = CRC32()
            crc.update(Array(data))
            var escaped = ""
            var raw: [UInt8] = []
            for byte in entry.path {
                if byte < 0x20 || byte == 0x7F || byte == 0x5C { raw += Array(String(format: "\\x%02x", byte).utf8) } else { raw.append(byte) }
            }
            escaped = String(decoding: raw, as: UTF8.self)
            lines.append("\(escaped) \(data.count) \(String(format: "%08x", crc.value))")
        }
        lines.append("fs-manifest: \(entries.count) files")
        return lines
    }
}
