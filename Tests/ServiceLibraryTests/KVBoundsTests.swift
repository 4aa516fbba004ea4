// kv's bounds (KVLimits, KVTable.set): the key count, the bytes (key + value + 128 per
// entry), MemoryBudget's refusal, a key flood that ends in `ERROR full` while GET and DEL
// go on, and the kernel arguments `kv-keys=` / `kv-bytes=` with their defaults.

import XCTest
@testable import Core
@testable import KVProtocol

final class KVBoundsTests: XCTestCase {
    func run(_ table: inout KVTable, _ line: String) -> String {
        String(decoding: table.handle(Array(line.utf8)[...]).reply, as: UTF8.self)
    }

    func cost(_ table: KVTable) -> Int {
        table.entries.reduce(0) { $0 + KVLimits.cost(keyLength: $1.key.count, valueLength: $1.value.count) }
    }

    func testKeyCount() {
        var table = KVTable(limits: KVLimits(keys: 3, bytes: 1 << 20))
        for key in ["a", "b", "c"] { XCTAssertEqual(run(&table, "SET \(key) 1"), "OK\n") }
        XCTAssertEqual(run(&table, "SET d 1"), "ERROR full\n")
        XCTAssertEqual(run(&table, "GET d"), "NOT_FOUND\n", "a refused SET changes nothing")
        XCTAssertEqual(run(&table, "SET a replaced"), "OK\n", "replacing a value adds no key")
        XCTAssertEqual(run(&table, "GET a"), "VALUE replaced\n")
        XCTAssertEqual(run(&table, "DEL b"), "DELETED\n")
        XCTAssertEqual(run(&table, "SET d 1"), "OK\n", "a DEL makes room")
        XCTAssertEqual(table.count, 3)
        XCTAssertEqual(table.bytes, cost(table))
    }

    func testBytesCountKeyValueAndOverhead() {
        XCTAssertEqual(KVLimits.cost(keyLength: 1, valueLength: 10), 139)
        var table = KVTable(limits: KVLimits(keys: 100, bytes: 2 * 139))
        XCTAssertEqual(run(&table, "SET a 0123456789"), "OK\n")
        XCTAssertEqual(run(&table, "SET b 0123456789"), "OK\n")
        XCTAssertEqual(table.bytes, 278)
        XCTAssertEqual(run(&table, "SET c "), "ERROR full\n", "an empty value still costs its key and the overhead")
        XCTAssertEqual(run(&table, "SET a 0123456789X"), "ERROR full\n", "a longer value past the bound")
        XCTAssertEqual(run(&table, "GET a"), "VALUE 0123456789\n", "the old value stays")
        XCTAssertEqual(run(&table, "SET a 012345678"), "OK\n", "a shorter value frees the difference")
        XCTAssertEqual(table.bytes, 277)
        XCTAssertEqual(run(&table, "SET a 0123456789"), "OK\n", "and takes it back")
        XCTAssertEqual(run(&table, "DEL a"), "DELETED\n")
        XCTAssertEqual(table.bytes, 139)
        XCTAssertEqual(run(&table, "SET c "), "OK\n")
        XCTAssertEqual(table.bytes, cost(table))
    }

    /// A flood on one connection: every SET past the bound is `ERROR full`, the rest answers.
    func testKeyFloodGetsFullAndTheRestGoesOn() {
        var table = KVTable(limits: KVLimits(keys: 1_000, bytes: 64 * 1024))
        var ok = 0, full = 0
        for i in 0..<10_000 {
            switch run(&table, "SET flood\(i) value-\(i)") {
            case "OK\n": ok += 1
            case "ERROR full\n": full += 1
            case let other: XCTFail("SET flood\(i): \(other)")
            }
        }
        XCTAssertEqual(ok + full, 10_000)
        XCTAssertEqual(ok, table.count)
        XCTAssertLessThanOrEqual(table.bytes, 64 * 1024)
        XCTAssertGreaterThan(table.bytes, 64 * 1024 - 160, "full means no further entry fits")
        XCTAssertEqual(table.bytes, cost(table))
        XCTAssertEqual(run(&table, "GET flood0"), "VALUE value-0\n")
        XCTAssertEqual(run(&table, "GET flood9999"), "NOT_FOUND\n")
        XCTAssertEqual(run(&table, "DEL flood0"), "DELETED\n")
        XCTAssertEqual(run(&table, "SET other 1"), "OK\n")
        XCTAssertEqual(run(&table, "QUIT"), "BYE\n")
    }

    func testMemoryBudgetRefusalIsFull() {
        var table = KVTable(limits: KVLimits(keys: 100, bytes: 1 << 20), admit: { MemoryBudget.admit($0, for: $1) })
        XCTAssertEqual(run(&table, "SET kept 1"), "OK\n")
        MemoryBudget.isEnforced = true
        defer { MemoryBudget.isEnforced = false; MemoryBudget.reserveOverride = nil }
        MemoryBudget.reserveOverride = MemoryBudget.availableBytes + 1     // nothing can be promised
        let before = MemoryBudget.refusals
        XCTAssertEqual(run(&table, "SET new 1"), "ERROR full\n")
        XCTAssertEqual(run(&table, "SET kept 2"), "ERROR full\n")
        XCTAssertEqual(MemoryBudget.refusals, before + 2)
        XCTAssertEqual(run(&table, "GET kept"), "VALUE 1\n")
        XCTAssertEqual(run(&table, "DEL kept"), "DELETED\n", "DEL needs no memory")
        XCTAssertEqual(table.bytes, 0)
    }

    func testKernelArguments() throws {
        func limits(_ line: String) throws(KernelArgumentError) -> KVLimits {
            try KVLimits(commandLine: try! KernelCommandLine(parsing: Array(line.utf8)))
        }
        XCTAssertEqual(try limits("kv-keys=10 kv-bytes=4096"), KVLimits(keys: 10, bytes: 4096))
        XCTAssertEqual(try limits("").keys, KVLimits.defaults.keys)
        XCTAssertEqual(try limits("kv-keys=7"), KVLimits(keys: 7, bytes: KVLimits.defaults.bytes))
        XCTAssertThrowsError(try limits("kv-keys=0"))
        XCTAssertThrowsError(try limits("kv-keys=many"))
        XCTAssertThrowsError(try limits("kv-bytes=1023"))
        XCTAssertThrowsError(try limits("kv-bytes="))
        XCTAssertThrowsError(try limits("kv-keys=16777217"))
        // Defaults follow memory: a quarter of it for bytes, a quarter / 256 for keys.
        let defaults = KVLimits.defaults
        XCTAssertEqual(defaults.keys, MemoryBudget.share(denominator: 4, perItem: 256, minimum: 1024, maximum: 1 << 24))
        XCTAssertEqual(defaults.bytes, max(1 << 20, MemoryBudget.totalBytes / 4))
    }
}
