// The kv file's streaming encoder and decoder (KVFile.swift, KVFileDecoder.swift) and the
// streamed save and load (KVFileIO.swift): tables several times the 16 KiB chunk, every
// chunking of the input giving the same result, files cut or damaged at every chunk
// boundary (and around it) refused with the table left empty, a save that writes in
// 16 KiB pieces whatever the table's size, and files over the limits refused from their
// header, before anything is decoded, with the file left as it was.

import XCTest
@testable import Core
@testable import KVProtocol
@testable import KVStore

final class KVFileStreamTests: XCTestCase {
    /// `count` entries with keys of 1-40 bytes and values of 0-300 bytes, all different.
    func bigTable(_ count: Int) -> [[UInt8]: [UInt8]] {
        var out: [[UInt8]: [UInt8]] = [:]
        for i in 0..<count {
            let key = Array("key\(i)-".utf8) + [UInt8](repeating: UInt8(97 + i % 26), count: i % 30)
            out[key] = (0..<(i * 37 % 301)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) == 10 ? 11 : UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
        }
        return out
    }

    func cost(_ entries: [[UInt8]: [UInt8]]) -> Int {
        entries.reduce(0) { $0 + KVLimits.cost(keyLength: $1.key.count, valueLength: $1.value.count) }
    }

    func decode(_ bytes: [UInt8], chunks: [Int], limits: KVLimits = .unlimited, fileSize: Int? = nil) -> KVFileDecoder.Outcome {
        var decoder = KVFileDecoder(limits: limits, fileSize: fileSize)
        var offset = 0
        var index = 0
        bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let size = min(chunks[index % chunks.count], raw.count - offset)
                index += 1
                guard decoder.feed(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + size])) else { return }
                offset += size
            }
        }
        return decoder.finish()
    }

    func testEncoderFillsAnyBufferSizeWithTheSameBytes() {
        let entries = bigTable(600)
        let whole = KVFile.encode(entries)
        XCTAssertGreaterThan(whole.count, 5 * KVFile.chunkSize, "the table is several chunks long")
        for size in [1, 3, 7, 8, 12, 13, 4096, 16 * 1024, 100_000] {
            var encoder = KVFileEncoder(entries)
            var out: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: size)
            while true {
                let count = buffer.withUnsafeMutableBytes { encoder.fill($0) }
                if count == 0 { break }
                XCTAssertTrue(count == size || encoder.isFinished, "only the last fill is short")
                out += buffer[0..<count]
            }
            XCTAssertEqual(out, whole, "buffer of \(size)")
        }
        XCTAssertEqual(KVFile.decode(whole), .success(entries))
    }

    func testDecoderTakesAnyChunking() {
        let entries = bigTable(600)
        let bytes = KVFile.encode(entries)
        let expected = KVFileDecoder.Outcome.loaded(entries, bytes: cost(entries))
        for chunks in [[1], [2], [3], [5, 1, 4], [4], [7, 16 * 1024], [16 * 1024], [bytes.count], [1000, 1, 2, 3]] {
            XCTAssertEqual(decode(bytes, chunks: chunks), expected, "chunks \(chunks)")
            XCTAssertEqual(decode(bytes, chunks: chunks, fileSize: bytes.count), expected, "chunks \(chunks), size known")
        }
    }

    /// Cut or damage the file at every chunk boundary and around it: never loaded, never a trap.
    func testCutsAndDamageAtEveryChunkBoundary() {
        let entries = bigTable(600)
        let bytes = KVFile.encode(entries)
        var points: [Int] = [0, 1, 8, 11, 12, 13, 16, 20, bytes.count - 5, bytes.count - 4, bytes.count - 1]
        for boundary in stride(from: KVFile.chunkSize, to: bytes.count, by: KVFile.chunkSize) {
            points += [boundary - 4, boundary - 1, boundary, boundary + 1, boundary + 4]
        }
        for point in points {
            let cut = Array(bytes[0..<point])
            let outcome = decode(cut, chunks: [KVFile.chunkSize])
            XCTAssertTrue(outcome == .corrupt(.checksumMismatch) || outcome == .corrupt(.notAKVFile), "cut at \(point): \(outcome)")
            XCTAssertEqual(decode(cut, chunks: [KVFile.chunkSize], fileSize: cut.count), outcome, "cut at \(point), size known")
            var damaged = bytes
            damaged[point] ^= 0x40
            let hurt = decode(damaged, chunks: [KVFile.chunkSize], limits: KVLimits(keys: 1000, bytes: 1 << 20),
                              fileSize: damaged.count)
            XCTAssertTrue(hurt == .corrupt(.checksumMismatch) || hurt == .corrupt(.notAKVFile), "damage at \(point): \(hurt)")
            // Through the file system, as kv loads at start: the table stays empty.
            let fs = MemoryFileSystem()
            write(fs, damaged)
            let kv = KVShared(fileSystem: fs, limits: KVLimits(keys: 1000, bytes: 1 << 20))
            kv.load()
            XCTAssertEqual(kv.table.count, 0, "damage at \(point)")
            XCTAssertEqual(kv.table.bytes, 0)
        }
    }

    func testSaveStreamsChunksAndReloads() {
        let entries = bigTable(600)
        let fs = RecordingFileSystem()
        let kv = KVShared(fileSystem: fs)
        kv.table.replace(with: entries, bytes: cost(entries))
        XCTAssertEqual(String(decoding: kv.handle(Array("SAVE".utf8)[...]).reply, as: UTF8.self), "OK\n")
        let expected = KVFile.encode(entries)
        XCTAssertEqual(fs.writes.max(), KVFile.chunkSize, "never more than one buffer at a time")
        XCTAssertEqual(fs.writes.reduce(0, +), expected.count)
        XCTAssertEqual(fs.writes.count, (expected.count + KVFile.chunkSize - 1) / KVFile.chunkSize)
        XCTAssertEqual(KVFile.load(from: fs, limits: .unlimited), .loaded(entries, bytes: cost(entries)))
        let again = KVShared(fileSystem: fs, limits: KVLimits(keys: 600, bytes: cost(entries)))
        again.load()
        XCTAssertEqual(again.table.entries, entries, "a table exactly at its limits loads")
        XCTAssertEqual(again.table.bytes, cost(entries))
    }

    /// A file over the limits is refused from its header and left as it was.
    func testFilesOverTheLimitsAreRefusedUntouched() {
        let entries = bigTable(600)
        let bytes = KVFile.encode(entries)
        let full = cost(entries)
        let fs = MemoryFileSystem()
        write(fs, bytes)
        XCTAssertEqual(KVFile.load(from: fs, limits: KVLimits(keys: 599, bytes: full)),
                       .refused(KVFileRefusal(bound: .keys, keys: 600, bytes: full)))
        XCTAssertEqual(KVFile.load(from: fs, limits: KVLimits(keys: 600, bytes: full - 1)),
                       .refused(KVFileRefusal(bound: .bytes, keys: 600, bytes: full)))
        var asked: [Int] = []
        XCTAssertEqual(KVFile.load(from: fs, limits: KVLimits(keys: 600, bytes: full)) { asked.append($0); return false },
                       .refused(KVFileRefusal(bound: .memory, keys: 600, bytes: full)))
        XCTAssertEqual(asked, [full], "admission is asked once, for the whole file")
        let kv = KVShared(fileSystem: fs, limits: KVLimits(keys: 100, bytes: 1 << 30))
        kv.load()
        XCTAssertEqual(kv.table.count, 0)
        XCTAssertEqual(kv.table.bytes, 0)
        XCTAssertEqual(readAll(fs), bytes, "the file is left as it was")
        XCTAssertEqual(fs.openHandleCount, 0)

        // Without the size (a stream), the bytes bound stops decoding at the record that crosses it.
        let refused = decode(bytes, chunks: [KVFile.chunkSize], limits: KVLimits(keys: 600, bytes: full / 2))
        guard case .refused(let refusal) = refused else { return XCTFail("\(refused)") }
        XCTAssertEqual(refusal.bound, .bytes)
        XCTAssertGreaterThan(refusal.bytes, full / 2)
        XCTAssertLessThanOrEqual(refusal.bytes, full / 2 + 500)
        // Reading stops at once: `feed` says so.
        var decoder = KVFileDecoder(limits: KVLimits(keys: 10, bytes: 1 << 20))
        let more = bytes.withUnsafeBytes { decoder.feed(UnsafeRawBufferPointer(rebasing: $0[0..<100])) }
        XCTAssertFalse(more)
    }

    func write(_ fs: MemoryFileSystem, _ bytes: [UInt8]) {
        let handle = try! fs.open(try! VFSPath(parsing: Array("/kv.db".utf8)), flags: [.write, .create, .truncate], mode: 0o644)
        _ = bytes.withUnsafeBytes { try! fs.write(handle, offset: 0, from: $0) }
        try! fs.close(handle)
    }

    func readAll(_ fs: MemoryFileSystem) -> [UInt8] {
        let handle = try! fs.open(try! VFSPath(parsing: Array("/kv.db".utf8)), flags: .read, mode: 0)
        defer { try? fs.close(handle) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { try! fs.read(handle, offset: UInt64(out.count), into: $0) }
            if count == 0 { return out }
            out += buffer[0..<count]
        }
    }
}

/// A MemoryFileSystem that records the size of every write.
final class RecordingFileSystem: FileSystem {
    let inner = MemoryFileSystem()
    var writes: [Int] = []

    func stat(_ path: VFSPath) throws(FileSystemError) -> FileAttributes { try inner.stat(path) }
    func open(_ path: VFSPath, flags: OpenFlags, mode: UInt32) throws(FileSystemError) -> FileHandleID {
        try inner.open(path, flags: flags, mode: mode)
    }
    func read(_ handle: FileHandleID, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        try inner.read(handle, offset: offset, into: buffer)
    }
    func write(_ handle: FileHandleID, offset: UInt64, from buffer: UnsafeRawBufferPointer) throws(FileSystemError) -> Int {
        writes.append(buffer.count)
        return try inner.write(handle, offset: offset, from: buffer)
    }
    func attributes(_ handle: FileHandleID) throws(FileSystemError) -> FileAttributes { try inner.attributes(handle) }
    func close(_ handle: FileHandleID) throws(FileSystemError) { try inner.close(handle) }
    func readDirectory(_ path: VFSPath) throws(FileSystemError) -> [DirectoryEntry] { try inner.readDirectory(path) }
    func makeDirectory(_ path: VFSPath, mode: UInt32) throws(FileSystemError) { try inner.makeDirectory(path, mode: mode) }
    func remove(_ path: VFSPath) throws(FileSystemError) { try inner.remove(path) }
    func removeDirectory(_ path: VFSPath) throws(FileSystemError) { try inner.removeDirectory(path) }
    func rename(from: VFSPath, to: VFSPath) throws(FileSystemError) { try inner.rename(from: from, to: to) }
    func truncate(_ path: VFSPath, size: UInt64) throws(FileSystemError) { try inner.truncate(path, size: size) }
}
