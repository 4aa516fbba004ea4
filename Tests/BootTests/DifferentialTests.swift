// Tier 3: the same service on both platforms must print the same service transcript,
// checked through `toro compare`, the command users run (one code path).

import Foundation
import XCTest
import ToroTool

final class DifferentialTests: XCTestCase {
    var expectedPath: String { Harness.paths.compat + "/hello/expected" }

    func testHelloMatchesOnBothPlatformsAndTheExpectedTranscript() throws {
        guard Harness.preflight() else { return }
        XCTAssertTrue(FileManager.default.fileExists(atPath: expectedPath), "\(expectedPath) is missing")
        let result = Harness.toro(["compare", "--service", "hello"])
        let dump = Harness.describe(result)
        XCTAssertEqual(result.termination, .exited(0), dump)
        XCTAssertTrue(result.output.contains("match: microvm and legacy transcripts are identical"), dump)
        XCTAssertTrue(result.output.contains("match: microvm matches Compat/hello/expected"), dump)
        XCTAssertTrue(result.output.contains("match: legacy matches Compat/hello/expected"), dump)
        XCTAssertTrue(result.output.hasSuffix("compare: everything matches\n"), dump)
    }

    func testDoctoredExpectationFailsWithADiffNamingTheLine() throws {
        guard Harness.preflight() else { return }
        let expected = try String(contentsOfFile: expectedPath, encoding: .utf8)
        var lines = Transcript.parse(expected)
        guard let index = lines.firstIndex(where: { $0.hasPrefix("Hello from Toro") }) else {
            return XCTFail("Compat/hello/expected has no greeting line:\n\(expected)")
        }
        let original = lines[index]
        lines[index] = original.replacingOccurrences(of: "Hello", with: "Goodbye")
        let doctored = FileManager.default.temporaryDirectory.appendingPathComponent("toro-doctored-\(getpid())").path
        try Transcript.render(lines).write(toFile: doctored, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: doctored) }

        let result = Harness.toro(["compare", "--service", "hello", "--expect", doctored])
        let dump = Harness.describe(result)
        XCTAssertEqual(result.termination, .exited(1), dump)
        XCTAssertTrue(result.output.contains("DIFFER: microvm differs from \(doctored)"), dump)
        XCTAssertTrue(result.output.contains("\n-\(lines[index])\n+\(original)\n"), dump)
        XCTAssertTrue(result.output.hasSuffix("compare: transcripts differ\n"), dump)
    }
}
