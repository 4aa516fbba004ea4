// fs-manifest's walk and line format over a MemoryFileSystem: sorting on raw bytes across
// folders, sizes and CRCs, escapes, symlinks and errors.

import XCTest
@testable import Core
@testable import FileManifest

final class FSManifestTests: XCTestCase {
    func makeFS() -> MemoryFileSystem {
        let fs = MemoryFileSystem(clock: { 0 })
        func dir(_ path: String) { try! fs.makeDirectory(try! VFSPath(parsing: Array(path.utf8)), mode: 0o755) }
        func put(_ path: [UInt8], _ bytes: [UInt8]) {
            let handle = try! fs.open(try! VFSPath(parsing: path), flags: [.write, .create], mode: 0o644)
            _ = bytes.withUnsafeBytes { try! fs.write(handle, offset: 0, from: $0) }
            try! fs.close(handle)
        }
        dir("/a")
        dir("/a b")
        dir("/a/deep")
        dir("/empty")
        put(Array("/a/x".utf8), Array("123456789".utf8))
        put(Array("/a b/x".utf8), [])
        put(Array("/a/deep/z\u{e9}.txt".utf8), Array("The quick brown fox jumps over the lazy dog".utf8))
        put(Array("/top".utf8), [0xFF])
        put([0x2F, 0x6E, 0x0A, 0x5C], Array("a".utf8))   // "/n\n\\": escaped on output
        return fs
    }

    func testWalkSortsBytewiseAcrossFolders() throws {
        let entries = try FSManifest.collect(makeFS(), chunkSize: 3)
        XCTAssertEqual(entries.map { String(decoding: $0.path, as: UTF8.self) },
                       ["a b/x", "a/deep/z\u{e9}.txt", "a/x", "n\n\\", "top"], "' ' (0x20) sorts before '/' (0x2f)")
        XCTAssertEqual(entries[2], FSManifest.Entry(path: Array("a/x".utf8), size: 9, crc: 0xCBF4_3926))
        XCTAssertEqual(entries[1].crc, 0x414F_A339)
        XCTAssertEqual(entries[1].size, 43)
    }

    func testLines() throws {
        let entries = try FSManifest.collect(makeFS())
        let text = String(decoding: entries.flatMap(FSManifest.line) + FSManifest.summary(count: entries.count), as: UTF8.self)
        XCTAssertEqual(text, """
            a b/x 0 00000000
            a/deep/z\u{e9}.txt 43 414fa339
            a/x 9 cbf43926
            n\\x0a\\x5c 1 e8b7be43
            top 1 ff000000
            fs-manifest: 5 files

            """)
    }

    func testEmptyShare() throws {
        XCTAssertEqual(try FSManifest.collect(MemoryFileSystem()), [])
        XCTAssertEqual(String(decoding: FSManifest.summary(count: 0), as: UTF8.self), "fs-manifest: 0 files\n")
    }

    /// A listing that reports symlinks (as .symlink or .other): one resolving to a file is
    /// listed, others are not;
    /// an unreadable folder stops the walk with its path.
    func testSymlinksAndErrors() {
        final class Links: FileSystem {
            let inner: MemoryFileSystem
            var brokenDirectory = false
            init(_ inner: MemoryFileSystem) { self.inner = inner }
            func stat(_ path: VFSPath) throws(FileSystemError) -> FileAttributes {
                switch path.name.map({ String(decoding: $0, as: UTF8.self) }) {
                case "to-file": return try inner.stat(try VFSPath(parsing: Array("/top".utf8)))
                case "to-dir": return try inner.stat(try VFSPath(parsing: Array("/a".utf8)))
                case "outside": throw .permissionDenied
                default: return try inner.stat(path)
                }
            }
            func open(_ path: VFSPath, flags: OpenFlags, mode: UInt32) throws(FileSystemError) -> FileHandleID {
                path.name == Array("to-file".utf8) ? try inner.open(try VFSPath(parsing: Array("/top".utf8)), flags: flags, mode: mode)
                    : try inner.open(path, flags: flags, mode: mode)
            }
            func read(_ handle: FileHandleID, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
                try inner.read(handle, offset: offset, into: buffer)
            }
            func write(_ handle: FileHandleID, offset: UInt64, from buffer: UnsafeRawBufferPointer) throws(FileSystemError) -> Int { throw .readOnly }
            func attributes(_ handle: FileHandleID) throws(FileSystemError) -> FileAttributes { try inner.attributes(handle) }
            func close(_ handle: FileHandleID) throws(FileSystemError) { try inner.close(handle) }
            func readDirectory(_ path: VFSPath) throws(FileSystemError) -> [DirectoryEntry] {
                if brokenDirectory && path.name == Array("a".utf8) { throw .io }
                var entries = try inner.readDirectory(path)
                if path.isRoot {
                    // toro-fs lists symlinks with an unknown type (.other).
                    entries.append(DirectoryEntry(name: Array("to-file".utf8), kind: .other))
                    entries += ["to-dir", "outside"].map { DirectoryEntry(name: Array($0.utf8), kind: .symlink) }
                    entries.append(DirectoryEntry(name: Array("fifo".utf8), kind: .other))
                }
                return entries
            }
            func makeDirectory(_ path: VFSPath, mode: UInt32) throws(FileSystemError) { throw .readOnly }
            func remove(_ path: VFSPath) throws(FileSystemError) { throw .readOnly }
            func removeDirectory(_ path: VFSPath) throws(FileSystemError) { throw .readOnly }
            func rename(from: VFSPath, to: VFSPath) throws(FileSystemError) { throw .readOnly }
            func truncate(_ path: VFSPath, size: UInt64) throws(FileSystemError) { throw .readOnly }
        }
        let links = Links(makeFS())
        let entries = try? FSManifest.collect(links)
        XCTAssertEqual(entries?.map { String(decoding: $0.path, as: UTF8.self) }, ["a b/x", "a/deep/z\u{e9}.txt", "a/x", "n\n\\", "to-file", "top"])
        XCTAssertEqual(entries?.first { $0.path == Array("to-file".utf8) }?.crc, 0xFF00_0000)
        links.brokenDirectory = true
        XCTAssertThrowsError(try FSManifest.collect(links)) { error in
            XCTAssertEqual(error as? FSManifest.WalkError, FSManifest.WalkError(path: Array("a".utf8), error: .io))
        }
    }
}
