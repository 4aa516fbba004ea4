// `toro new`: the template lands in one new folder, declares a service the tool can read,
// and bad or taken names are refused with nothing written.

import Foundation
import XCTest
@testable import ToroTool

final class NewCommandTests: XCTestCase {
    func temporaryRoot() throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("toro-new-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/Sources/Services/Probes/hello-probe", withIntermediateDirectories: true)
        try NewCommand.source("hello-probe").write(toFile: root + "/Sources/Services/Probes/hello-probe/hello-probe.swift",
                                                   atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: root) }
        return root
    }

    func testTheTemplateIsOneFolderWithADeclaredServiceAndItsTranscript() throws {
        let root = try temporaryRoot()
        let created = try NewCommand.create(["greeter"], root: root)
        XCTAssertEqual(created, ["Sources/Services/Applications/greeter/greeter.swift",
                                 "Sources/Services/Applications/greeter/expected"])
        let catalog = Services.catalog(root: root).compactMap { try? $0.get() }
        let greeter = try XCTUnwrap(catalog.first { $0.name == "greeter" })
        XCTAssertEqual(greeter.kind, .application)
        XCTAssertEqual(greeter.devices, [])
        XCTAssertFalse(greeter.summary.isEmpty)
        let source = try String(contentsOfFile: root + "/" + created[0], encoding: .utf8)
        XCTAssertTrue(source.contains("@_silgen_name(\"toro_service\")"))
        XCTAssertTrue(source.contains("context.ready()"))
        XCTAssertLessThanOrEqual(source.split(separator: "\n").count, 45)
        let expected = try String(contentsOfFile: root + "/" + created[1], encoding: .utf8)
        XCTAssertEqual(Transcript.parse(expected), ["ready: greeter", "greeter: hello from <platform>",
                                                    "greeter: the helper thread answered 42", "exit status: 0"])
    }

    func testBadOrTakenNamesAreRefusedAndNothingIsWritten() throws {
        let root = try temporaryRoot()
        for arguments in [[], ["Greeter"], ["a_b"], ["9lives"], ["hello-probe"], ["core"], ["x", "y"], ["--help"]] {
            XCTAssertThrowsError(try NewCommand.create(arguments, root: root), "\(arguments)")
        }
        let applications = root + "/Sources/Services/Applications"
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: applications)) ?? [], [])
    }
}
