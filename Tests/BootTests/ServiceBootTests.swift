// Tier 2: each service boots on both platforms under QEMU (TCG) and does what it says.

import Foundation
import XCTest
import ToroTool

final class ServiceBootTests: XCTestCase {
    func testHelloGreetsOnBothPlatforms() throws {
        guard Harness.preflight() else { return }
        let results = Harness.onBothPlatforms { platform in
            (platform, Harness.toro(["run", "--platform", platform.rawValue, "--service", "hello", "--timeout", "60"]))
        }
        for (platform, result) in results {
            let dump = "\(platform): \(Harness.describe(result))"
            XCTAssertEqual(result.termination, .exited(0), dump)
            let lines = Harness.lines(result.output)
            XCTAssertTrue(lines.contains("ready: hello"), dump)
            XCTAssertTrue(lines.contains("Hello from Toro on \(platform.rawValue): 1 CPU, 64 MiB of memory"), dump)
            XCTAssertTrue(ExitMapping.hasExitLine(result.output), "no 'exit:' log line\n" + dump)
        }
    }

    func testFaultReportsThePageFaultAndExits3() throws {
        guard Harness.preflight() else { return }
        let results = Harness.onBothPlatforms { platform in
            (platform, Harness.toro(["run", "--platform", platform.rawValue, "--service", "fault", "--timeout", "60"],
                                    limit: 120))
        }
        for (platform, result) in results {
            let dump = "\(platform): \(Harness.describe(result))"
            XCTAssertEqual(result.termination, .exited(3), dump)
            XCTAssertTrue(result.output.contains("vector 14"), dump)
            // The service names the address it reads ("fault: reading 0x…"); the exception
            // report must show that same address in cr2.
            let lines = Harness.lines(result.output)
            let touched = lines.first { $0.hasPrefix("fault: reading ") }
                .flatMap { MemtestReport.number(after: "reading", in: $0) }
            XCTAssertNotNil(touched, "the service did not say which address it reads\n" + dump)
            XCTAssertEqual(touched.map { $0 >> 28 }, 0xdead, "not the documented 0x00000dead0000000\n" + dump)
            let cr2 = lines.compactMap { $0.contains("cr2=") ? MemtestReport.number(after: "cr2=", in: $0) : nil }
            XCTAssertFalse(cr2.isEmpty, "no cr2= in the report\n" + dump)
            if let touched { XCTAssertTrue(cr2.contains(touched), "cr2 is not the faulting address\n" + dump) }
        }
    }

    func testMemtestUsesEveryRangeOf3GiB() throws {
        guard Harness.preflight() else { return }
        let results = Harness.onBothPlatforms { platform in
            (platform, Harness.toro(["run", "--platform", platform.rawValue, "--service", "memtest",
                                     "--memory", "3072", "--timeout", "300"], limit: 360))
        }
        for (platform, result) in results {
            let dump = "\(platform): \(Harness.describe(result))"
            XCTAssertEqual(result.termination, .exited(0), dump)
            let lines = Harness.lines(result.output)
            XCTAssertTrue(lines.contains { $0.hasPrefix("memtest: ok") }, dump)
            let ranges = lines.filter { $0.hasPrefix("memtest: range") }
            XCTAssertFalse(ranges.isEmpty, "no 'memtest: range' lines\n" + dump)
            for range in ranges {
                guard let allocated = MemtestReport.number(after: "allocated", in: range) else {
                    XCTFail("no 'allocated' count in '\(range)'\n" + dump); continue
                }
                XCTAssertGreaterThan(allocated, 0, "\(platform): \(range)")
            }
            let highest = lines.first { $0.hasPrefix("memtest: highest") }.flatMap { MemtestReport.number(after: "highest", in: $0) }
            XCTAssertNotNil(highest, "no 'memtest: highest 0x…' line\n" + dump)
            if let highest { XCTAssertGreaterThan(highest, 1 << 30, "\(platform): highest address below 1 GiB") }
        }
    }

    /// The do-nothing kernels of `toro bench boot` boot and leave with guest status 0
    /// (QEMU exit code 1) under the same QEMU command lines as the real kernels.
    func testDoNothingKernelsExitZero() throws {
        guard Harness.preflight() else { return }
        let results = Harness.onBothPlatforms { platform -> (GuestPlatform, Result<ProcessResult, ToolFailure>) in
            do throws(ToolFailure) {
                let image = try KernelBuilder(paths: Harness.paths).buildNull(platform)
                let command = QEMUCommand(platform: platform, accelerator: .tcg, memoryMiB: 64, cpus: 1,
                                          kernelPath: image, kernelCommandLine: "service=hello")
                var process = Subprocess(command.arguments)
                process.timeout = 30
                return (platform, .success(process.run()))
            } catch {
                return (platform, .failure(error))
            }
        }
        for (platform, outcome) in results {
            switch outcome {
            case .failure(let error): XCTFail("\(platform): building the do-nothing kernel failed: \(error.message)")
            case .success(let result): XCTAssertEqual(result.termination, .exited(1), "\(platform): \(Harness.describe(result))")
            }
        }
    }
}

/// Numbers in the services' report lines.
enum MemtestReport {
    /// The number (decimal or 0x-hex, `=` or space separated) after `word` in `line`.
    static func number(after word: String, in line: String) -> UInt64? {
        guard let range = line.range(of: word) else { return nil }
        let rest = line[range.upperBound...].drop { $0 == " " || $0 == "=" || $0 == ":" }
        let token = rest.prefix { $0.isHexDigit || $0 == "x" || $0 == "X" || $0 == "_" }.replacingOccurrences(of: "_", with: "")
        if token.hasPrefix("0x") || token.hasPrefix("0X") { return UInt64(token.dropFirst(2), radix: 16) }
        return UInt64(token.prefix { $0.isNumber })
    }
}
