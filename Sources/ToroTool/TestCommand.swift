// `toro test`: every test tier, as CI runs it (.ci/run calls this).
//
//   setup    install what is missing (as `run` does), build both kernels and the
//            do-nothing kernels once, and the vhost-user back-ends (toro-vsock, toro-fs)
//   tier 1   host unit tests: `swift test --skip BootTests`
//   tier 2-3 boot and differential tests: `swift test --filter BootTests`, which boot the
//            prebuilt images under QEMU (TCG) through this same tool
//            (TORO_CLI=<this binary>, TORO_ROOT, TORO_NO_BUILD=1)
//   tier 4   fuzz targets: for each Fuzz/NAME/ folder holding a main.swift (the package's
//            executable target FuzzNAME, which imports the modules it fuzzes), `Fuzz/build.sh
//            NAME` (`swift build --product FuzzNAME` with libFuzzer + AddressSanitizer in the
//            shared scratch path .build-fuzz, so the imported modules compile once for all
//            targets; -> .build-fuzz/NAME), then
//            `.build-fuzz/NAME -max_total_time=20 -rss_limit_mb=2048`; each target is one
//            unit (passed: built and exited 0). A crash's input is kept as
//            .build-fuzz/NAME-artifacts/crash-<sha> (replay: .build-fuzz/NAME <that file>,
//            or without the sanitizers .build/debug/FuzzNAME <that file>).
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
            try Installer.ensure(Installer.forTesting)
            let builder = KernelBuilder(paths: paths)
            for platform in GuestPlatform.allCases {
                for service in Services.all { try builder.build(platform, service: service.name) }
                try builder.buildNull(platform)
            }
            // The back-ends too, before `swift test` holds .build's lock (the boot tests
            // start them through `toro run -p` and `toro run --share`).
            _ = try VsockBackend.executable(paths: paths)
            _ = try FSBackend.executable(paths: paths)
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
        let fuzz = FuzzTier.run(root: paths.root)
        total.passed += fuzz.passed
        total.failed += fuzz.failed
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

/// Tier 4: the libFuzzer targets under Fuzz/, each built by Fuzz/build.sh and run briefly.
public enum FuzzTier {
    public static let seconds = 20
    public static let name = "tier 4 (fuzz targets)"

    /// The fuzz targets: folders directly under `root`/Fuzz that hold a main.swift, sorted
    /// (Fuzz/NAME is Package.swift's target FuzzNAME; Fuzz/Support, the shared FuzzSupport,
    /// has no main.swift).
    public static func targets(root: String) -> [String] {
        let folder = root + "/Fuzz"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return entries.filter { FileManager.default.fileExists(atPath: "\(folder)/\($0)/main.swift") }.sorted()
    }

    /// What the tier runs for `target`: the build, then the fuzzer (.build-fuzz/NAME, the
    /// link Fuzz/build.sh makes to the product it built).
    public static func commands(root: String, target: String) -> (build: [String], fuzz: [String]) {
        (["bash", root + "/Fuzz/build.sh", target],
         [root + "/.build-fuzz/" + target, "-max_total_time=\(seconds)", "-rss_limit_mb=2048",
          "-artifact_prefix=\(root)/.build-fuzz/\(target)-artifacts/"])
    }

    /// Builds and runs every target; a missing Fuzz/build.sh fails the tier only when
    /// there are targets to build.
    public static func run(root: String) -> TestCommand.Tally {
        var tally = TestCommand.Tally()
        let targets = targets(root: root)
        guard !targets.isEmpty else {
            Console.progress("\(name): no Fuzz/*/main.swift, nothing to run")
            return tally
        }
        guard FileManager.default.fileExists(atPath: root + "/Fuzz/build.sh") else {
            Console.error("\(name): Fuzz/build.sh is missing, so the fuzz targets \(targets.joined(separator: ", ")) cannot be built")
            tally.failed = 1
            return tally
        }
        for target in targets {
            let (build, fuzz) = commands(root: root, target: target)
            Console.progress("\(name): Fuzz/build.sh \(target)")
            var builder = Subprocess(build)
            builder.directory = root
            builder.mergeStderr = true
            builder.timeout = 900
            let built = builder.run()
            guard built.exitCode == 0 else {
                Console.line(built.output)
                Console.error("\(name): building \(target) failed (\(built.termination))")
                tally.failed += 1
                continue
            }
            try? FileManager.default.createDirectory(atPath: "\(root)/.build-fuzz/\(target)-artifacts",
                                                     withIntermediateDirectories: true)
            Console.progress("\(name): .build-fuzz/\(target) -max_total_time=\(seconds) -rss_limit_mb=2048")
            var fuzzer = Subprocess(fuzz)
            fuzzer.directory = root
            fuzzer.mergeStderr = true
            fuzzer.timeout = Double(seconds * 4 + 60)
            // libFuzzer reports the crash itself; Swift's backtracer, under ASan, can hang
            // after one (seen while writing Fuzz/FUSEClient), so it is off.
            fuzzer.environment = ["SWIFT_BACKTRACE": "enable=no"]
            let result = fuzzer.run()
            let lines = result.output.consoleLines()
            if result.exitCode == 0 {
                let done = lines.last { $0.hasPrefix("Done ") } ?? "exited 0"
                Console.progress("\(name): \(target) passed (\(done))")
                tally.passed += 1
            } else {
                // The fuzzer's report (the crash, its stack, the input's path) is at the end.
                Console.line(lines.suffix(60).joined(separator: "\n"))
                Console.error("\(name): \(target) failed (\(result.termination))")
                tally.failed += 1
            }
        }
        Console.progress("\(name): \(tally.passed) passed, \(tally.failed) failed")
        return tally
    }
}
