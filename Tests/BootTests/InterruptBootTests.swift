// Tier 2: an interrupt nobody handles (irqtest) is logged, acknowledged and ignored;
// the service carries on and exits 0, on both platforms.

import Foundation
import XCTest
import ToroTool

final class InterruptBootTests: XCTestCase {
    func testUnexpectedInterruptIsAcknowledgedAndIgnored() throws {
        guard Harness.preflight() else { return }
        let results = Harness.onBothPlatforms { platform in
            (platform, Harness.toro(["run", "--platform", platform.rawValue, "--service", "irqtest", "--timeout", "60"],
                                    limit: 120))
        }
        for (platform, result) in results {
            let dump = "\(platform): \(Harness.describe(result))"
            XCTAssertEqual(result.termination, .exited(0), dump)
            let lines = Harness.lines(result.output)
            let logged = lines.firstIndex {
                KernelLog.stripTimestamp(Substring($0)) == "interrupt: unexpected vector 248, acknowledged and ignored"
            }
            let carriedOn = lines.firstIndex(of: "irqtest: ok, still running")
            XCTAssertNotNil(logged, "no timestamped 'interrupt: unexpected vector 248, acknowledged and ignored' log line\n" + dump)
            XCTAssertNotNil(carriedOn, "no 'irqtest: ok, still running'\n" + dump)
            if let logged, let carriedOn {
                XCTAssertLessThan(logged, carriedOn, "the service went on before the interrupt was logged\n" + dump)
            }
        }
    }
}
