// Tier 2: a thread that overflows its stack hits the unmapped guard page below it; the
// exception runs on the CPU's own exception stack (IST), the report names the guard
// page, and the kernel exits with the panic status instead of corrupting memory.

import Foundation
import XCTest
import ToroTool

final class StackGuardBootTests: XCTestCase {
    func testStackOverflowIsReportedOnBothPlatforms() throws {
        guard Harness.preflight() else { return }
        let results = Harness.onBothPlatforms { platform in
            (platform, Harness.toro(["run", "--platform", platform.rawValue, "--service", "stackoverflow",
                                     "--timeout", "60"], limit: 120))
        }
        for (platform, result) in results {
            let dump = "\(platform): \(Harness.describe(result))"
            XCTAssertEqual(result.termination, .exited(3), dump)
            XCTAssertTrue(result.output.contains("vector 14 (#PF page fault)"), dump)
            XCTAssertTrue(result.output.contains("stack overflow: the address is a thread stack's guard page"), dump)
            XCTAssertFalse(result.output.contains("the recursion returned"), dump)
            // The faulting address lies in the thread-stack region (1 TiB and up).
            let cr2 = Harness.lines(result.output).compactMap {
                $0.contains("cr2=") ? MemtestReport.number(after: "cr2=", in: $0) : nil
            }
            XCTAssertTrue(cr2.contains { $0 >= 0x0000_0100_0000_0000 }, "cr2 is not in the stack region\n" + dump)
        }
    }
}
