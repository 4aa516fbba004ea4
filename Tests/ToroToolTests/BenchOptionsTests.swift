// `toro bench boot` options: --runs and --cpus, the latter validated exactly as `run`
// validates it (1 to the kernel's 16), every error one line with status 64.

import XCTest
@testable import ToroTool

final class BenchOptionsTests: XCTestCase {
    func assertBadArgument(_ arguments: [String], message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try BenchCommand.parse(arguments), "\(arguments)", file: file, line: line) { error in
            let failure = error as! ToolFailure
            XCTAssertEqual(failure.status, .badArgument, file: file, line: line)
            XCTAssertEqual(failure.message, message, file: file, line: line)
        }
    }

    func testDefaults() throws {
        let options = try BenchCommand.parse(["boot"])
        XCTAssertEqual(options.runs, 11)
        XCTAssertEqual(options.cpus, 1)
    }

    func testCPUsAndRuns() throws {
        let options = try BenchCommand.parse(["boot", "--cpus", "4", "--runs", "3"])
        XCTAssertEqual(options.cpus, 4)
        XCTAssertEqual(options.runs, 3)
        XCTAssertEqual(try BenchCommand.parse(["boot", "--cpus=16"]).cpus, 16)
        XCTAssertEqual(try BenchCommand.parse(["boot", "--cpus", "1"]).cpus, 1)
    }

    func testCPUsAreValidatedAsRunValidatesThem() throws {
        assertBadArgument(["boot", "--cpus", "0"], message: "--cpus must be at least 1, got 0")
        assertBadArgument(["boot", "--cpus", "17"], message: "--cpus 17: the kernel supports at most 16 CPUs")
        assertBadArgument(["boot", "--cpus", "two"], message: "--cpus needs a number of CPUs, got 'two'")
        assertBadArgument(["boot", "--cpus"], message: "--cpus needs a value")
        assertBadArgument(["boot", "--cpus="], message: "--cpus needs a value")
        // The same messages as `run`'s.
        for value in ["0", "17", "two"] {
            var runMessage = ""
            do { _ = try RunOptions.parse(["--cpus", value]) } catch { runMessage = error.message }
            var benchMessage = ""
            do { _ = try BenchCommand.parse(["boot", "--cpus", value]) } catch { benchMessage = error.message }
            XCTAssertEqual(benchMessage, runMessage, value)
            XCTAssertFalse(runMessage.isEmpty, value)
        }
    }

    func testOtherMistakes() {
        assertBadArgument([], message: "bench needs a benchmark name: ./toro bench boot [--runs N] [--cpus N]")
        assertBadArgument(["boat"], message: "bench needs a benchmark name: ./toro bench boot [--runs N] [--cpus N]")
        assertBadArgument(["boot", "--memory", "64"], message: "unknown option '--memory' for 'bench boot' (see ./toro --help)")
        assertBadArgument(["boot", "--runs", "0"], message: "--runs must be between 1 and 1000, got 0")
        assertBadArgument(["boot", "--", "x=1"], message: "bench boot takes no kernel arguments (nothing after --)")
    }

    /// Refused before anything is installed, built or booted: status 64 from the command.
    func testTheCommandRefusesBadCPUs() {
        XCTAssertEqual(CLI.main(["bench", "boot", "--cpus", "17"]), ToroStatus.badArgument.rawValue)
        XCTAssertEqual(CLI.main(["bench", "boot", "--cpus", "0"]), ToroStatus.badArgument.rawValue)
    }

    func testUsageMentionsTheServicesListAndBenchCPUs() {
        XCTAssertTrue(Usage.overview.contains("./toro bench boot [--runs N] [--cpus N]"))
        XCTAssertTrue(Usage.overview.contains("bench boot --cpus N"))
        XCTAssertTrue(Usage.overview.contains("./toro services"))
        XCTAssertTrue(Usage.overview.contains("1 to 16"))
    }
}
