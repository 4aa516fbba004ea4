// The VFS layer over MemoryFileSystem: path normalisation and every rejection; each VFS
// call's success and error cases; descriptor-table exhaustion and bad descriptors; sparse
// writes and reads past end of file; rename edge cases; read-only mounts and capacity.
import XCTest
@testable import Core

/// Path bytes from a string literal.
private func p(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Asserts `body` throws exactly `expected` (closures infer untyped throws, hence the cast).
private func assertThrows<T>(_ expected: FileSystemError, file: StaticString = #filePath, line: UInt = #line,
                             _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected \(expected), got success", file: file, line: line)
    } catch {
        XCTAssertEqual(error as? FileSystemError, expected, file: file, line: line)
    }
}

final class VFSTests: XCTestCase {
    var memory: MemoryFileSystem!
    var vfs: VFS!

    override func setUp() {
        memory = MemoryFileSystem(clock: { 1_700_000_000 })
        vfs = VFS()
        XCTAssertNoThrow(try vfs.mount(memory))
    }

    /// Creates `path` holding `bytes`.
    private func make(_ path: String, _ bytes: [UInt8]) throws {
        let fd = try vfs.open(p(path), flags: [.write, .create, .truncate])
        XCTAssertEqual(try vfs.write(fd, bytes), bytes.count)
        try vfs.close(fd)
    }

    private func contents(_ path: String) throws -> [UInt8] {
        let fd = try vfs.open(p(path), flags: .read)
        defer { try? vfs.close(fd) }
        return try vfs.read(fd, count: 1 << 16)
    }

    private func names(_ path: String) throws -> [String] {
        try vfs.readdir(p(path)).map { String(decoding: $0.name, as: UTF8.self) }
    }

    // MARK: VFSPath

    func testPathNormalisation() throws {
        let cases: [(String, [String])] = [
            ("/", []), ("//", []), ("/.", []), ("/a", ["a"]), ("/a/", ["a"]), ("//a//b///", ["a", "b"]),
            ("/a/./b/.", ["a", "b"]), ("/a/b/..", ["a"]), ("/a/../b", ["b"]), ("/a/b/../../c", ["c"]),
            ("/a/..", []), ("/...", ["..."]), ("/.a/..b", [".a", "..b"]),
        ]
        for (input, expected) in cases {
            let path = try VFSPath(parsing: p(input))
            XCTAssertEqual(path.components, expected.map(p), input)
            XCTAssertEqual(path.bytes, p("/" + expected.joined(separator: "/")), input)
            XCTAssertEqual(path.byteCount, path.bytes.count, input)
            XCTAssertEqual(path.isRoot, expected.isEmpty, input)
        }
        XCTAssertEqual(try VFSPath(parsing: [0x2F, 0xFF, 0xFE]).components, [[0xFF, 0xFE]], "names are bytes, not UTF-8")
    }

    func testPathRejections() {
        assertThrows(.invalidPath) { try VFSPath(parsing: []) }
        assertThrows(.invalidPath) { try VFSPath(parsing: p("a/b")) }
        assertThrows(.invalidPath) { try VFSPath(parsing: p("./a")) }
        assertThrows(.invalidPath) { try VFSPath(parsing: p("/a\0b")) }
        assertThrows(.invalidPath) { try VFSPath(parsing: [0x2F, 0]) }
        assertThrows(.invalidPath) { try VFSPath(parsing: p("/..")) }
        assertThrows(.invalidPath) { try VFSPath(parsing: p("/a/../..")) }
        assertThrows(.invalidPath) { try VFSPath(parsing: p("/a/../../b")) }
        let longest = [UInt8](repeating: 0x61, count: VFSPath.maxComponentLength)
        XCTAssertNoThrow(try VFSPath(parsing: [0x2F] + longest))
        assertThrows(.nameTooLong) { try VFSPath(parsing: [0x2F] + longest + [0x61]) }
        // 4096 bytes accepted, 4097 not, even when they would normalise shorter.
        let filler = [UInt8](repeating: 0x2F, count: VFSPath.maxLength - 2) + [0x61]
        XCTAssertEqual(try VFSPath(parsing: [0x2F] + filler).components, [[0x61]])
        assertThrows(.nameTooLong) { try VFSPath(parsing: [0x2F, 0x2F] + filler) }
    }

    func testPathHelpers() throws {
        let path = try VFSPath(parsing: p("/a/b"))
        XCTAssertEqual(path.name, p("b"))
        XCTAssertEqual(path.parent, try VFSPath(parsing: p("/a")))
        XCTAssertTrue(VFSPath.root.parent == nil && VFSPath.root.name == nil)
        XCTAssertEqual(VFSPath.root.bytes, p("/"))
        XCTAssertEqual(try path.appending(p("c")).bytes, p("/a/b/c"))
        assertThrows(.invalidPath) { try path.appending(p("")) }
        assertThrows(.invalidPath) { try path.appending(p("..")) }
        assertThrows(.invalidPath) { try path.appending(p("x/y")) }
        assertThrows(.nameTooLong) { try path.appending([UInt8](repeating: 0x61, count: 256)) }
        XCTAssertTrue(path.isWithin(try VFSPath(parsing: p("/a"))))
        XCTAssertTrue(path.isWithin(path))
        XCTAssertTrue(path.isWithin(.root))
        XCTAssertFalse(try VFSPath(parsing: p("/ab")).isWithin(try VFSPath(parsing: p("/a"))))
        XCTAssertFalse(VFSPath.root.isWithin(path))
    }

    // MARK: open / read / write / seek / close

    func testWriteReadRoundTripAndOffsets() throws {
        let fd = try vfs.open(p("/hello"), flags: [.read, .write, .create])
        XCTAssertEqual(fd, 0, "lowest free descriptor")
        XCTAssertEqual(try vfs.write(fd, p("hello world")), 11)
        XCTAssertEqual(try vfs.read(fd, count: 4), [], "offset is at EOF after the write")
        XCTAssertEqual(try vfs.seek(fd, offset: 6, from: .start), 6)
        XCTAssertEqual(try vfs.read(fd, count: 3), p("wor"))
        XCTAssertEqual(try vfs.seek(fd, offset: -2, from: .current), 7)
        XCTAssertEqual(try vfs.read(fd, count: 100), p("orld"), "short read at EOF")
        XCTAssertEqual(try vfs.seek(fd, offset: -5, from: .end), 6)
        XCTAssertEqual(try vfs.write(fd, p("W")), 1)
        try vfs.close(fd)
        XCTAssertEqual(try contents("/hello"), p("hello World"))
        let attributes = try vfs.stat(p("/hello"))
        XCTAssertEqual(attributes, FileAttributes(size: 11, kind: .file, mode: 0o644, modificationTime: 1_700_000_000))
    }

    func testSparseWriteZeroFillsAndReadPastEOF() throws {
        let fd = try vfs.open(p("/sparse"), flags: [.read, .write, .create])
        XCTAssertEqual(try vfs.seek(fd, offset: 10, from: .start), 10, "seek past EOF is allowed")
        XCTAssertEqual(try vfs.read(fd, count: 5), [], "read past EOF returns nothing")
        XCTAssertEqual(try vfs.fstat(fd).size, 0, "neither seek nor read extends")
        XCTAssertEqual(try vfs.write(fd, p("x")), 1)
        XCTAssertEqual(try vfs.fstat(fd).size, 11)
        _ = try vfs.seek(fd, offset: 0, from: .start)
        XCTAssertEqual(try vfs.read(fd, count: 64), [UInt8](repeating: 0, count: 10) + p("x"))
        XCTAssertEqual(try vfs.write(fd, []), 0)
        try vfs.close(fd)
    }

    func testOpenFlags() throws {
        try make("/f", p("abc"))
        assertThrows(.exists) { try vfs.open(p("/f"), flags: [.write, .create, .exclusive]) }
        assertThrows(.notFound) { try vfs.open(p("/missing"), flags: .read) }
        assertThrows(.notFound) { try vfs.open(p("/no/such"), flags: [.write, .create]) }
        assertThrows(.notADirectory) { try vfs.open(p("/f/x"), flags: [.write, .create]) }
        assertThrows(.invalidPath) { try vfs.open(p("relative"), flags: .read) }
        let fd = try vfs.open(p("/f"), flags: [.write, .truncate])
        XCTAssertEqual(try vfs.fstat(fd).size, 0)
        assertThrows(.badDescriptor) { try vfs.read(fd, count: 1) }
        try vfs.close(fd)
        let reader = try vfs.open(p("/f"), flags: .read)
        assertThrows(.badDescriptor) { try vfs.write(reader, p("x")) }
        try vfs.close(reader)
        try vfs.close(try vfs.open(p("/new"), flags: [.write, .create, .exclusive], mode: 0o600))
        XCTAssertEqual(try vfs.stat(p("/new")).mode, 0o600)
    }

    func testDirectoriesOpenReadOnly() throws {
        try vfs.mkdir(p("/d"))
        assertThrows(.isADirectory) { try vfs.open(p("/d"), flags: .write) }
        assertThrows(.isADirectory) { try vfs.open(p("/"), flags: [.read, .write]) }
        assertThrows(.isADirectory) { try vfs.open(p("/d"), flags: [.read, .create]) }
        let fd = try vfs.open(p("/d"), flags: .read)
        assertThrows(.isADirectory) { try vfs.read(fd, count: 1) }
        try vfs.close(fd)
    }

    func testDescriptorTableExhaustionAndReuse() throws {
        let small = VFS(capacity: 4)
        try small.mount(memory)
        try make("/f", [])
        var fds: [Int32] = []
        for _ in 0..<4 { fds.append(try small.open(p("/f"), flags: .read)) }
        XCTAssertEqual(fds + [Int32(small.openCount)], [0, 1, 2, 3, 4])
        assertThrows(.tooManyOpenFiles) { try small.open(p("/f"), flags: .read) }
        try small.close(1)
        XCTAssertEqual(try small.open(p("/f"), flags: .read), 1, "the freed slot is reused first")
        XCTAssertEqual(VFS.defaultCapacity, 256)
    }

    func testBackEndHandleLimit() throws {
        let tight = MemoryFileSystem(maxHandles: 2)
        let owner = VFS()
        try owner.mount(tight)
        _ = try owner.open(p("/"), flags: .read)
        _ = try owner.open(p("/"), flags: .read)
        assertThrows(.tooManyOpenFiles) { try owner.open(p("/x"), flags: [.write, .create]) }
        assertThrows(.notFound) { try owner.stat(p("/x")) }
        XCTAssertEqual(owner.openCount, 2, "a failed open takes no descriptor")
    }

    func testBadDescriptors() throws {
        for fd: Int32 in [-1, 0, 5, 255, 256, Int32.max] {
            assertThrows(.badDescriptor) { try vfs.read(fd, count: 1) }
            assertThrows(.badDescriptor) { try vfs.write(fd, p("x")) }
            assertThrows(.badDescriptor) { try vfs.seek(fd, offset: 0, from: .start) }
            assertThrows(.badDescriptor) { try vfs.close(fd) }
            assertThrows(.badDescriptor) { try vfs.fstat(fd) }
        }
        try vfs.close(try vfs.open(p("/f"), flags: [.write, .create]))
        assertThrows(.badDescriptor) { try vfs.close(0) }
    }

    func testSeekRejectsNegativeAndOverflow() throws {
        let fd = try vfs.open(p("/f"), flags: [.read, .write, .create])
        _ = try vfs.write(fd, p("abc"))
        assertThrows(.invalidPath) { try vfs.seek(fd, offset: -4, from: .end) }
        assertThrows(.invalidPath) { try vfs.seek(fd, offset: -1, from: .start) }
        _ = try vfs.seek(fd, offset: Int64.max, from: .start)
        assertThrows(.invalidPath) { try vfs.seek(fd, offset: 1, from: .current) }
        XCTAssertEqual(try vfs.seek(fd, offset: 0, from: .current), UInt64(Int64.max), "a failed seek keeps the offset")
        assertThrows(.noSpace) { try vfs.write(fd, p("x")) }
    }

    func testStatAndReaddir() throws {
        try vfs.mkdir(p("/dir"))
        try make("/dir/b", p("bb"))
        try make("/dir/a", p("a"))
        try vfs.mkdir(p("/dir/sub"), mode: 0o700)
        XCTAssertEqual(try vfs.readdir(p("/dir")), [
            DirectoryEntry(name: p("a"), kind: .file), DirectoryEntry(name: p("b"), kind: .file),
            DirectoryEntry(name: p("sub"), kind: .directory),
        ])
        XCTAssertEqual(try vfs.readdir(p("/dir/sub")), [])
        XCTAssertEqual(try vfs.stat(p("/dir/sub")), FileAttributes(size: 0, kind: .directory, mode: 0o700, modificationTime: 1_700_000_000))
        XCTAssertEqual(try vfs.stat(p("/dir/./sub/../b")).size, 2)
        XCTAssertEqual(try vfs.stat(p("/")).kind, .directory)
        assertThrows(.notFound) { try vfs.stat(p("/dir/zz")) }
        assertThrows(.notADirectory) { try vfs.stat(p("/dir/a/x")) }
        assertThrows(.notADirectory) { try vfs.readdir(p("/dir/a")) }
        assertThrows(.notFound) { try vfs.readdir(p("/nope")) }
        assertThrows(.invalidPath) { try vfs.readdir(p("/..")) }
    }

    func testMkdir() throws {
        try vfs.mkdir(p("/d"))
        assertThrows(.exists) { try vfs.mkdir(p("/d")) }
        assertThrows(.exists) { try vfs.mkdir(p("/")) }
        assertThrows(.notFound) { try vfs.mkdir(p("/x/y")) }
        try make("/f", [])
        assertThrows(.exists) { try vfs.mkdir(p("/f")) }
        assertThrows(.notADirectory) { try vfs.mkdir(p("/f/y")) }
    }

    func testUnlinkAndRmdir() throws {
        try vfs.mkdir(p("/d"))
        try make("/d/f", p("data"))
        assertThrows(.isADirectory) { try vfs.unlink(p("/d")) }
        assertThrows(.notEmpty) { try vfs.rmdir(p("/d")) }
        assertThrows(.notADirectory) { try vfs.rmdir(p("/d/f")) }
        assertThrows(.notFound) { try vfs.unlink(p("/d/g")) }
        assertThrows(.notFound) { try vfs.rmdir(p("/e")) }
        assertThrows(.invalidPath) { try vfs.rmdir(p("/")) }
        try vfs.unlink(p("/d/f"))
        assertThrows(.notFound) { try vfs.stat(p("/d/f")) }
        try vfs.rmdir(p("/d"))
        XCTAssertEqual(try vfs.readdir(p("/")), [])
        XCTAssertEqual([memory.usedBytes, memory.nodeCount], [0, 1])
    }

    func testUnlinkedFileStaysUsableWhileOpen() throws {
        try make("/f", p("keep"))
        let fd = try vfs.open(p("/f"), flags: [.read, .write])
        try vfs.unlink(p("/f"))
        XCTAssertEqual(try vfs.read(fd, count: 10), p("keep"))
        XCTAssertEqual(try vfs.write(fd, p("!")), 1)
        assertThrows(.notFound) { try vfs.fstat(fd) }
        XCTAssertEqual(memory.usedBytes, 5, "bytes held until the last close")
        try vfs.close(fd)
        XCTAssertEqual(memory.usedBytes, 0)
    }

    func testRename() throws {
        try make("/a", p("A"))
        try make("/b", p("B"))
        let fd = try vfs.open(p("/a"), flags: .read)
        let onB = try vfs.open(p("/b"), flags: .read)
        try vfs.rename(p("/a"), to: p("/b"))
        assertThrows(.notFound) { try vfs.fstat(onB) }
        XCTAssertEqual(try vfs.read(onB, count: 4), p("B"), "the replaced file stays readable while open")
        XCTAssertEqual(try contents("/b"), p("A"), "rename replaces an existing file")
        assertThrows(.notFound) { try vfs.stat(p("/a")) }
        XCTAssertEqual(try vfs.fstat(fd).size, 1, "the descriptor follows the rename")
        try vfs.close(onB)
        XCTAssertEqual(memory.usedBytes, 1, "the replaced file's bytes are freed at last close")
        try vfs.rename(p("/b"), to: p("/b"))
        XCTAssertEqual(try contents("/b"), p("A"), "rename onto itself is a no-op")
        assertThrows(.notFound) { try vfs.rename(p("/zz"), to: p("/y")) }
        assertThrows(.notFound) { try vfs.rename(p("/b"), to: p("/no/y")) }
        for (from, to) in [("/", "/y"), ("/b", "/"), ("/b", "/b/.."), ("/b", "/../b")] {
            assertThrows(.invalidPath) { try vfs.rename(p(from), to: p(to)) }
        }
    }

    func testRenameDirectories() throws {
        try vfs.mkdir(p("/d"))
        try vfs.mkdir(p("/d/sub"))
        try make("/d/sub/f", p("x"))
        try make("/file", [])
        let fd = try vfs.open(p("/d/sub/f"), flags: .read)
        assertThrows(.invalidPath) { try vfs.rename(p("/d"), to: p("/d/sub/inner")) }
        assertThrows(.invalidPath) { try vfs.rename(p("/d"), to: p("/d/x")) }
        assertThrows(.notADirectory) { try vfs.rename(p("/d"), to: p("/file")) }
        assertThrows(.isADirectory) { try vfs.rename(p("/file"), to: p("/d")) }
        try vfs.mkdir(p("/full"))
        try make("/full/x", [])
        assertThrows(.notEmpty) { try vfs.rename(p("/d"), to: p("/full")) }
        try vfs.mkdir(p("/empty"))
        try vfs.rename(p("/d"), to: p("/empty"))
        XCTAssertEqual(try names("/"), ["empty", "file", "full"])
        XCTAssertEqual(try contents("/empty/sub/f"), p("x"))
        XCTAssertEqual(try vfs.seek(fd, offset: 0, from: .end), 1, "descriptors under the directory follow it")
        try vfs.rename(p("/empty"), to: p("/ab"))
        try vfs.rename(p("/ab/sub"), to: p("/sub2"))
        XCTAssertEqual(try names("/ab"), [])
        XCTAssertEqual(try contents("/sub2/f"), p("x"))
    }

    func testTruncate() throws {
        try make("/f", p("abcdef"))
        try vfs.truncate(p("/f"), size: 3)
        XCTAssertEqual(try contents("/f"), p("abc"))
        try vfs.truncate(p("/f"), size: 5)
        XCTAssertEqual(try contents("/f"), p("abc") + [0, 0])
        XCTAssertEqual(memory.usedBytes, 5)
        try vfs.mkdir(p("/d"))
        assertThrows(.isADirectory) { try vfs.truncate(p("/d"), size: 0) }
        assertThrows(.notFound) { try vfs.truncate(p("/g"), size: 0) }
        assertThrows(.noSpace) { try vfs.truncate(p("/f"), size: UInt64.max) }
    }

    func testCapacityAndNodeLimits() throws {
        let tiny = MemoryFileSystem(capacity: 8, maxNodes: 3)
        let owner = VFS()
        try owner.mount(tiny)
        let fd = try owner.open(p("/f"), flags: [.read, .write, .create])
        XCTAssertEqual(try owner.write(fd, p("12345678")), 8)
        assertThrows(.noSpace) { try owner.write(fd, p("9")) }
        XCTAssertEqual(try owner.fstat(fd).size, 8, "a failed write writes nothing")
        _ = try owner.seek(fd, offset: 1 << 40, from: .start)
        assertThrows(.noSpace) { try owner.write(fd, p("x")) }
        try owner.mkdir(p("/d"))
        assertThrows(.noSpace) { try owner.mkdir(p("/e")) }
        assertThrows(.noSpace) { try owner.open(p("/g"), flags: [.write, .create]) }
        let stats = try owner.statfs()
        XCTAssertEqual(stats.freeFiles, 0)
        XCTAssertEqual(stats.maxNameLength, 255)
    }

    func testReadOnlyMount() throws {
        try vfs.mkdir(p("/d"))
        try make("/f", p("ro"))
        memory.isReadOnly = true
        XCTAssertEqual(try contents("/f"), p("ro"))
        XCTAssertEqual(try names("/"), ["d", "f"])
        assertThrows(.readOnly) { try vfs.open(p("/f"), flags: .write) }
        assertThrows(.readOnly) { try vfs.open(p("/g"), flags: [.write, .create]) }
        assertThrows(.readOnly) { try vfs.mkdir(p("/e")) }
        assertThrows(.readOnly) { try vfs.unlink(p("/f")) }
        assertThrows(.readOnly) { try vfs.rmdir(p("/d")) }
        assertThrows(.readOnly) { try vfs.rename(p("/f"), to: p("/h")) }
        assertThrows(.readOnly) { try vfs.truncate(p("/f"), size: 0) }
        assertThrows(.exists) { try vfs.mkdir(p("/d")) }
        assertThrows(.notFound) { try vfs.unlink(p("/zz")) }
    }

    func testUnmountClosesEveryDescriptor() throws {
        try make("/f", p("x"))
        let (first, second) = (try vfs.open(p("/f"), flags: .read), try vfs.open(p("/"), flags: .read))
        assertThrows(.exists) { try vfs.mount(MemoryFileSystem()) }
        XCTAssertEqual(memory.openHandleCount, 2)
        XCTAssertTrue(vfs.unmount() === memory)
        XCTAssertEqual([memory.openHandleCount, vfs.openCount], [0, 0])
        assertThrows(.badDescriptor) { try vfs.read(first, count: 1) }
        assertThrows(.badDescriptor) { try vfs.close(second) }
        assertThrows(.notFound) { try vfs.stat(p("/f")) }
        assertThrows(.notFound) { try vfs.open(p("/f"), flags: .read) }
        XCTAssertNil(vfs.unmount())
        try vfs.mount(memory)
        XCTAssertEqual(try contents("/f"), p("x"), "the back-end keeps its files")
    }

    func testDefaultStatFileSystemThrows() {
        let owner = VFS()
        XCTAssertNoThrow(try owner.mount(BareFileSystem()))
        assertThrows(.io) { try owner.statfs() }
    }
}

/// A back-end that keeps the protocol's default `statFileSystem`.
private final class BareFileSystem: FileSystem {
    func stat(_ path: VFSPath) throws(FileSystemError) -> FileAttributes { throw .notFound }
    func open(_ path: VFSPath, flags: OpenFlags, mode: UInt32) throws(FileSystemError) -> FileHandleID { throw .notFound }
    func read(_ handle: FileHandleID, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int { 0 }
    func write(_ handle: FileHandleID, offset: UInt64, from buffer: UnsafeRawBufferPointer) throws(FileSystemError) -> Int { 0 }
    func attributes(_ handle: FileHandleID) throws(FileSystemError) -> FileAttributes { throw .badDescriptor }
    func close(_ handle: FileHandleID) throws(FileSystemError) {}
    func readDirectory(_ path: VFSPath) throws(FileSystemError) -> [DirectoryEntry] { [] }
    func makeDirectory(_ path: VFSPath, mode: UInt32) throws(FileSystemError) {}
    func remove(_ path: VFSPath) throws(FileSystemError) {}
    func removeDirectory(_ path: VFSPath) throws(FileSystemError) {}
    func rename(from: VFSPath, to: VFSPath) throws(FileSystemError) {}
    func truncate(_ path: VFSPath, size: UInt64) throws(FileSystemError) {}
}
