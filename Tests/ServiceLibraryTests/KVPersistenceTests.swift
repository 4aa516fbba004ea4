// kv's SAVE and its load at start (KVFile, KVFileIO, the service's KVShared) over a
// MemoryFileSystem: round trip, the exact file layout, corrupt files of every kind, a
// read-only share, no share, a full disk. Streaming, chunk boundaries and the limits are
// in KVFileStreamTests and KVBoundsTests.

import XCTest
@testable import Core
@testable import KVProtocol
@testable import KVStore
import Wire

final class KVPersistenceTests: XCTestCase {
    func reply(_ kv: KVShared, _ line: String) -> String {
        String(decoding: kv.handle(Array(line.utf8)[...]).reply, as: UTF8.self)
    }

    func loaded(_ fs: MemoryFileSystem, limits: KVLimits = .unlimited) -> KVFile.LoadOutcome {
        KVFile.load(from: fs, limits: limits)
    }

    func table(_ pairs: [(String, String)]) -> [[UInt8]: [UInt8]] {
        var out: [[UInt8]: [UInt8]] = [:]
        for (key, value) in pairs { out[Array(key.utf8)] = Array(value.utf8) }
        return out
    }

    func cost(_ entries: [[UInt8]: [UInt8]]) -> Int {
        entries.reduce(0) { $0 + KVLimits.cost(keyLength: $1.key.count, valueLength: $1.value.count) }
    }

    func fileBytes(_ fs: MemoryFileSystem, _ name: String = "/kv.db") -> [UInt8]? {
        guard let handle = try? fs.open(try! VFSPath(parsing: Array(name.utf8)), flags: .read, mode: 0) else { return nil }
        defer { try? fs.close(handle) }
        var bytes = [UInt8](repeating: 0, count: 1 << 16)
        let count = bytes.withUnsafeMutableBytes { try! fs.read(handle, offset: 0, into: $0) }
        return Array(bytes[0..<count])
    }

    func write(_ fs: MemoryFileSystem, _ bytes: [UInt8], _ name: String = "/kv.db") {
        let handle = try! fs.open(try! VFSPath(parsing: Array(name.utf8)), flags: [.write, .create, .truncate], mode: 0o644)
        _ = bytes.withUnsafeBytes { try! fs.write(handle, offset: 0, from: $0) }
        try! fs.close(handle)
    }

    func testSaveThenLoadRoundTrip() {
        let fs = MemoryFileSystem(clock: { 0 })
        let kv = KVShared(fileSystem: fs)
        XCTAssertEqual(reply(kv, "SET a 1"), "OK\n")
        XCTAssertEqual(reply(kv, "SET key with spaces in value"), "OK\n")
        XCTAssertEqual(reply(kv, "SAVE"), "OK\n")
        XCTAssertNil(fileBytes(fs, "/kv.db.tmp"), "the temporary file was renamed")
        XCTAssertEqual(fs.openHandleCount, 0)

        let expected = table([("a", "1"), ("key", "with spaces in value")])
        XCTAssertEqual(loaded(fs), .loaded(expected, bytes: cost(expected)))
        let fresh = KVShared(fileSystem: fs)
        fresh.load()
        XCTAssertEqual(fresh.table.entries, expected)
        XCTAssertEqual(fresh.table.bytes, cost(expected))
        XCTAssertEqual(reply(fresh, "GET key"), "VALUE with spaces in value\n")
        // Saving again replaces the file whole.
        XCTAssertEqual(reply(fresh, "DEL a"), "DELETED\n")
        XCTAssertEqual(reply(fresh, "SAVE"), "OK\n")
        let third = KVShared(fileSystem: fs)
        third.load()
        XCTAssertEqual(third.table.entries, table([("key", "with spaces in value")]))
    }

    func testFileLayout() {
        func record(_ key: String, _ value: String) -> [UInt8] {
            [UInt8(key.utf8.count), 0, 0, 0, UInt8(value.utf8.count), 0, 0, 0] + Array(key.utf8) + Array(value.utf8)
        }
        func sealed(_ body: [UInt8]) -> [UInt8] {
            let crc = CRC32.checksum(body)
            return body + [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)]
        }
        let bytes = KVFile.encode(table([("b", "22"), ("a", "")]))
        // Records come in the dictionary's order (the encoder streams, it does not sort).
        let header = Array("TOROKV1\n".utf8) + [2, 0, 0, 0]
        let either = [sealed(header + record("a", "") + record("b", "22")), sealed(header + record("b", "22") + record("a", ""))]
        XCTAssertTrue(either.contains(bytes), "\(bytes)")
        XCTAssertEqual(KVFile.encode([:]), sealed(Array("TOROKV1\n".utf8) + [0, 0, 0, 0]))
        XCTAssertEqual(KVFile.decode(KVFile.encode([:])), .success([:]))
        // A file written sorted, as SAVE did before it streamed, still loads.
        XCTAssertEqual(KVFile.decode(either[0]), .success(table([("b", "22"), ("a", "")])))
    }

    func testCorruptFilesStartEmpty() {
        let good = KVFile.encode([Array("k".utf8): Array("v".utf8)])
        func resealed(_ body: [UInt8]) -> [UInt8] {
            let crc = CRC32.checksum(body)
            return body + [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)]
        }
        let body = Array(good.dropLast(4))
        var flipped = good
        flipped[14] ^= 1
        var badCount = body
        badCount[8] = 9
        var spaceKey = body
        spaceKey[20] = 32
        let cases: [([UInt8], KVFileCorruption)] = [
            ([], .notAKVFile), (Array("hello world, not kv".utf8), .notAKVFile),
            (Array(good.dropLast()), .checksumMismatch), (flipped, .checksumMismatch),
            (resealed(badCount), .truncatedRecord), (resealed(spaceKey), .badRecord),
            (resealed(body + [0]), .trailingBytes),
            (resealed(Array("TOROKV1\n".utf8) + [2, 0, 0, 0] + [1, 0, 0, 0, 1, 0, 0, 0] + Array("kv".utf8)
                      + [1, 0, 0, 0, 1, 0, 0, 0] + Array("kw".utf8)), .duplicateKey),
            // A key longer than 250 bytes is bad before its bytes are read.
            (resealed(Array("TOROKV1\n".utf8) + [1, 0, 0, 0] + [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]), .badRecord),
            (resealed(Array("TOROKV1\n".utf8) + [1, 0, 0, 0] + [1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F] + Array("k".utf8)),
             .truncatedRecord),
            (resealed(Array("TOROKV1\n".utf8) + [1, 0, 0, 0] + [1, 0, 0, 0, 2, 0, 0, 0] + Array("kv\n".utf8)), .badRecord),
            (Array("TOROKV1\ngarbage that is not a table".utf8), .checksumMismatch),
        ]
        for (bytes, corruption) in cases {
            XCTAssertEqual(KVFile.decode(bytes), .failure(corruption), "\(bytes)")
            let fs = MemoryFileSystem()
            write(fs, bytes)
            XCTAssertEqual(loaded(fs, limits: KVLimits(keys: 100, bytes: 100_000)), .corrupt(corruption), "\(bytes)")
            let kv = KVShared(fileSystem: fs)
            kv.load()
            XCTAssertEqual(kv.table.count, 0)
            XCTAssertEqual(kv.table.bytes, 0)
            XCTAssertEqual(fileBytes(fs), bytes, "loading never writes")
        }
        let fs = MemoryFileSystem()
        try! fs.makeDirectory(try! VFSPath(parsing: Array("/kv.db".utf8)), mode: 0o755)
        XCTAssertEqual(loaded(fs), .corrupt(.notARegularFile))
        XCTAssertEqual(loaded(MemoryFileSystem()), .absent)
    }

    func testReadOnlyAndNoShare() {
        let fs = MemoryFileSystem()
        write(fs, KVFile.encode(table([("old", "1")])))
        let before = fileBytes(fs)
        fs.isReadOnly = true
        let kv = KVShared(fileSystem: fs)
        kv.load()
        XCTAssertEqual(kv.table.entries, table([("old", "1")]))
        XCTAssertEqual(reply(kv, "SET new 2"), "OK\n")
        XCTAssertEqual(reply(kv, "SAVE"), "ERROR read-only file system\n")
        XCTAssertEqual(fileBytes(fs), before)
        XCTAssertEqual(try fs.readDirectory(.root).count, 1, "no temporary file left")
        XCTAssertEqual(reply(KVShared(fileSystem: nil), "SAVE"), "ERROR no shared folder\n")
        var plain = KVTable()
        XCTAssertEqual(String(decoding: plain.handle(Array("SAVE".utf8)[...]).reply, as: UTF8.self), "ERROR no shared folder\n",
                       "the host server's call")
        XCTAssertEqual(reply(kv, "SAVE now"), "ERROR usage: SAVE\n")
        XCTAssertEqual(fs.openHandleCount, 0)
    }

    /// A full disk: the old file stays, the temporary one is removed.
    func testNoSpaceKeepsTheOldFile() {
        let fs = MemoryFileSystem(capacity: 64)
        write(fs, KVFile.encode(table([("a", "1")])))
        let before = fileBytes(fs)
        let kv = KVShared(fileSystem: fs)
        XCTAssertEqual(reply(kv, "SET big " + String(repeating: "x", count: 100)), "OK\n")
        XCTAssertEqual(reply(kv, "SAVE"), "ERROR no space left on device\n")
        XCTAssertEqual(fileBytes(fs), before)
        XCTAssertNil(fileBytes(fs, "/kv.db.tmp"))
        XCTAssertEqual(fs.openHandleCount, 0)
    }
}
