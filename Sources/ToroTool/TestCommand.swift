// `toro test`: every test tier, as CI runs it (.ci/run calls this).
//
//   setup    install what is missing (as `run` does), build both kernels and the
//            do-nothing kernels once
//   tier 1   host unit tests: `swift test --skip BootTests`
//   tier 2-3 boot and differential tests: `swift test --filter BootTests`, which boot the
//            prebuilt images under QEMU (TCG) through this same tool
//            (TORO_CLI=<this binary>, TORO_ROOT, TORO_NO_BUILD=1)
//
// Output streams live; the last line is `N passed, M failed` (tests counted from XCTest
// and Swift Testing's own result lines; a tier whose runner fails without a failing test,
// e.g. a compile error, counts as one failure). Exits 0 only when nothing failed.

import Foundation

public enum TestCommand {
    public struct Tally: Equatable, Sendable {
        public var passed = 0
        public var failed = 0
    }

    public static func main(_ arguments: [String], paths: Paths) -> Int32 {
        guard arguments.isEmpty else {
            Console.error("test takes no arguments (it runs every tier)")
            return ToroStatus.badArgument.rawValue
        }
        let start = Date()
        var total = Tally()
        do throws(ToolFailure) {
            try Installer.ensure(Installer.forBooting)
            let builder = KernelBuilder(paths: paths)
            for platform in GuestPlatform.allCases {
                try builder.build(platform)
                try builder.buildNull(platform)
            }
        } catch {
            Console.error(error.message)
            Console.line("0 passed, 1 failed")
            return error.status.rawValue
        }
        let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        let tiers: [(name: String, arguments: [String], environment: [String: String])] = [
            ("tier 1 (host unit tests)", ["swift", "test", "--skip", "^BootTests\\."], [:]),
            ("tiers 2-3 (boot and differential tests under QEMU)", ["swift", "test", "--filter", "^BootTests\\."],
             ["TORO_CLI": binary, "TORO_ROOT": paths.root, "TORO_NO_BUILD": "1"]),
        ]
        for tier in tiers {
            Console.progress("\(tier.name): \(tier.arguments.joined(separator: " "))")
            var process = Subprocess(tier.arguments)
            process.directory = paths.root
            process.environment = tier.environment
            process.mergeStderr = true
            process.echoOutput = 1
            let result = process.run()
            var tally = count(result.output)
            if result.exitCode != 0 && tally.failed == 0 {
                Console.error("\(tier.name): swift test failed (\(result.termination)) without a failing test")
                tally.failed += 1
            }
            Console.progress("\(tier.name): \(tally.passed) passed, \(tally.failed) failed")
            total.passed += tally.passed
            total.failed += tally.failed
        }
        Console.progress(String(format: "all tiers took %.0f s", Date().timeIntervalSince(start)))
        Console.line("\(total.passed) passed, \(total.failed) failed")
        return total.failed == 0 ? 0 : 1
    }

    /// Counts finished tests in `swift test` output: XCTest's `Test Case '…' passed (…)` /
    /// `failed (…)` and Swift Testing's `✔ Test … passed after …` / `✘ Test … failed after …`.
    public static func count(_ output: String) -> Tally {
        var tally = Tally()
        for line in output.consoleLines() {
            if line.hasPrefix("Test Case '") {
                if line.contains("' passed (") { tally.passed += 1 }
                if line.contains("' failed (") { tally.failed += 1 }
                continue
            }
            // Swift Testing: a symbol, then "Test <name> passed/failed after …".
            guard let space = line.firstIndex(of: " ") else { continue }
            let rest = line[line.index(after: space)...]
            guard rest.hasPrefix("Test "), !rest.hasPrefix("Test run with ") else { continue }
            if rest.contains(" passed after ") { tally.passed += 1 }
            else if rest.contains(" failed after ") { tally.failed += 1 }
        }
        return tally
    }
}
