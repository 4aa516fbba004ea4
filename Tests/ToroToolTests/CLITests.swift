// Dispatch of the `toro` command: bad commands and arguments end with status 64 before
// anything is built or started.

import XCTest
@testable import ToroTool

final class CLITests: XCTestCase {
    func testUsageAndHelp() {
        XCTAssertEqual(CLI.main([]), 0)
        XCTAssertEqual(CLI.main(["--help"]), 0)
        XCTAssertEqual(CLI.main(["run", "--help"]), 0)
        XCTAssertEqual(CLI.main(["services"]), 0)
    }

    func testBadCommandsAndArguments() {
        for arguments in [["bogus"], ["services", "extra"], ["bench"], ["bench", "boot", "--runs", "0"],
                          ["build", "--platform", "pdp11"], ["build", "--", "x"], ["test", "now"],
                          ["run", "--service", "nosuch"], ["run", "--platform", "nosuch"], ["run", "--memory", "1"],
                          ["compare", "--platform", "legacy"], ["compare", "--expect", "/no/such/file"]] {
            XCTAssertEqual(CLI.main(arguments), ToroStatus.badArgument.rawValue, "\(arguments)")
        }
    }
}
