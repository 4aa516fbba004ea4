// One image per service: the image holds its service alone, refuses to run another, and a
// service made by `toro new` runs on both platforms and passes its own test with nothing
// else edited.

import Foundation
import XCTest
import ToroTool

final class ServiceImageBootTests: XCTestCase {
    /// The Swift modules an image's symbols come from: Embedded Swift mangles a symbol as
    /// `$e<length><module>…`.
    static func modules(ofSymbolsIn image: String) throws -> Set<String> {
        var process = Subprocess(["llvm-nm", "--defined-only", image])
        process.timeout = 60
        let result = process.run()
        guard result.exitCode == 0 else { throw XCTSkip("llvm-nm failed: \(Harness.describe(result))") }
        var modules: Set<String> = []
        for line in result.output.split(separator: "\n") {
            guard let symbol = line.split(separator: " ").last, symbol.hasPrefix("$e") else { continue }
            let rest = symbol.dropFirst(2)
            let digits = rest.prefix { $0.isNumber }
            guard let length = Int(digits), length > 0 else { continue }
            let name = rest.dropFirst(digits.count).prefix(length)
            if name.count == length { modules.insert(String(name)) }
        }
        return modules
    }

    func testTheHelloImageHoldsNoOtherServiceOrLibrary() throws {
        guard Harness.preflight() else { return }
        let others = Set(Services.all.map(\.module)).subtracting(["hello"])
        let libraries = Set(ImageLinker(paths: Harness.paths).libraryModules())
        XCTAssertFalse(others.isEmpty)
        for platform in GuestPlatform.allCases {
            let image = Harness.paths.image(platform, service: "hello").replacingOccurrences(of: ".elf", with: ".debug.elf")
            let modules = try Self.modules(ofSymbolsIn: image)
            XCTAssertTrue(modules.contains("hello"), "\(platform): no symbol of the hello module in \(image)")
            XCTAssertTrue(modules.contains("Core"), "\(platform): no symbol of Core in \(image)")
            XCTAssertEqual(modules.intersection(others), [], "\(platform): hello's image holds other services")
            XCTAssertEqual(modules.intersection(libraries), [], "\(platform): hello's image holds service libraries")
        }
    }

    func testAnImageRefusesACommandLineNamingAnotherService() throws {
        guard Harness.preflight() else { return }
        let results = Harness.onBothPlatforms { platform -> (GuestPlatform, ProcessResult) in
            let command = QEMUCommand(platform: platform, accelerator: .tcg, memoryMiB: 64, cpus: 1,
                                      kernelPath: Harness.paths.image(platform, service: "hello"),
                                      kernelCommandLine: "service=kv")
            var process = Subprocess(command.arguments)
            process.timeout = 60
            return (platform, process.run())
        }
        for (platform, result) in results {
            let dump = Harness.describe(result)
            // isa-debug-exit: QEMU exits with (status << 1) | 1; status 2 is badCommandLine.
            XCTAssertEqual(result.termination, .exited(5), "\(platform): \(dump)")
            XCTAssertTrue(result.output.contains("boot: this image runs the service 'hello', not 'kv'"), "\(platform): \(dump)")
        }
    }

    /// What a user does first: `toro new`, then run on both platforms and compare; the new
    /// service's own `expected` transcript is its test. Only the new folder appears.
    func testANewServiceRunsOnBothPlatformsAndPassesItsOwnTest() throws {
        guard Harness.preflight() else { return }
        let name = "selftest-greeter"
        let folder = Harness.root + "/Sources/Services/Applications/" + name
        try? FileManager.default.removeItem(atPath: folder)
        let created = try NewCommand.create([name], root: Harness.root)
        Services.reload()
        defer {
            try? FileManager.default.removeItem(atPath: folder)
            try? FileManager.default.removeItem(atPath: Harness.paths.imageFolder(name))
            Services.reload()
        }
        XCTAssertEqual(created, ["Sources/Services/Applications/\(name)/\(name).swift",
                                 "Sources/Services/Applications/\(name)/expected"])
        var builder = KernelBuilder(paths: Harness.paths)
        builder.honoursNoBuild = false
        for platform in GuestPlatform.allCases {
            do { try builder.build(platform, service: name) } catch { return XCTFail("building \(name): \(error.message)") }
        }
        let listing = Harness.toro(["services"])
        XCTAssertTrue(listing.output.contains("  \(name) "), Harness.describe(listing))
        for platform in GuestPlatform.allCases {
            let run = Harness.toro(["run", "--platform", platform.rawValue, "--service", name, "--cpus", "2"])
            XCTAssertEqual(run.termination, .exited(0), "\(platform): \(Harness.describe(run))")
            XCTAssertTrue(run.output.contains("ready: \(name)"), "\(platform): \(Harness.describe(run))")
            XCTAssertTrue(run.output.contains("\(name): the helper thread answered 42"), Harness.describe(run))
        }
        let compare = Harness.toro(["compare", "--service", name])
        XCTAssertEqual(compare.termination, .exited(0), Harness.describe(compare))
        XCTAssertTrue(compare.output.contains("match: legacy matches Sources/Services/Applications/\(name)/expected"),
                      Harness.describe(compare))
    }

    /// Every service folder holding an `expected` transcript passes it on both platforms.
    func testServiceFoldersWithATranscriptMatchIt() throws {
        guard Harness.preflight() else { return }
        for service in Services.all where FileManager.default.fileExists(atPath: Harness.paths.serviceFolder(service) + "/expected") {
            let compare = Harness.toro(["compare", "--service", service.name])
            XCTAssertEqual(compare.termination, .exited(0), "\(service.name): \(Harness.describe(compare))")
        }
    }
}
