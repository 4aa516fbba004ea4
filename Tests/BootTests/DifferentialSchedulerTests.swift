// Tier 3: every Compat scenario for the SMP and scheduler services (intercore, threads)
// through `toro compare --service S --cpus N`, the command users run: both platforms
// must print the same transcript, and it must be that folder's `expected`.
//
// The folders are found, not listed, so a new Compat/intercore-16 is tested once added.
// Two compares run at once (each boots one QEMU at a time).

import Foundation
import XCTest
import ToroTool

final class DifferentialSchedulerTests: XCTestCase {
    static let services: Set<String> = ["intercore", "threads"]

    func testEveryIntercoreAndThreadsScenarioMatches() throws {
        guard Harness.preflight() else { return }
        let compat = Harness.paths.compat
        var folders: [(name: String, service: String, cpus: Int)] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: compat).sorted() {
            guard let text = try? String(contentsOfFile: "\(compat)/\(name)/scenario", encoding: .utf8) else { continue }
            let scenario: Scenario
            do { scenario = try Scenario.parse(text, file: "Compat/\(name)/scenario") } catch {
                XCTFail(error.message); continue
            }
            let service = scenario.service ?? name
            guard Self.services.contains(service) else { continue }
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(compat)/\(name)/expected"),
                          "Compat/\(name) has a scenario but no expected transcript")
            folders.append((name, service, scenario.cpus ?? 1))
        }
        for service in Self.services {
            XCTAssertTrue(folders.contains { $0.service == service }, "no Compat scenario for \(service) in \(compat)")
        }

        let chosen = folders
        let runs = Harness.twoAtATime(chosen.count) { index in
            let folder = chosen[index]
            let arguments = ["compare", "--service", folder.service, "--cpus", "\(folder.cpus)"]
            return (folder.name, arguments, Harness.toro(arguments, limit: 240))
        }
        for (name, arguments, result) in runs {
            let dump = "Compat/\(name): toro \(arguments.joined(separator: " ")): \(Harness.describe(result))"
            XCTAssertEqual(result.termination, .exited(0), dump)
            XCTAssertTrue(result.output.contains("match: microvm and legacy transcripts are identical"), dump)
            XCTAssertTrue(result.output.contains("match: microvm matches Compat/\(name)/expected\n"), dump)
            XCTAssertTrue(result.output.contains("match: legacy matches Compat/\(name)/expected\n"), dump)
            XCTAssertTrue(result.output.hasSuffix("compare: everything matches\n"), dump)
        }
    }
}
