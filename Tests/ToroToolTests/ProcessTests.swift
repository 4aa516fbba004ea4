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
}
