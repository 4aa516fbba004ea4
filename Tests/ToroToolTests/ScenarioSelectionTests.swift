// Which Compat scenario `toro compare` uses (CompareCommand.scenario(for:compat:)): among
// the folders whose scenario names the service (or, with no `service:` key, that are
// named after it), the one whose CPU count is the --cpus given; without --cpus, the
// folder named after the service, else the first by name; nil when none fits.

import XCTest
@testable import ToroTool

final class ScenarioSelectionTests: XCTestCase {
    var compat = ""

    override func setUpWithError() throws {
        compat = FileManager.default.temporaryDirectory
            .appendingPathComponent("toro-compat-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        // name: scenario text (nil: a folder with an expected transcript but no scenario)
        let folders: [(String, String?)] = [
            ("a-threads", "service: threads\ncpus: 2\n"),       // sorts before "threads"
            ("threads", "description: named after the service, no service: key, 1 CPU by default\n"),
            ("threads-4", "service: threads\ncpus: 4\n"),
            ("intercore-1", "service: intercore\ncpus: 1\n"),
            ("intercore-4", "service: intercore\ncpus: 4\nmemory: 128\n"),
            ("intercore-8", "service: intercore\ncpus: 8\n"),
            ("greeting", "service: hello\n"),
            ("notes", nil),
        ]
        for (name, scenario) in folders {
            let folder = compat + "/" + name
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try "exit status: 0\n".write(toFile: folder + "/expected", atomically: true, encoding: .utf8)
            if let scenario { try scenario.write(toFile: folder + "/scenario", atomically: true, encoding: .utf8) }
        }
        // A stray file at the top level is not a scenario.
        try "not a folder\n".write(toFile: compat + "/README.md", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: compat)
    }

    /// The folder `compare <arguments>` would use in `folder` (default: the temporary one).
    func chosen(_ arguments: [String], in folder: String? = nil) throws -> String? {
        let options = try RunOptions.parse(arguments, command: "compare").0
        return try CompareCommand.scenario(for: options, compat: folder ?? compat)?.name
    }

    func testPicksTheFolderForTheCPUCountGiven() throws {
        XCTAssertEqual(try chosen(["--service", "intercore", "--cpus", "1"]), "intercore-1")
        XCTAssertEqual(try chosen(["--service", "intercore", "--cpus", "4"]), "intercore-4")
        XCTAssertEqual(try chosen(["--service", "intercore", "--cpus=8"]), "intercore-8")
        XCTAssertEqual(try chosen(["--service", "threads", "--cpus", "2"]), "a-threads")
        XCTAssertEqual(try chosen(["--service", "threads", "--cpus", "4"]), "threads-4")
        // A scenario without `cpus:` means 1 CPU.
        XCTAssertEqual(try chosen(["--service", "threads", "--cpus", "1"]), "threads")
        XCTAssertEqual(try chosen(["--service", "hello", "--cpus", "1"]), "greeting")
    }

    func testTheChosenScenarioSuppliesWhatNoFlagGives() throws {
        let options = try RunOptions.parse(["--service", "intercore", "--cpus", "4"], command: "compare").0
        let scenario = try XCTUnwrap(try CompareCommand.scenario(for: options, compat: compat))
        let applied = try scenario.scenario.applied(to: options)
        XCTAssertEqual(applied.cpus, 4)
        XCTAssertEqual(applied.memoryMiB, 128)
        XCTAssertEqual(applied.service, "intercore")
    }

    func testWithoutCPUsTheFolderNamedAfterTheServiceWins() throws {
        // "a-threads" sorts first, but "threads" is named after the service.
        XCTAssertEqual(try chosen(["--service", "threads"]), "threads")
        // No folder is called "intercore": the first by name.
        XCTAssertEqual(try chosen(["--service", "intercore"]), "intercore-1")
        // A folder whose scenario names the service counts, whatever its name.
        XCTAssertEqual(try chosen(["--service", "hello"]), "greeting")
        XCTAssertEqual(try chosen([]), "greeting")
    }

    func testNilWhenNothingFits() throws {
        XCTAssertNil(try chosen(["--service", "intercore", "--cpus", "2"]))
        XCTAssertNil(try chosen(["--service", "intercore", "--cpus", "16"]))
        XCTAssertNil(try chosen(["--service", "hello", "--cpus", "4"]))
        XCTAssertNil(try chosen(["--service", "clock"]))
        XCTAssertNil(try chosen(["--service", "clock", "--cpus", "1"]))
        XCTAssertNil(try chosen(["--service", "hello"], in: compat + "/no-such-folder"))
    }

    func testAMalformedScenarioIsAnErrorNamingItsFile() throws {
        try "cpus: 17\n".write(toFile: compat + "/threads-4/scenario", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try chosen(["--service", "threads", "--cpus", "4"])) { error in
            let failure = error as! ToolFailure
            XCTAssertEqual(failure.status, .badArgument)
            XCTAssertTrue(failure.message.hasPrefix("Compat/threads-4/scenario:1: cpus must be between 1 and 16"),
                          failure.message)
        }
    }

    /// The shipped Compat folders: what `compare --service S --cpus N` uses for each.
    func testShippedScenarios() throws {
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Compat").path
        for cpus in [1, 2, 4, 8] {
            XCTAssertEqual(try chosen(["--service", "intercore", "--cpus", "\(cpus)"], in: shipped), "intercore-\(cpus)")
        }
        XCTAssertNil(try chosen(["--service", "intercore", "--cpus", "3"], in: shipped))
        XCTAssertEqual(try chosen(["--service", "threads", "--cpus", "1"], in: shipped), "threads-1")
        XCTAssertEqual(try chosen(["--service", "threads", "--cpus", "4"], in: shipped), "threads-4")
        XCTAssertEqual(try chosen(["--service", "hello"], in: shipped), "hello")
        XCTAssertEqual(try chosen(["--service", "intercore"], in: shipped), "intercore-1")
    }
}
