// What every boot test needs: the toro binary, the repository, QEMU, and a way to run
// two boots at once (the machines have 2 cores: at most 2 QEMUs run together).
//
// The tests drive the real `toro` tool (TORO_CLI, set by `./toro test`; otherwise
// .build/debug/toro-cli), so they exercise the same code path a user does. When QEMU or
// the tool is missing they fail with the reason; they never skip.

import Foundation
import XCTest
import ToroTool

enum Harness {
    /// The repository root: TORO_ROOT, else two folders above this file's folder.
    static let root: String = ProcessInfo.processInfo.environment["TORO_ROOT"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path

    static let paths = Paths(root: root)

    /// The toro tool binary.
    static let cli: String = ProcessInfo.processInfo.environment["TORO_CLI"] ?? root + "/.build/debug/toro-cli"

    /// Fails the calling test (with the reason) unless QEMU and the toro tool are there.
    static func preflight(file: StaticString = #filePath, line: UInt = #line) -> Bool {
        guard Installer.which("qemu-system-x86_64") != nil else {
            XCTFail("qemu-system-x86_64 is not on PATH: run ./toro test, which installs it", file: file, line: line)
            return false
        }
        guard FileManager.default.isExecutableFile(atPath: cli) else {
            XCTFail("the toro tool is missing at \(cli): run ./toro test (or swift build --product toro-cli)",
                    file: file, line: line)
            return false
        }
        return true
    }

    /// Runs `toro <arguments>` from the repository root; `limit` bounds the wall time.
    static func toro(_ arguments: [String], limit: Double = 240) -> ProcessResult {
        var process = Subprocess([cli] + arguments)
        process.directory = root
        process.environment = ["TORO_ROOT": root, "TORO_CWD": root]
        process.timeout = limit
        return process.run()
    }

    /// Runs `body` for both platforms at once and returns the results in platform order.
    static func onBothPlatforms<T: Sendable>(_ body: @Sendable @escaping (GuestPlatform) -> T) -> [T] {
        let platforms = GuestPlatform.allCases
        let results = ResultBox<T>(count: platforms.count)
        DispatchQueue.concurrentPerform(iterations: platforms.count) { index in
            results.set(index, body(platforms[index]))
        }
        return results.values
    }

    /// Lines of `text` without `\r`.
    static func lines(_ text: String) -> [String] {
        text.unicodeScalars.filter { $0 != "\r" }.map(String.init).joined()
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// A readable dump of a run for failure messages.
    static func describe(_ result: ProcessResult) -> String {
        "termination \(result.termination) after \(String(format: "%.1f", result.seconds)) s\n--- stdout\n\(result.output)\n--- stderr\n\(result.errorOutput)"
    }
}

/// Results written from concurrent threads, one slot each.
final class ResultBox<T>: @unchecked Sendable {
    private var slots: [T?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: T) { lock.lock(); slots[index] = value; lock.unlock() }
    var values: [T] { lock.lock(); defer { lock.unlock() }; return slots.map { $0! } }
}
