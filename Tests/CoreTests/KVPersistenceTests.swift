// kv's SAVE and its load at start (KVFile) over a MemoryFileSystem: round trip, the exact
// file layout, corrupt files of every kind, a read-only share, no share.

import XCTest
@testable import Core

final class KVPersistenceTests: XCTestCase {
    func reply(_ table: inout KVTable, _ line: String, _ fs: (any FileSystem)?) -> String {
        String(decoding: table.handle(Array(line.utf8)[...], fileSystem: fs).reply, as: UTF8.self)
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
        var table = KVTable()
        XCTAssertEqual(reply(&table, "SET a 1", fs), "OK\n")
        XCTAssertEqual(reply(&table, "SET key with spaces in value", fs), "OK\n")
        XCTAssertEqual(reply(&table, "SAVE", fs), "OK\n")
        XCTAssertNil(fileBytes(fs, "/kv.db.tmp"), "the temporary file was renamed")
        XCTAssertEqual(fs.openHandleCount, 0)

        var fresh = KVTable()
        XCTAssertEqual(fresh.load(from: fs), .loaded([Array("a".utf8): Array("1".utf8),
                                                      Array("key".utf8): Array("with spaces in value".utf8)]))
        XCTAssertEqual(reply(&fresh, "GET key", fs), "VALUE with spaces in value\n")
        // Saving again replaces the file whole.
        XCTAssertEqual(reply(&fresh, "DEL a", fs), "DELETED\n")
        XCTAssertEqual(reply(&fresh, "SAVE", fs), "OK\n")
        var third = KVTable()
        XCTAssertEqual(third.load(from: fs), .loaded([Array("key".utf8): Array("with spaces in value".utf8)]))
    }

    func testFileLayout() {
        let bytes = KVFile.encode([Array("b".utf8): Array("22".utf8), Array("a".utf8): []])
        var expected = Array("TOROKV1\n".utf8) + [2, 0, 0, 0]
        expected += [1, 0, 0, 0, 0, 0, 0, 0] + Array("a".utf8)
        expected += [1, 0, 0, 0, 2, 0, 0, 0] + Array("b22".utf8)
        let crc = CRC32.checksum(expected)
        expected += [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)]
        XCTAssertEqual(bytes, expected)
        XCTAssertEqual(KVFile.decode(KVFile.encode([:])), .success([:]))
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
            (resealed(Array("TOROKV1\n".utf8) + [1, 0, 0, 0] + [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]), .truncatedRecord),
        ]
        for (bytes, corruption) in cases {
            XCTAssertEqual(KVFile.decode(bytes), .failure(corruption), "\(bytes)")
            let fs = MemoryFileSystem()
            write(fs, bytes)
            var table = KVTable()
            XCTAssertEqual(table.load(from: fs), .corrupt(corruption))
            XCTAssertEqual(table.count, 0)
        }
        let fs = MemoryFileSystem()
        try! fs.makeDirectory(try! VFSPath(parsing: Array("/kv.db".utf8)), mode: 0o755)
        var table = KVTable()
        XCTAssertEqual(table.load(from: fs), .corrupt(.notARegularFile))
        XCTAssertEqual(table.load(from: MemoryFileSystem()), .absent)
    }

    func testReadOnlyAndNoShare() {
        let fs = MemoryFileSystem()
        write(fs, KVFile.encode([Array("old".utf8): Array("1".utf8)]))
        let before = fileBytes(fs)
        fs.isReadOnly = true
        var table = KVTable()
        XCTAssertEqual(table.load(from: fs), .loaded([Array("old".utf8): Array("1".utf8)]))
        XCTAssertEqual(reply(&table, "SET new 2", fs), "OK\n")
        XCTAssertEqual(reply(&table, "SAVE", fs), "ERROR read-only file system\n")
        XCTAssertEqual(fileBytes(fs), before)
        XCTAssertEqual(try fs.readDirectory(.root).count, 1, "no temporary file left")
        XCTAssertEqual(reply(&table, "SAVE", nil), "ERROR no shared folder\n")
        XCTAssertEqual(String(decoding: table.handle(Array("SAVE".utf8)[...]).reply, as: UTF8.self), "ERROR no shared folder\n",
                       "the host server's call")
        XCTAssertEqual(reply(&table, "SAVE now", fs), "ERROR usage: SAVE\n")
        XCTAssertEqual(fs.openHandleCount, 0)
    }

    /// A full disk: the old file stays, the temporary one is removed.
    func testNoSpaceKeepsTheOldFile() {
        let fs = MemoryFileSystem(capacity: 64)
        write(fs, KVFile.encode([Array("a".utf8): Array("1".utf8)]))
        let before = fileBytes(fs)
        var table = KVTable()
        XCTAssertEqual(reply(&table, "SET big " + String(repeating: "x", count: 100), fs), "OK\n")
        XCTAssertEqual(reply(&table, "SAVE", fs), "ERROR no space left on device\n")
        XCTAssertEqual(fileBytes(fs), before)
        XCTAssertNil(fileBytes(fs, "/kv.db.tmp"))
    }
}
