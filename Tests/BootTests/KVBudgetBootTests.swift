// Tier 2: kv's bounds on MicroVM under TCG (issue 9), with small limits given as kernel
// arguments (`-- kv-keys=N kv-bytes=N`) so the tests stay fast:
//
//   * a key flood on one connection gets `ERROR full` exactly where the host's copy of the
//     table (Core's KVTable, same limits) says, and the server still answers GET, DEL and
//     SET on that connection and another;
//   * a SAVE of a table filled to its key limit succeeds, the file decodes to that table,
//     and after a reboot the table is back, still at its limit (`ERROR full` until a DEL);
//   * a valid but huge kv.db (built here with the KVFile encoder) is refused at start with
//     one line, under the default limits and, past free memory, by the memory budget; the
//     table starts empty and the folder is byte for byte unchanged;
//   * SAVEs from four connections at once (five each), while two others SET (100 each), leave no kv.db.tmp and a
//     kv.db holding one consistent table (the base keys and, of each writer's keys, a
//     prefix in the order it wrote them); a reboot loads exactly that table.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import Core
import KVProtocol
import ToroTool

final class KVBudgetBootTests: XCTestCase {
    func makeFolder(_ tag: String) throws -> String {
        let folder = NSTemporaryDirectory() + "toro-kvb-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    func text(_ reply: [UInt8]) -> String { String(decoding: reply.dropLast(), as: UTF8.self) }

    /// Sends `lines` in one write and reads one reply per line.
    func pipeline(_ kv: KVClient, _ lines: [String]) throws -> [String] {
        try kv.send(Array((lines.joined(separator: "\n") + "\n").utf8))
        var replies: [String] = []
        for _ in lines { replies.append(try kv.readLine() ?? "<connection closed>") }
        return replies
    }

    func testKeyFloodGetsFullAndTheServerStillAnswers() throws {
        guard Harness.preflight(),
              let guest = KVBudgetGuest.boot(share: nil, kernelArguments: ["kv-keys=1000", "kv-bytes=32768"]) else { return }
        defer { ServiceGuest.stop(guest) }
        let dump = { ServiceGuest.describe(guest) }
        XCTAssertTrue(guest.outputLines.contains("kv: limits 1000 keys, 32768 bytes"), dump())

        var oracle = KVTable(limits: KVLimits(keys: 1000, bytes: 32768))
        let flood = (0..<600).map { "SET flood\($0) value-\($0)" }
        let expected = flood.map { text(oracle.handle(Array($0.utf8)[...]).reply) }
        let kv = try KVClient.connect(port: guest.port, within: 10, timeout: 60)
        let replies = try pipeline(kv, flood)
        XCTAssertEqual(replies, expected, dump())
        let stored = replies.filter { $0 == "OK" }.count
        XCTAssertEqual(stored, oracle.count)
        XCTAssertEqual(replies.filter { $0 == "ERROR full" }.count, 600 - stored, dump())
        XCTAssertGreaterThan(stored, 200, "each entry costs 145 bytes of 32768")
        XCTAssertLessThan(stored, 600)

        XCTAssertEqual(try kv.request("GET flood0"), "VALUE value-0", dump())
        XCTAssertEqual(try kv.request("GET flood\(stored - 1)"), "VALUE value-\(stored - 1)")
        XCTAssertEqual(try kv.request("GET flood599"), "NOT_FOUND")
        let other = try KVClient.connect(port: guest.port, within: 10, timeout: 60)
        XCTAssertEqual(try other.request("GET flood1"), "VALUE value-1", dump())
        XCTAssertEqual(try other.request("SET more room"), "ERROR full")
        XCTAssertEqual(try other.request("DEL flood1"), "DELETED")
        XCTAssertEqual(try other.request("SET more room"), "OK", "a DEL makes room")
        XCTAssertEqual(try kv.request("GET more"), "VALUE room")
        XCTAssertEqual(try kv.request("QUIT"), "BYE")
        kv.close()
        other.close()
        XCTAssertNil(guest.termination, dump())
    }

    func testSaveAtTheLimitReloadsAfterReboot() throws {
        guard Harness.preflight() else { return }
        let folder = try makeFolder("limit")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let arguments = ["kv-keys=150", "kv-bytes=1048576"]
        var oracle = KVTable(limits: KVLimits(keys: 150, bytes: 1 << 20))
        let value = { (i: Int) in "v\(i)-" + String(repeating: "abcdefghij", count: 22) }
        let lines = (0..<200).map { "SET key\($0) \(value($0))" }
        let expected = lines.map { text(oracle.handle(Array($0.utf8)[...]).reply) }
        XCTAssertEqual(oracle.count, 150)

        guard let first = KVBudgetGuest.boot(share: folder, kernelArguments: arguments) else { return }
        let kv = try KVClient.connect(port: first.port, within: 10, timeout: 120)
        XCTAssertEqual(try pipeline(kv, lines), expected, ServiceGuest.describe(first))
        XCTAssertEqual(try kv.request("SAVE"), "OK", ServiceGuest.describe(first))
        kv.close()
        ServiceGuest.stop(first)

        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/kv.db.tmp"))
        let saved = FileManager.default.contents(atPath: folder + "/kv.db").map { Array($0) } ?? []
        XCTAssertGreaterThan(saved.count, 2 * KVFile.chunkSize, "the file spans several chunks")
        XCTAssertEqual(KVFile.decode(saved), .success(oracle.entries))

        guard let second = KVBudgetGuest.boot(share: folder, kernelArguments: arguments) else { return }
        defer { ServiceGuest.stop(second) }
        let dump = { ServiceGuest.describe(second) }
        XCTAssertTrue(second.outputLines.contains("kv: loaded 150 keys from kv.db"), dump())
        let again = try KVClient.connect(port: second.port, within: 10, timeout: 60)
        for i in [0, 1, 77, 149] { XCTAssertEqual(try again.request("GET key\(i)"), "VALUE \(value(i))", dump()) }
        XCTAssertEqual(try again.request("GET key150"), "NOT_FOUND")
        XCTAssertEqual(try again.request("SET key150 x"), "ERROR full", "the reloaded table is at its limit\n" + dump())
        XCTAssertEqual(try again.request("DEL key0"), "DELETED")
        XCTAssertEqual(try again.request("SET key150 x"), "OK")
        again.close()
    }

    /// Boots kv on `folder` holding `entries` as kv.db; returns the guest's output, after
    /// checking that the table is empty and the folder unchanged.
    func bootWithHugeFile(_ tag: String, entries: Int, valueBytes: Int, kernelArguments: [String]) throws -> (lines: [String], cost: Int)? {
        let folder = try makeFolder(tag)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var table: [[UInt8]: [UInt8]] = [:]
        let value = [UInt8](repeating: 120, count: valueBytes)
        for i in 0..<entries { table[Array("key\(i)".utf8)] = value }
        let cost = table.reduce(0) { $0 + KVLimits.cost(keyLength: $1.key.count, valueLength: $1.value.count) }
        let bytes = KVFile.encode(table)
        table = [:]
        try Data(bytes).write(to: URL(fileURLWithPath: folder + "/kv.db"))
        let before = try FileManager.default.contentsOfDirectory(atPath: folder)
        guard let guest = KVBudgetGuest.boot(share: folder, kernelArguments: kernelArguments) else { return nil }
        let kv = try KVClient.connect(port: guest.port, within: 10, timeout: 60)
        XCTAssertEqual(try kv.request("GET key0"), "NOT_FOUND", ServiceGuest.describe(guest))
        XCTAssertEqual(try kv.request("SET fresh 1"), "OK")
        kv.close()
        ServiceGuest.stop(guest)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), before, "no file added")
        let after = FileManager.default.contents(atPath: folder + "/kv.db").map { Array($0) }
        XCTAssertTrue(after == bytes, "kv.db changed (\(after?.count ?? -1) bytes, was \(bytes.count))")
        return (guest.outputLines, cost)
    }

    func testHugeFileIsRefusedAtStartAndLeftUnchanged() throws {
        guard Harness.preflight() else { return }
        // 20,000 keys of 1,000 bytes: about 20 MB on disk and 22.7 MB as the table counts
        // it, over the default kv-bytes of 64 MiB (a quarter of memory).
        guard let (lines, cost) = try bootWithHugeFile("huge", entries: 20_000, valueBytes: 1000, kernelArguments: []) else { return }
        let dump = lines.suffix(40).joined(separator: "\n")
        guard let limitsLine = lines.first(where: { $0.hasPrefix("kv: limits ") }) else { return XCTFail(dump) }
        let words = limitsLine.split(separator: " ")
        XCTAssertEqual(words.count, 6, limitsLine)
        let keys = Int(words[2]) ?? 0, bytes = Int(words[4]) ?? 0
        XCTAssertGreaterThan(keys, 60_000, limitsLine)
        XCTAssertLessThanOrEqual(bytes, 16 << 20, limitsLine)
        XCTAssertGreaterThan(bytes, 15 << 20, limitsLine)
        let reports = lines.filter { $0.hasPrefix("kv: kv.db") || $0.hasPrefix("kv: loaded") || $0.hasPrefix("kv: cannot") }
        XCTAssertEqual(reports, ["kv: kv.db holds 20000 keys costing \(cost) bytes, over kv-bytes=\(bytes); "
                                 + "starting empty, kv.db left as it is"], dump)
    }

    func testFileLargerThanFreeMemoryIsRefusedByTheBudget() throws {
        guard Harness.preflight() else { return }
        // Limits far above the machine: only MemoryBudget stands between 70 MB and 64 MiB.
        guard let (lines, cost) = try bootWithHugeFile("memory", entries: 70_000, valueBytes: 1000,
                                                        kernelArguments: ["kv-keys=1000000", "kv-bytes=1000000000"]) else { return }
        let dump = lines.suffix(40).joined(separator: "\n")
        let reports = lines.filter { $0.hasPrefix("kv: kv.db") || $0.hasPrefix("kv: loaded") || $0.hasPrefix("kv: cannot") }
        XCTAssertEqual(reports, ["kv: kv.db holds 70000 keys costing \(cost) bytes, more than free memory allows; "
                                 + "starting empty, kv.db left as it is"], dump)
    }

    func testConcurrentSavesLeaveOneConsistentTable() throws {
        guard Harness.preflight() else { return }
        let folder = try makeFolder("concurrent")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let arguments = ["kv-keys=2000", "kv-bytes=4194304"]
        guard let first = KVBudgetGuest.boot(share: folder, kernelArguments: arguments) else { return }
        let dump = { ServiceGuest.describe(first) }
        let base = { (i: Int) in "base-\(i)-" + String(repeating: "0123456789", count: 40) }
        let setup = try KVClient.connect(port: first.port, within: 10, timeout: 120)
        XCTAssertEqual(try pipeline(setup, (0..<300).map { "SET base\($0) \(base($0))" }), Array(repeating: "OK", count: 300), dump())
        setup.close()

        let writes = 100
        let failures = FailureLog()
        let release = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        let port = first.port
        for saver in 0..<4 {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                release.wait()
                do throws(KVClientError) {
                    let kv = try KVClient.connect(port: port, within: 10, timeout: 300)
                    for round in 0..<5 {
                        let reply = try kv.request("SAVE")
                        if reply != "OK" { failures.add("saver \(saver) round \(round): \(reply)") }
                        usleep(UInt32(10_000 * (saver + 1)))          // spread the saves over the writers' run
                    }
                    kv.close()
                } catch {
                    failures.add("saver \(saver): \(error)")
                }
            }
        }
        for writer in 0..<2 {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                release.wait()
                do throws(KVClientError) {
                    let kv = try KVClient.connect(port: port, within: 10, timeout: 300)
                    for i in 0..<writes {
                        let reply = try kv.request("SET w\(writer)_\(i) value \(writer) \(i)")
                        if reply != "OK" { failures.add("writer \(writer) SET \(i): \(reply)") }
                    }
                    kv.close()
                } catch {
                    failures.add("writer \(writer): \(error)")
                }
            }
        }
        for _ in 0..<6 { release.signal() }
        XCTAssertEqual(done.wait(timeout: .now() + 600), .success, "the clients did not finish in 10 minutes\n" + dump())
        XCTAssertEqual(failures.entries, [], dump())
        ServiceGuest.stop(first)

        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/kv.db.tmp"))
        let saved = FileManager.default.contents(atPath: folder + "/kv.db").map { Array($0) } ?? []
        guard case .success(let table) = KVFile.decode(saved) else {
            return XCTFail("kv.db does not decode: \(KVFile.decode(saved))\n" + dump())
        }
        for i in 0..<300 { XCTAssertEqual(table[Array("base\(i)".utf8)], Array(base(i).utf8), "base\(i)") }
        var prefixes: [Int] = []
        for writer in 0..<2 {
            let present = (0..<writes).map { table[Array("w\(writer)_\($0)".utf8)] }
            let prefix = present.firstIndex(where: { $0 == nil }) ?? writes
            XCTAssertTrue(present[prefix...].allSatisfy { $0 == nil }, "writer \(writer)'s keys are not a prefix: \(present.map { $0 != nil })")
            for i in 0..<prefix { XCTAssertEqual(present[i], Array("value \(writer) \(i)".utf8)) }
            prefixes.append(prefix)
        }
        XCTAssertEqual(table.count, 300 + prefixes.reduce(0, +))
        print("kv concurrent saves: the last save held \(prefixes) of each writer's \(writes) keys, \(saved.count) bytes")

        guard let second = KVBudgetGuest.boot(share: folder, kernelArguments: arguments) else { return }
        defer { ServiceGuest.stop(second) }
        XCTAssertTrue(second.outputLines.contains("kv: loaded \(table.count) keys from kv.db"), ServiceGuest.describe(second))
        let kv = try KVClient.connect(port: second.port, within: 10, timeout: 60)
        XCTAssertEqual(try kv.request("GET base0"), "VALUE \(base(0))")
        XCTAssertEqual(try kv.request("GET base299"), "VALUE \(base(299))")
        for (writer, prefix) in prefixes.enumerated() {
            if prefix > 0 { XCTAssertEqual(try kv.request("GET w\(writer)_\(prefix - 1)"), "VALUE value \(writer) \(prefix - 1)") }
            if prefix < writes { XCTAssertEqual(try kv.request("GET w\(writer)_\(prefix)"), "NOT_FOUND") }
        }
        kv.close()
    }
}

/// kv booted with kernel arguments (which go last, after `--`), optionally on a share.
enum KVBudgetGuest {
    /// kv booted with `-p`, the shared folder (if any) and `kernelArguments`, 900 s at most.
    static func boot(share: String?, kernelArguments: [String],
                     file: StaticString = #filePath, line: UInt = #line) -> BackgroundProcess? {
        ServiceGuest.boot(service: "kv", arguments: share.map { ["--share", $0] } ?? [], port: true, timeout: 900,
                          kernelArguments: kernelArguments, file: file, line: line)
    }
}

final class KVLimitArgumentBootTests: XCTestCase {
    /// A malformed limit stops kv at start: one line naming the argument, status 2.
    func testAMalformedLimitIsOneLineAndStatus2() {
        guard Harness.preflight(), let port = KVClient.freePort() else { return }
        let result = Harness.toro(["run", "--service", "kv", "--timeout", "120", "-p", "\(port):80", "--", "kv-keys=0"], limit: 180)
        let dump = Harness.describe(result)
        XCTAssertEqual(result.termination, .exited(2), dump)
        let lines = Harness.lines(result.output).filter { $0.hasPrefix("kv: ") }
        XCTAssertEqual(lines, ["kv: kernel argument kv-keys must be between 1 and 16777216"], dump)
        XCTAssertFalse(result.output.contains("ready: kv"), dump)
    }
}
