// The kv tooling on the host: KVClient against HostKVServer in-process (every command,
// long lines, split and pipelined requests, concurrent clients, timeouts), the protocol
// table and line framing HostKVServer takes from the kernel's Core, `bench kv`'s options and
// figures, the helper that runs a booted service in the background, and the fuzz tier's
// plan.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
@testable import ToroTool
import Wire
import KVProtocol

final class HostKVProtocolTests: XCTestCase {
    func reply(_ table: inout KVTable, _ line: String) -> String {
        let (bytes, _) = table.handle(Array(line.utf8)[...])
        return String(decoding: bytes, as: UTF8.self)
    }

    func testEveryCommand() {
        var table = KVTable()
        XCTAssertEqual(reply(&table, "GET a"), "NOT_FOUND\n")
        XCTAssertEqual(reply(&table, "SET a one two  three"), "OK\n")
        XCTAssertEqual(reply(&table, "GET a"), "VALUE one two  three\n")
        XCTAssertEqual(reply(&table, "SET a 2"), "OK\n")
        XCTAssertEqual(reply(&table, "GET a\r"), "VALUE 2\n")
        XCTAssertEqual(reply(&table, "SET e "), "OK\n")
        XCTAssertEqual(reply(&table, "GET e"), "VALUE \n")
        XCTAssertEqual(table.entries.count, 2)
        XCTAssertEqual(reply(&table, "DEL a"), "DELETED\n")
        XCTAssertEqual(reply(&table, "DEL a"), "NOT_FOUND\n")
        XCTAssertEqual(reply(&table, "DEL e"), "DELETED\n")
        XCTAssertEqual(table.entries.count, 0)
        let (bye, quit) = table.handle(Array("QUIT".utf8)[...])
        XCTAssertEqual(bye, Array("BYE\n".utf8))
        XCTAssertTrue(quit)
        XCTAssertFalse(table.handle(Array("GET a".utf8)[...]).quit)
    }

    func testErrors() {
        var table = KVTable()
        XCTAssertEqual(reply(&table, ""), "ERROR unknown command\n")
        XCTAssertEqual(reply(&table, "get a"), "ERROR unknown command\n")
        XCTAssertTrue(table.handle(Array("QUIT now".utf8)[...]).quit, "as the kernel: the command is the first word")
        XCTAssertEqual(reply(&table, "SETX a b"), "ERROR unknown command\n")
        XCTAssertEqual(reply(&table, "SET a"), "ERROR usage: SET key value\n")
        XCTAssertEqual(reply(&table, "SET  b"), "ERROR bad key\n")
        XCTAssertEqual(reply(&table, "SET \(String(repeating: "k", count: 251)) v"), "ERROR bad key\n")
        XCTAssertEqual(reply(&table, "SET \(String(repeating: "k", count: 250)) v"), "OK\n")
        XCTAssertEqual(reply(&table, "GET"), "ERROR usage: GET key\n")
        XCTAssertEqual(reply(&table, "GET a b"), "ERROR usage: GET key\n")
        XCTAssertEqual(reply(&table, "DEL "), "ERROR usage: DEL key\n")
        XCTAssertEqual(reply(&table, "\u{0}\u{ff}garbage"), "ERROR unknown command\n")
    }

    func testBytesAreKeptAsBytes() {
        var table = KVTable()
        let key: [UInt8] = [0, 0xff, 0xc3, 1]
        let value: [UInt8] = [0, 32, 0x80, 0xfe]
        XCTAssertEqual(table.handle((Array("SET ".utf8) + key + [32] + value)[...]).reply, Array("OK\n".utf8))
        XCTAssertEqual(table.handle((Array("GET ".utf8) + key)[...]).reply, Array("VALUE ".utf8) + value + [10])
    }

    func events(_ framer: inout LineReader) -> [LineEvent] {
        var out: [LineEvent] = []
        while let event = framer.nextEvent() { out.append(event); if event == .end { break } }
        return out
    }

    func testFramingKeepsTheLimitAndGoesOn() {
        var framer = LineReader(maximumLength: 8)
        Array("12345678\nabc\r\n".utf8).withUnsafeBytes { framer.append($0) }
        XCTAssertEqual(events(&framer), [.line(Array("12345678".utf8)), .line(Array("abc".utf8))])
        Array("123456789".utf8).withUnsafeBytes { framer.append($0) }          // one over, no "\r": too long at once
        XCTAssertEqual(events(&framer), [.tooLong])
        Array("xx\nok\n".utf8).withUnsafeBytes { framer.append($0) }           // the rest is dropped through "\n"
        XCTAssertEqual(events(&framer), [.line(Array("ok".utf8))])
        Array("12345678\r".utf8).withUnsafeBytes { framer.append($0) }         // may be the "\r" of "\r\n"
        XCTAssertEqual(events(&framer), [])
        Array("\ntail".utf8).withUnsafeBytes { framer.append($0) }
        framer.finish()
        XCTAssertEqual(events(&framer), [.line(Array("12345678".utf8)), .line(Array("tail".utf8)), .end])
    }
}

final class KVClientServerTests: XCTestCase {
    var server: HostKVServer!

    override func setUpWithError() throws {
        server = try HostKVServer()
        server.start()
    }

    override func tearDown() {
        server.stop()
        server = nil
    }

    func client() throws -> KVClient { try KVClient(port: server.port, timeout: 10) }

    func testEveryCommandOverTCP() throws {
        let kv = try client()
        XCTAssertEqual(try kv.request("GET k"), "NOT_FOUND")
        XCTAssertEqual(try kv.request("SET k hello world"), "OK")
        XCTAssertEqual(try kv.request("GET k"), "VALUE hello world")
        XCTAssertEqual(try kv.request("SET k again"), "OK")
        XCTAssertEqual(try kv.request("GET k"), "VALUE again")
        XCTAssertEqual(try kv.request("DEL k"), "DELETED")
        XCTAssertEqual(try kv.request("DEL k"), "NOT_FOUND")
        XCTAssertEqual(try kv.request("NOPE"), "ERROR unknown command")
        XCTAssertEqual(try kv.request("SET k"), "ERROR usage: SET key value")
        XCTAssertEqual(try kv.request("QUIT"), "BYE")
        XCTAssertNil(try kv.readLine(), "the server closes after BYE")
        XCTAssertEqual(server.keyCount, 0)
    }

    func testLongLines() throws {
        let kv = try client()
        let fits = "SET long " + String(repeating: "v", count: 1024 - 9)
        XCTAssertEqual(fits.utf8.count, 1024)
        XCTAssertEqual(try kv.request(fits), "OK")
        XCTAssertEqual(try kv.request("GET long"), "VALUE " + String(repeating: "v", count: 1015))
        XCTAssertEqual(try kv.request(fits + "v"), "ERROR line too long")
        XCTAssertEqual(try kv.request(String(repeating: "x", count: 5000)), "ERROR line too long")
        XCTAssertEqual(try kv.request("SET huge " + String(repeating: "y", count: 100_000)), "ERROR line too long")
        XCTAssertEqual(try kv.request("GET long"), "VALUE " + String(repeating: "v", count: 1015), "the connection goes on")
        XCTAssertEqual(try kv.request("DEL long"), "DELETED")
    }

    func testSplitPipelinedAndPartialRequests() throws {
        let kv = try client()
        for byte in Array("SET s split\r\n".utf8) { try kv.send([byte]) }
        XCTAssertEqual(try kv.readLine(), "OK")
        try kv.send(Array("GET s\nSET t 1\nGET t\nDEL s\nDEL t\n".utf8))
        var replies: [String] = []
        for _ in 0..<5 { replies.append(try kv.readLine() ?? "<end>") }
        XCTAssertEqual(replies, ["VALUE split", "OK", "VALUE 1", "DELETED", "DELETED"])
        // An unterminated last line is still answered once the client stops sending.
        try kv.send(Array("GET nothing".utf8))
        kv.shutdownWrite()
        XCTAssertEqual(try kv.readLine(), "NOT_FOUND")
        XCTAssertNil(try kv.readLine())
    }

    func testBinaryGarbageAndAbruptDisconnects() throws {
        let hostile = try client()
        XCTAssertEqual(try hostile.request(bytes: [0, 0xff, 0xfe, 0x80, 10]), Array("ERROR unknown command".utf8))
        let key: [UInt8] = [0x6b, 0, 0xe2, 0x82]
        XCTAssertEqual(try hostile.request(bytes: Array("SET ".utf8) + key + Array(" \u{0}v\u{7f}".utf8) + [10]), Array("OK".utf8))
        XCTAssertEqual(try hostile.request(bytes: Array("GET ".utf8) + key + [10]), Array("VALUE \u{0}v\u{7f}".utf8))
        XCTAssertEqual(try hostile.request(bytes: Array("DEL ".utf8) + key + [10]), Array("DELETED".utf8))
        try hostile.send(Array("SET half".utf8))
        hostile.close(reset: true)
        let silent = try client()
        silent.close()
        let kv = try client()
        XCTAssertEqual(try kv.request("GET half"), "NOT_FOUND")
        XCTAssertEqual(server.keyCount, 0)
    }

    func testFiftyConcurrentClients() throws {
        // Threads, not concurrentPerform (which runs only as many at once as there are cores).
        let failures = ResultSlots(count: 50)
        let done = DispatchGroup()
        let port = server.port
        for c in 0..<50 {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                do throws(KVClientError) {
                    let kv = try KVClient(port: port, timeout: 10)
                    for i in 0..<40 {
                        let key = "k_\(c)_\(i)"
                        let script = [("SET \(key) v \(c) \(i)", "OK"), ("GET \(key)", "VALUE v \(c) \(i)"),
                                      ("SET \(key) w \(c) \(i)", "OK"), ("GET \(key)", "VALUE w \(c) \(i)"),
                                      ("DEL \(key)", "DELETED")]
                        for (request, expected) in script {
                            let got = try kv.request(request)
                            if got != expected { failures.set(c, ([], "\(request): '\(got)' != '\(expected)'")); return }
                        }
                    }
                    if try kv.request("QUIT") != "BYE" { failures.set(c, ([], "QUIT")) }
                } catch {
                    failures.set(c, ([], "\(error)"))
                }
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(failures.values.compactMap(\.failure), [])
        XCTAssertEqual(server.keyCount, 0)
    }

    func testTimeoutsAndRefusedConnections() throws {
        // A listener that never answers: the read times out instead of hanging.
        let silent = try HostKVServer()           // bound and listening, never started
        defer { silent.stop() }
        let kv = try KVClient(port: silent.port, timeout: 0.3)
        let start = Date()
        XCTAssertThrowsError(try kv.request("GET k")) { XCTAssertEqual($0 as? KVClientError, .timedOut) }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        let port = try XCTUnwrap(KVClient.freePort())
        XCTAssertThrowsError(try KVClient(port: port, timeout: 1)) { error in
            guard case .connect = error as? KVClientError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try KVClient.connect(port: port, within: 0.2, timeout: 1))
    }

    func testBenchMeasurementAgainstTheHostServer() {
        let result = KVBench.measure(port: server.port, connections: 5, requests: 203, tag: "t")
        XCTAssertEqual(result.failures, [])
        XCTAssertEqual(result.latencies.count, 203)
        XCTAssertNotNil(result.seconds)
        let many = KVBench.measure(port: server.port, connections: 50, requests: 500, tag: "u")
        XCTAssertEqual(many.failures, [])
        XCTAssertEqual(many.latencies.count, 500)
    }
}

final class KVBenchOptionsTests: XCTestCase {
    func assertBadArgument(_ arguments: [String], message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try KVBench.parse(arguments), "\(arguments)", file: file, line: line) { error in
            let failure = error as! ToolFailure
            XCTAssertEqual(failure.status, .badArgument, file: file, line: line)
            XCTAssertEqual(failure.message, message, file: file, line: line)
        }
    }

    func testDefaultsAndValues() throws {
        XCTAssertEqual(try KVBench.parse([]), KVBench.Options())
        XCTAssertEqual(KVBench.Options().runs, 3)
        XCTAssertEqual(KVBench.Options().requests, 5000)
        let options = try KVBench.parse(["--runs", "5", "--requests=10000"])
        XCTAssertEqual(options.runs, 5)
        XCTAssertEqual(options.requests, 10000)
        // Both platforms unless one is named.
        XCTAssertEqual(KVBench.Options().platforms, [.microvm, .legacy])
        XCTAssertEqual(try KVBench.parse(["--platform", "legacy"]).platforms, [.legacy])
        XCTAssertEqual(try KVBench.parse(["--platform=microvm"]).platforms, [.microvm])
        XCTAssertEqual(try KVBench.parse(["--platform", "legacy", "--platform", "all"]).platforms, [.microvm, .legacy])
        XCTAssertEqual(try WebBench.parse(["--platform", "legacy"]).platforms, [.legacy])
        XCTAssertEqual(WebBench.Options().platforms, [.microvm, .legacy])
    }

    func testMistakes() {
        assertBadArgument(["--runs", "0"], message: "--runs must be between 1 and 1000, got 0")
        assertBadArgument(["--runs"], message: "--runs needs a value")
        assertBadArgument(["--requests", "10"], message: "--requests must be between 50 and 10000000, got 10")
        assertBadArgument(["--requests", "many"], message: "--requests needs a number of requests, got 'many'")
        assertBadArgument(["--cpus", "2"], message: "unknown option '--cpus' for 'bench kv' (see ./toro --help)")
        assertBadArgument(["--", "x"], message: "bench kv takes no kernel arguments (nothing after --)")
        assertBadArgument(["extra"], message: "unexpected argument 'extra' (kernel arguments go after --)")
        assertBadArgument(["--platform", "pc"], message: "unknown platform 'pc' (choose microvm, legacy, all)")
        assertBadArgument(["--platform"], message: "--platform needs a value")
        XCTAssertThrowsError(try WebBench.parse(["--platform", "arm"])) { error in
            XCTAssertEqual((error as! ToolFailure).message, "unknown platform 'arm' (choose microvm, legacy, all)")
        }
    }

    /// Refused before anything is installed, built or booted; `bench boot` is unchanged.
    func testTheCommandRoutesKV() throws {
        XCTAssertEqual(CLI.main(["bench", "kv", "--runs", "0"]), ToroStatus.badArgument.rawValue)
        XCTAssertEqual(CLI.main(["bench", "kv", "--memory", "64"]), ToroStatus.badArgument.rawValue)
        XCTAssertEqual(try BenchCommand.parse(["boot", "--runs", "2"]).runs, 2)
        XCTAssertTrue(Usage.overview.contains("./toro bench kv [--runs N] [--requests N] [--platform legacy|microvm|all]"))
        XCTAssertTrue(Usage.overview.contains("./toro bench web [--runs N] [--requests N] [--platform legacy|microvm|all]"))
        XCTAssertEqual(CLI.main(["bench", "kv", "--platform", "pc"]), ToroStatus.badArgument.rawValue)
        XCTAssertEqual(CLI.main(["bench", "web", "--platform", "pc"]), ToroStatus.badArgument.rawValue)
    }

    func testPercentilesAndTable() {
        let values = (1...100).map(Double.init)
        XCTAssertEqual(KVBench.percentile(values, 0.5), 50)
        XCTAssertEqual(KVBench.percentile(values, 0.9), 90)
        XCTAssertEqual(KVBench.percentile(values, 0.99), 99)
        XCTAssertEqual(KVBench.percentile([7], 0.99), 7)
        XCTAssertNil(KVBench.percentile([], 0.5))
        let figures = [
            KVBench.Figures(label: "toro microvm", connections: 1, requestsPerSecond: [100], latencies: [0.010]),
            KVBench.Figures(label: "toro microvm", connections: 50, requestsPerSecond: [400], latencies: [0.100]),
            KVBench.Figures(label: "toro legacy", connections: 1, requestsPerSecond: [50, 70, 60], latencies: [0.020]),
            KVBench.Figures(label: "toro legacy", connections: 50, requestsPerSecond: [800], latencies: [0.050]),
            KVBench.Figures(label: "host native", connections: 1, requestsPerSecond: [10000], latencies: [0.0001]),
            KVBench.Figures(label: "host native", connections: 50, requestsPerSecond: [40000], latencies: [0.001]),
        ]
        let lines = KVBench.table(figures)
        XCTAssertEqual(lines.count, 9)
        XCTAssertEqual(lines[7], "toro microvm / host: 1 connection: req/s 0.01x, p50 100x, p90 100x, p99 100x; "
                       + "50 connections: req/s 0.01x, p50 100x, p90 100x, p99 100x")
        XCTAssertEqual(lines[8], "toro legacy / host: 1 connection: req/s 0.01x, p50 200x, p90 200x, p99 200x; "
                       + "50 connections: req/s 0.02x, p50 50x, p90 50x, p99 50x")
        XCTAssertTrue(lines[1].hasPrefix("toro microvm"), lines[1])
        XCTAssertTrue(lines[1].contains("10.000"), lines[1])
        XCTAssertTrue(lines[3].hasPrefix("toro legacy "), lines[3])
        XCTAssertTrue(lines[3].contains("    60 "), "the median of the runs: \(lines[3])")
        // One platform alone: one ratio line.
        XCTAssertEqual(KVBench.table(Array(figures[2...])).last?.hasPrefix("toro legacy / host: "), true)
        XCTAssertEqual(KVBench.table(Array(figures[2...])).count, 6)
        let web = WebBench.table(labels: ["toro microvm", "toro legacy", "python3 host"],
                                 rates: [[100], [50, 40, 60], [1000]], speeds: [[10], [], [100]])
        XCTAssertEqual(web.count, 6)
        XCTAssertEqual(web[4], "toro microvm / host (medians): 1 KiB req/s 0.10x, 64 MiB MiB/s 0.10x")
        XCTAssertEqual(web[5], "toro legacy / host (medians): 1 KiB req/s 0.05x, 64 MiB MiB/s -")
        XCTAssertTrue(web[2].hasPrefix("toro legacy ") && web[2].contains("50") && web[2].hasSuffix("-"), web[2])
    }

    func testIdleReport() {
        XCTAssertEqual(KVIdleReport.parse("[   1.234567] kv: idle, heap in use 1234 bytes in 56 allocations, 0 keys"),
                       KVIdleReport(bytes: 1234, allocations: 56, keys: 0))
        XCTAssertEqual(KVIdleReport.parse("kv: idle, heap in use 1 bytes in 2 allocations, 3 keys"),
                       KVIdleReport(bytes: 1, allocations: 2, keys: 3))
        XCTAssertNil(KVIdleReport.parse("[   1.234567] kv: idle, heap in use lots"))
        XCTAssertNil(KVIdleReport.parse("ready: kv"))
    }
}

final class BackgroundProcessTests: XCTestCase {
    func testLinesWaitingAndStop() throws {
        let process = try BackgroundProcess(["/bin/sh", "-c", "echo one; echo err >&2; sleep 0.2; echo ready: x; sleep 1 & wait; exec sleep 30"])
        let ready = process.waitForLine(timeout: 10) { $0 == "ready: x" }
        XCTAssertEqual(ready?.index, 1)
        XCTAssertEqual(process.outputLines.first, "one")
        XCTAssertNil(process.waitForLine(from: 2, timeout: 0.2) { _ in true })
        XCTAssertNil(process.termination)
        XCTAssertEqual(process.children(named: "sleep").count, 1, "the shell's 1 s sleep")
        XCTAssertEqual(BackgroundProcess.commandName(of: process.pid), "sh")
        XCTAssertTrue(BackgroundProcess.isAlive(process.pid))
        XCTAssertEqual(process.stop(), .signaled(SIGTERM))
        XCTAssertEqual(process.errorLines, ["err"])
    }

    func testExitEndsTheWait() throws {
        let process = try BackgroundProcess(["/bin/sh", "-c", "echo a; exit 7"])
        XCTAssertNil(process.waitForLine(timeout: 10) { $0 == "never" })
        XCTAssertEqual(process.wait(timeout: 5), .exited(7))
        XCTAssertThrowsError(try BackgroundProcess(["/no/such/program"]))
    }
}

final class FuzzTierTests: XCTestCase {
    func testTargetsAndCommands() throws {
        let root = NSTemporaryDirectory() + "toro-fuzz-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for (folder, file) in [("B", "main.swift"), ("A", "main.swift"), ("Notes", "README.md")] {
            try FileManager.default.createDirectory(atPath: "\(root)/Fuzz/\(folder)", withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: "\(root)/Fuzz/\(folder)/\(file)", contents: Data())
        }
        XCTAssertEqual(FuzzTier.targets(root: root), ["A", "B"])
        let (build, fuzz) = FuzzTier.commands(root: root, target: "A")
        XCTAssertEqual(build, ["bash", root + "/Fuzz/build.sh", "A"])
        XCTAssertEqual(Array(fuzz.prefix(3)), [root + "/.build-fuzz/A", "-max_total_time=20", "-rss_limit_mb=2048"])
        // Targets but no build script: the tier fails with one failure, nothing is run.
        XCTAssertEqual(FuzzTier.run(root: root), TestCommand.Tally(passed: 0, failed: 1))
        // No targets at all: nothing to run, nothing failed.
        XCTAssertEqual(FuzzTier.run(root: root + "/nowhere"), TestCommand.Tally())
    }

    /// Every Fuzz/NAME the tier runs is a target of the package (FuzzNAME, which Fuzz/build.sh
    /// builds), and Fuzz/Support, which every target imports, is not run.
    func testTheRepositorysTargetsArePackageTargets() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().path
        let targets = FuzzTier.targets(root: root)
        XCTAssertFalse(targets.isEmpty)
        XCTAssertFalse(targets.contains("Support"))
        let manifest = try String(contentsOfFile: root + "/Package.swift", encoding: .utf8)
        for target in targets {
            XCTAssertTrue(manifest.contains("(\"\(target)\", ["), "Fuzz/\(target) is not in Package.swift's fuzzTargets")
        }
        let script = try String(contentsOfFile: root + "/Fuzz/build.sh", encoding: .utf8)
        XCTAssertTrue(script.contains("--product \"Fuzz$name\""))
    }

    func testABuildScriptThatFailsFailsItsTarget() throws {
        let root = NSTemporaryDirectory() + "toro-fuzz-build-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: "\(root)/Fuzz/Good", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(root)/Fuzz/Bad", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(root)/Fuzz/Good/main.swift", contents: Data())
        FileManager.default.createFile(atPath: "\(root)/Fuzz/Bad/main.swift", contents: Data())
        // A stand-in build script: Good gets a "fuzzer" that exits 0, Bad fails to build.
        let script = """
            set -e
            root=$(cd "$(dirname "$0")/.." && pwd)
            [ "$1" = Good ] || { echo "no such luck" >&2; exit 1; }
            mkdir -p "$root/.build-fuzz"
            printf '#!/bin/sh\\necho "Done 5 runs in 0 second(s)"\\n' > "$root/.build-fuzz/$1"
            chmod +x "$root/.build-fuzz/$1"
            """
        FileManager.default.createFile(atPath: "\(root)/Fuzz/build.sh", contents: Data(script.utf8))
        XCTAssertEqual(FuzzTier.run(root: root), TestCommand.Tally(passed: 1, failed: 1))
    }
}
