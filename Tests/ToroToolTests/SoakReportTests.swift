// The soak report (SoakBench.Report): a failed soak shows the back-ends' lines (`toro run`'s
// stderr), since a broken ring or a refused guest is only told there; a passing one does not.

import XCTest
@testable import ToroTool

final class SoakReportTests: XCTestCase {
    func testBackendLinesAreTheBackEndsOnly() {
        let stderr = ["toro: something of toro's own", "toro-vsock: tx queue broken by the guest: x; ignoring it until reset",
                      "qemu-system-x86_64: a warning", "toro-fs: read failed"]
        XCTAssertEqual(SoakBench.backendLines(stderr),
                       ["toro-vsock: tx queue broken by the guest: x; ignoring it until reset", "toro-fs: read failed"])
    }

    func testManyBackendLinesKeepTheFirstAndTheLast() {
        let stderr = (0..<100).map { "toro-vsock: line \($0)" }
        let kept = SoakBench.backendLines(stderr, keep: 3)
        XCTAssertEqual(kept, ["toro-vsock: line 0", "toro-vsock: line 1", "toro-vsock: line 2", "… 94 more …",
                              "toro-vsock: line 97", "toro-vsock: line 98", "toro-vsock: line 99"])
    }

    func testAFailedReportShowsTheBackEndLines() {
        var report = SoakBench.Report(service: "kv", seconds: 20)
        report.goodSent = 10
        report.goodAnswered = 10
        report.heapBefore = SoakBench.IdleHeap(bytes: 1, allocations: 1)
        report.heapAfter = report.heapBefore
        report.backendLines = ["toro-vsock: tx queue broken by the guest: x"]
        XCTAssertTrue(report.passed)
        XCTAssertFalse(report.lines.contains { $0.contains("toro-vsock:") })
        XCTAssertTrue(report.allLines.contains("    toro-vsock: tx queue broken by the guest: x"),
                      "the boot test's messages carry them even so")

        report.guestRunning = false
        XCTAssertFalse(report.passed)
        XCTAssertTrue(report.lines.contains("  the back-ends' log (toro run's stderr):"))
        XCTAssertTrue(report.lines.contains("    toro-vsock: tx queue broken by the guest: x"))
        XCTAssertEqual(report.allLines, report.lines)

        report.backendLines = []
        XCTAssertTrue(report.lines.contains("  the back-ends' log (toro run's stderr): nothing"))
    }
}
