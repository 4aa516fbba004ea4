// Tier 2: several CPUs. --cpus is checked against the kernel's limit before anything
// starts; the kernel reports how many CPUs came up; 100,000 threads across 4 CPUs all
// finish and give every byte of heap back.

import Foundation
import XCTest
import ToroTool

final class SMPBootTests: XCTestCase {
    func assertRefused(_ arguments: [String], message: String, file: StaticString = #filePath, line: UInt = #line) {
        let result = Harness.toro(arguments, limit: 30)
        let dump = "toro \(arguments.joined(separator: " ")): \(Harness.describe(result))"
        XCTAssertEqual(result.termination, .exited(64), dump, file: file, line: line)
        XCTAssertEqual(result.errorOutput, "toro: \(message)\n", "expected exactly this one line on stderr\n" + dump,
                       file: file, line: line)
        XCTAssertEqual(result.output, "", "printed guest output: a QEMU started\n" + dump, file: file, line: line)
        XCTAssertLessThan(result.seconds, 10, "too slow for a refusal: something was built or started\n" + dump,
                          file: file, line: line)
    }

    func testCPUCountsOutsideTheKernelsLimitAreRefused() {
        guard Harness.preflight() else { return }
        for command in ["run", "compare"] {
            assertRefused([command, "--service", "intercore", "--cpus", "0"], message: "--cpus must be at least 1, got 0")
            assertRefused([command, "--service", "intercore", "--cpus", "17"],
                          message: "--cpus 17: the kernel supports at most 16 CPUs")
        }
        assertRefused(["bench", "boot", "--cpus", "17"], message: "--cpus 17: the kernel supports at most 16 CPUs")
    }

    func testTwoCPUsComeUpAndAnswer() throws {
        guard Harness.preflight() else { return }
        let results = Harness.onBothPlatforms { platform in
            (platform, Harness.toro(["run", "--platform", platform.rawValue, "--service", "intercore",
                                     "--cpus", "2", "--timeout", "60"], limit: 120))
        }
        for (platform, result) in results {
            let dump = "\(platform): \(Harness.describe(result))"
            XCTAssertEqual(result.termination, .exited(0), dump)
            let lines = Harness.lines(result.output)
            let running = lines.firstIndex { KernelLog.stripTimestamp(Substring($0)) == "boot: 2 CPUs running" }
            let ready = lines.firstIndex(of: "ready: intercore")
            XCTAssertNotNil(running, "no 'boot: 2 CPUs running' log line\n" + dump)
            XCTAssertNotNil(ready, dump)
            if let running, let ready { XCTAssertLessThan(running, ready, "the CPUs came up after the service started\n" + dump) }
            for expected in ["intercore: 2 CPUs", "intercore: CPU 0 sent ping to CPU 1", "intercore: CPU 1 answered pong",
                             "intercore: ok"] {
                XCTAssertTrue(lines.contains(expected), "no '\(expected)'\n" + dump)
            }
        }
    }

    func testHundredThousandThreadsOnFourCPUsReturnTheHeap() throws {
        guard Harness.preflight() else { return }
        let results = Harness.onBothPlatforms { platform in
            (platform, Harness.toro(["run", "--platform", platform.rawValue, "--service", "threadstress",
                                     "--cpus", "4", "--memory", "512", "--timeout", "150", "--", "threads=100000"],
                                    limit: 200))
        }
        for (platform, result) in results {
            let dump = "\(platform): \(Harness.describe(result))"
            XCTAssertEqual(result.termination, .exited(0), dump)
            // Some report lines are kernel log lines: compare their text after the timestamp.
            let lines = Harness.lines(result.output).map { KernelLog.stripTimestamp(Substring($0)).map(String.init) ?? $0 }
            XCTAssertTrue(lines.contains("threadstress: 100000 threads finished"), dump)
            XCTAssertTrue(lines.contains("threadstress: heap back to baseline"), dump)
            let baseline = lines.lazy.compactMap { HeapFigures(line: $0, after: "threadstress: heap baseline: in use ") }.first
            let after = lines.lazy.compactMap { HeapFigures(line: $0, after: "threadstress: heap after: in use ") }.first
            XCTAssertNotNil(baseline, "no 'threadstress: heap baseline: in use B bytes in A allocations'\n" + dump)
            XCTAssertNotNil(after, "no 'threadstress: heap after: B bytes in A allocations'\n" + dump)
            if let baseline, let after {
                XCTAssertEqual(after, baseline, "\(platform): the heap did not return to its baseline\n" + dump)
                XCTAssertGreaterThan(baseline.bytes, 0, dump)
            }
        }
    }
}

/// `B bytes in A allocations`, as the heap reports it.
struct HeapFigures: Equatable {
    var bytes: Int
    var allocations: Int

    /// The figures in `line` after `prefix`, or nil when the line is not that report.
    init?(line: String, after prefix: String) {
        guard line.hasPrefix(prefix) else { return nil }
        let words = line.dropFirst(prefix.count).split(separator: " ")
        guard words.count == 5, words[1] == "bytes", words[2] == "in", words[4] == "allocations",
              let bytes = Int(words[0]), let allocations = Int(words[3]) else { return nil }
        self.bytes = bytes
        self.allocations = allocations
    }
}
