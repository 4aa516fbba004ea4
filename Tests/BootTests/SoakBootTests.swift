// Tier 2: the soak (`toro bench soak`, SoakBench.swift) for a short time, through the same
// code path: kv and static-web each serve every good client's request right while an idle
// flood, slow readers, garbage and (kv) a key flood run beside them, and once everyone has
// gone the heap is back to its baseline and the guest still runs.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ToroTool

final class SoakBootTests: XCTestCase {
    static let seconds = 20

    func check(_ report: SoakBench.Report) {
        let text = report.allLines.joined(separator: "\n")
        print(text)
        XCTAssertEqual(report.failures, [], text)
        XCTAssertGreaterThan(report.goodSent, 50, "the good clients hardly ran\n" + text)
        XCTAssertEqual(report.goodAnswered, report.goodSent, text)
        XCTAssertNotNil(report.heapBefore, text)
        XCTAssertEqual(report.heapAfter, report.heapBefore, "the heap did not return to its baseline\n" + text)
        XCTAssertTrue(report.guestRunning, text)
        XCTAssertGreaterThan(report.floodClosedByGuest, 0, "the idle flood was never refused\n" + text)
        XCTAssertGreaterThan(report.garbageConnections, 0, text)
        XCTAssertTrue(report.passed, text)
    }

    func testKVSoak() {
        guard Harness.preflight() else { return }
        guard let guest = ServiceGuest.boot(service: "kv", port: true, timeout: 900) else { return }
        defer { ServiceGuest.stop(guest) }
        let report = SoakBench.soak(service: "kv", guest: guest, seconds: Self.seconds)
        check(report)
        // The store refused at its limit: the warm-up floods until it does, whatever the machine's
        // speed; the soak's own flood is load beside the good clients and may not get there in 20 s
        // on a busy machine (a rate, which a test must not assert: README, "Speed").
        XCTAssertGreaterThan(report.warmUpFullReplies + report.fullReplies, 0, "the key flood never reached the limit\n" + report.allLines.joined(separator: "\n"))
    }

    func testStaticWebSoak() throws {
        guard Harness.preflight() else { return }
        let folder = NSTemporaryDirectory() + "toro-soak-test-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let files = try SoakBench.webFiles(in: folder)
        guard let guest = ServiceGuest.boot(service: "static-web", arguments: ["--share", folder], port: true, timeout: 900) else { return }
        defer { ServiceGuest.stop(guest) }
        check(SoakBench.soak(service: "static-web", guest: guest, seconds: Self.seconds, files: files))
    }
}
