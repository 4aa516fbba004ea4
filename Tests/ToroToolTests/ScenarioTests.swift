// Compat scenario files: parsing, malformed input, and how they combine with flags.

import XCTest
@testable import ToroTool

final class ScenarioTests: XCTestCase {
    func testParse() throws {
        let scenario = try Scenario.parse("""
            # a comment
            description: the greeting\r
            service: hello

            args: a=1  b=2
            cpus: 2
            memory: 128
            """, file: "S")
        XCTAssertEqual(scenario.service, "hello")
        XCTAssertEqual(scenario.args, ["a=1", "b=2"])
        XCTAssertEqual(scenario.cpus, 2)
        XCTAssertEqual(scenario.memoryMiB, 128)
        XCTAssertEqual(scenario.description, "the greeting")
    }

    func testMalformed() {
        let cases: [(String, String)] = [
            ("service hello", "S:1: expected 'key: value'"),
            ("\nspeed: 3", "S:2: unknown key 'speed'"),
            ("cpus: 1\ncpus: 2", "S:2: 'cpus' given twice"),
            ("cpus: many", "S:1: cpus needs a number of CPUs"),
            ("cpus: 0", "S:1: cpus must be between 1 and 16"),
            ("memory: -4", "S:1: memory needs a size in MiB"),
            ("service: nosuch", "S:1: unknown service 'nosuch'"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try Scenario.parse(text, file: "S"), text) { error in
                let failure = error as! ToolFailure
                XCTAssertEqual(failure.status, .badArgument)
                XCTAssertTrue(failure.message.hasPrefix(message), "'\(failure.message)' for '\(text)'")
            }
        }
    }

    func testFlagsOverrideScenario() throws {
        var scenario = Scenario()
        scenario.cpus = 2
        scenario.memoryMiB = 128
        scenario.args = ["x=1"]
        let plain = try scenario.applied(to: try RunOptions.parse([], command: "compare").0)
        XCTAssertEqual(plain.cpus, 2)
        XCTAssertEqual(plain.memoryMiB, 128)
        XCTAssertEqual(plain.kernelArgs, ["x=1"])
        let flagged = try scenario.applied(to: try RunOptions.parse(["--memory", "64", "--", "y"], command: "compare").0)
        XCTAssertEqual(flagged.cpus, 2)
        XCTAssertEqual(flagged.memoryMiB, 64)
        XCTAssertEqual(flagged.kernelArgs, ["y"])
    }

    func testScenarioShare() throws {
        let scenario = try Scenario.parse("share: files:ro\n", file: "S")
        XCTAssertEqual(scenario.share, SharedFolder(path: "files", readOnly: true))
        for bad in ["share: ../x", "share: /etc", "share: :ro", "share: a/../../b"] {
            XCTAssertThrowsError(try Scenario.parse(bad, file: "S"), bad)
        }
        let compat = FileManager.default.temporaryDirectory.path + "/toro-scenario-\(getpid())"
        try FileManager.default.createDirectory(atPath: compat + "/files", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: compat) }
        let plain = try scenario.applied(to: try RunOptions.parse([], command: "compare").0, folder: compat)
        XCTAssertEqual(plain.shares, [SharedFolder(path: compat + "/files", readOnly: true)])
        let given = try scenario.applied(to: try RunOptions.parse(["--share", "/tmp"], command: "compare").0, folder: compat)
        XCTAssertEqual(given.shares, [SharedFolder(path: "/tmp", readOnly: false)], "--share wins")
        XCTAssertThrowsError(try scenario.applied(to: RunOptions(), folder: compat + "/missing"))
    }

    func testShippedScenariosParse() throws {
        let compat = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Compat")
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: compat.path)) ?? []
        for folder in folders {
            let file = compat.appendingPathComponent(folder).appendingPathComponent("scenario")
            guard let text = try? String(contentsOf: file, encoding: .utf8) else { continue }
            XCTAssertNoThrow(try Scenario.parse(text, file: "Compat/\(folder)/scenario"))
        }
    }
}
