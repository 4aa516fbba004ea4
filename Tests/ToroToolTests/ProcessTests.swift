// Subprocess: capture, exit codes, timeouts that kill the whole process group, and the
// test-result counter `toro test` prints its summary from.

import XCTest
@testable import ToroTool

final class ProcessTests: XCTestCase {
    func testCaptureAndExitCode() {
        var process = Subprocess(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
        process.timeout = 10
        let result = process.run()
        XCTAssertEqual(result.termination, .exited(3))
        XCTAssertEqual(result.output, "out\n")
        XCTAssertEqual(result.errorOutput, "err\n")
    }

    func testMergedAndDirectory() {
        var process = Subprocess(["/bin/sh", "-c", "pwd; echo err >&2"])
        process.mergeStderr = true
        process.directory = "/tmp"
        let result = process.run()
        XCTAssertEqual(result.output, "/tmp\nerr\n")
    }

    func testTimeoutKillsTheGroup() throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("toro-\(getpid())-pid").path
        var process = Subprocess(["/bin/sh", "-c", "sleep 30 & echo $! > \(marker); wait"])
        process.timeout = 0.5
        let start = Date()
        let result = process.run()
        XCTAssertEqual(result.termination, .timedOut)
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        let child = Int32(try String(contentsOfFile: marker, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        try? FileManager.default.removeItem(atPath: marker)
        usleep(200_000)
        // Gone, or a zombie waiting for its new parent to reap it: either way not running.
        let state = (try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8))?
            .split(separator: ")").last?.split(separator: " ").first
        XCTAssertTrue(state == nil || state == "Z", "the grandchild survived the timeout (state \(state ?? ""))")
    }

    func testFailedToStart() {
        let result = Subprocess(["/no/such/program"]).run()
        guard case .failedToStart = result.termination else { return XCTFail("\(result.termination)") }
    }

    func testCountTestResults() {
        let output = """
            Test Suite 'All tests' started
            Test Case 'A.testOne' started at 2025
            Test Case 'A.testOne' passed (0.001 seconds)
            Test Case 'A.testTwo' failed (0.002 seconds)
            Executed 2 tests, with 1 failure (0 unexpected) in 0.003 (0.003) seconds
            ◇ Test run started.
            ✔ Test parsesThings() passed after 0.001 seconds.
            ✘ Test breaks() recorded an issue at X.swift:3:5: Expectation failed
            ✘ Test breaks() failed after 0.002 seconds with 1 issue.
            ✔ Suite Things passed after 0.003 seconds.
            ✘ Test run with 2 tests in 1 suite failed after 0.004 seconds with 1 issue.
            """
        XCTAssertEqual(TestCommand.count(output), TestCommand.Tally(passed: 2, failed: 2))
    }

    /// A guest that prints without end cannot exhaust the tool's memory: the capture keeps
    /// its first and last halves and says what it left out.
    func testCaptureIsBoundedAndKeepsTheStartAndTheEnd() {
        var process = Subprocess(["sh", "-c", "printf start; head -c 5000000 /dev/zero | tr '\\0' a; printf end"])
        process.captureLimit = 100_000
        process.timeout = 60
        let result = process.run()
        XCTAssertEqual(result.termination, .exited(0))
        XCTAssertLessThan(result.output.utf8.count, 100_100)
        XCTAssertTrue(result.output.hasPrefix("startaaa"))
        XCTAssertTrue(result.output.hasSuffix("aaaend"))
        XCTAssertTrue(result.output.contains(" bytes of console output not kept]\n"), String(result.output.prefix(200)))
    }

    /// The guest's console is shown, not obeyed: escape sequences reach the terminal as text.
    func testTerminalControlBytesAreMadeVisible() {
        let hostile = Array("ok\u{1b}]52;c;cm0gLXJm\u{07}\u{1b}[2J\r\n\tx\u{7f}".utf8)
        XCTAssertEqual(String(decoding: Subprocess.visible(hostile[...]), as: UTF8.self), "ok^[]52;c;cm0gLXJm^G^[[2J\r\n\tx^?")
        let plain = Array("[  0.1] boot: ready\n".utf8)
        XCTAssertEqual(Subprocess.visible(plain[...]), plain)
    }
}

/// The back-ends' socket folders in a shared /tmp: private, and never through a link.
final class BackendFolderTests: XCTestCase {
    func testTheFolderIsPrivateAndALinkInItsPlaceIsRefused() throws {
        let base = NSTemporaryDirectory() + "toro-folder-test-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: base); try? FileManager.default.removeItem(atPath: base + "-target") }
        try HostBackend.makePrivateDirectory(base)
        var info = stat()
        XCTAssertEqual(lstat(base, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o700)
        FileManager.default.createFile(atPath: base + "/old.sock", contents: Data())
        try HostBackend.makePrivateDirectory(base)           // a leftover of ours: emptied and reused
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: base), [])
        try FileManager.default.removeItem(atPath: base)
        try FileManager.default.createDirectory(atPath: base + "-target", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: base, withDestinationPath: base + "-target")
        XCTAssertThrowsError(try HostBackend.makePrivateDirectory(base)) { error in
            XCTAssertTrue((error as? ToolFailure)?.message.contains("is not a folder of this user's") ?? false, "\(error)")
        }
    }

    /// A run stopped by a signal leaves its folder; the next run removes those whose toro
    /// is gone, and nothing else (a live run's, another name, a link).
    func testFoldersOfRunsThatAreGoneAreSwept() throws {
        let parent = NSTemporaryDirectory() + "toro-sweep-test-\(getpid())"
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: parent) }
        // A PID that existed and is gone: a child that has exited and been reaped.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let gone = child.processIdentifier
        for name in ["toro-vsock-\(gone)", "toro-fs-\(gone)", "toro-vsock-\(getpid())", "toro-vsock-x1", "other-\(gone)"] {
            try FileManager.default.createDirectory(atPath: parent + "/" + name, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: parent + "/" + name + "/vsock.sock", contents: Data())
        }
        try FileManager.default.createSymbolicLink(atPath: parent + "/toro-fs-\(gone + 1)", withDestinationPath: parent + "/other-\(gone)")
        HostBackend.sweepStaleDirectories(in: parent)
        let left = try FileManager.default.contentsOfDirectory(atPath: parent).sorted()
        XCTAssertEqual(left, ["other-\(gone)", "toro-fs-\(gone + 1)", "toro-vsock-\(getpid())", "toro-vsock-x1"].sorted())
    }
}
