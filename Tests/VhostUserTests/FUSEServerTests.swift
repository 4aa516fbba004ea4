// FUSEServer in-process against a temporary folder: requests built with Wire's
// FUSERequest encoder, replies checked with Wire's FUSEReply (so both sides agree on
// fuse.h 7.31), effects checked on the host. Confinement and lifetimes:
// FUSEServerConfinementTests.swift.
import Wire
import XCTest
import TestSupport
import Glibc
@testable import VhostUser

/// Plays the guest: encodes requests, hands them to the server, checks the replies.
final class FUSETestClient {
    let server: FUSEServer
    var unique: UInt64 = 100

    init(_ server: FUSEServer) { self.server = server }

    /// The raw reply to raw request bytes (nil: no reply).
    func raw(_ request: [UInt8], replySize: Int = FSDevice.maximumReply) -> [UInt8]? {
        var reply = [UInt8](repeating: 0xAA, count: replySize)
        let length = request.withUnsafeBytes { req in reply.withUnsafeMutableBytes { server.handle(req, reply: $0) } }
        guard let length else { return nil }
        XCTAssertLessThanOrEqual(length, replySize, "the reply fits its buffer")
        return Array(reply[..<length])
    }

    func encode(_ request: FUSERequest, node: UInt64, data: [UInt8] = []) throws -> [UInt8] {
        unique += 1
        var bytes = [UInt8](repeating: 0, count: request.encodedSize + data.count)
        let header = FUSERequestHeader(unique: unique, nodeID: node)
        _ = try bytes.withUnsafeMutableBytes { raw in
            if case .write(let fh, let offset, _) = request {
                return try data.withUnsafeBytes { try FUSERequest.encodeWrite(into: raw, header: header, fileHandle: fh, offset: offset, data: $0) }
            }
            return try request.encode(into: raw, header: header)
        }
        return bytes
    }

    /// Sends `request` and decodes its reply with `body`; FUSEReply's errors propagate.
    @discardableResult
    func call<T>(_ request: FUSERequest, node: UInt64 = FUSE.rootID, data: [UInt8] = [],
                 replySize: Int = FSDevice.maximumReply, _ body: (FUSEReply) throws -> T) throws -> T {
        let bytes = try encode(request, node: node, data: data)
        let reply = try XCTUnwrap(raw(bytes, replySize: replySize), "a reply")
        return try reply.withUnsafeBytes { try body(try FUSEReply($0, unique: unique)) }
    }

    /// The errno the server answers `request` with (0 for success).
    func errno(_ request: FUSERequest, node: UInt64 = FUSE.rootID) throws -> Int32 {
        let bytes = try encode(request, node: node)
        return try errno(raw: bytes)
    }

    func errno(raw bytes: [UInt8]) throws -> Int32 {
        let reply = try XCTUnwrap(raw(bytes), "a reply")
        let unique = reply.count >= 16 ? reply.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self) } : 0
        do {
            _ = try reply.withUnsafeBytes { try FUSEReply($0, unique: unique) }
            return 0
        } catch FUSEError.remote(let code) {
            return code
        }
    }

    func initialize() throws {
        let reply = try call(.initialize(maxReadahead: 65536, flags: 0), node: 0) { try $0.initialize(maximumWrite: 1 << 20) }
        XCTAssertEqual(reply.maxWrite, 1 << 20)
    }

    func lookup(_ name: String, in node: UInt64 = FUSE.rootID) throws -> FUSEEntry {
        try call(.lookup(name: Array(name.utf8)), node: node) { try $0.entry() }
    }

    func forget(_ node: UInt64, _ count: UInt64 = 1) throws {
        XCTAssertNil(raw(try encode(.forget(lookups: count), node: node)), "FORGET has no reply")
    }

    func open(_ node: UInt64, flags: Int32 = O_RDONLY) throws -> UInt64 {
        try call(.open(flags: UInt32(bitPattern: flags)), node: node) { try $0.open() }.fileHandle
    }

    func release(_ fh: UInt64, directory: Bool = false) throws {
        try call(directory ? .releasedir(fileHandle: fh, flags: 0) : .release(fileHandle: fh, flags: 0)) { try $0.empty() }
    }

    /// Reads a whole file through READ requests of `chunk` bytes.
    func readAll(_ fh: UInt64, chunk: UInt32 = 128 * 1024) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while true {
            let piece = try call(.read(fileHandle: fh, offset: UInt64(bytes.count), size: chunk)) { Array(try $0.read(requested: chunk)) }
            bytes += piece
            if piece.count < Int(chunk) { return bytes }
        }
    }

    /// The names (and READDIRPLUS entries) of a directory.
    func list(_ node: UInt64, plus: Bool, size: UInt32 = 4096) throws -> [(name: String, type: UInt32, entry: FUSEEntry?)] {
        let fh = try call(.opendir(flags: 0), node: node) { try $0.open() }.fileHandle
        var result: [(String, UInt32, FUSEEntry?)] = []
        var offset: UInt64 = 0
        while true {
            let request: FUSERequest = plus ? .readdirplus(fileHandle: fh, offset: offset, size: size) : .readdir(fileHandle: fh, offset: offset, size: size)
            let page: [(String, UInt32, FUSEEntry?, UInt64)] = try call(request) { reply in
                try reply.directory(requested: size, plus: plus).map { (String(decoding: $0.name, as: UTF8.self), $0.type, $0.entry, $0.offset) }
            }
            if page.isEmpty { break }
            result += page.map { ($0.0, $0.1, $0.2) }
            offset = page.last!.3
        }
        try release(fh, directory: true)
        return result
    }
}

/// Host-side helpers for the share.
enum HostFiles {
    static func write(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0, "create \(path)")
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return bytes }
            bytes += buffer[..<n]
        }
    }

    static func exists(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0
    }

    /// Every path below `root` with its type, size and content: a fingerprint of the tree.
    static func fingerprint(_ root: String) -> [String] {
        var lines: [String] = []
        guard let dir = opendir(root) else { return [] }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(dir)
        for name in names.sorted() {
            let path = root + "/" + name
            var status = stat()
            lstat(path, &status)
            lines.append("\(path) \(status.st_mode) \(status.st_size) \(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec)")
            if status.st_mode & S_IFMT == S_IFREG { lines.append("\(read(path) ?? [])") }
            if status.st_mode & S_IFMT == S_IFDIR { lines += fingerprint(path) }
        }
        return lines
    }

    static func removeTree(_ path: String) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        if status.st_mode & S_IFMT == S_IFDIR {
            if let dir = opendir(path) {
                var names: [String] = []
                while let entry = readdir(dir) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(dir)
                for name in names { removeTree(path + "/" + name) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

func pattern(_ count: Int, seed: UInt8 = 7) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ ($0 >> 8)) }
}

/// A temporary `top` folder with the share at `top/share`, removed afterwards, and the
/// server's log captured; `client()` is an initialised FUSE client of a server over it.
class FUSEShareTestCase: XCTestCase {
    var top = ""
    var share = ""
    var log: LogCapture!

    override func setUpWithError() throws {
        log = LogCapture()
        top = temporaryDirectory()
        share = top + "/share"
        mkdir(share, 0o755)
    }

    override func tearDown() {
        log.stop()
        HostFiles.removeTree(top)
    }

    func client(readOnly: Bool = false) throws -> FUSETestClient {
        let c = FUSETestClient(try FUSEServer(root: share, readOnly: readOnly))
        try c.initialize()
        return c
    }
}

final class FUSEServerTests: FUSEShareTestCase {

    func testInitAnswers731AndRefusesOtherMajors() throws {
        let c = FUSETestClient(try FUSEServer(root: share, readOnly: false))
        let reply = try c.call(.initialize(maxReadahead: 12345, flags: 0), node: 0) { try $0.initialize(maximumWrite: 1 << 20) }
        XCTAssertEqual(reply.major, 7)
        XCTAssertEqual(reply.minor, 31)
        XCTAssertEqual(reply.maxReadahead, 12345, "max_readahead is echoed")
        var bytes = try c.encode(.initialize(maxReadahead: 0, flags: 0), node: 0)
        bytes[40] = 8 // major 8
        XCTAssertEqual(try c.errno(raw: bytes), EPROTO)
    }

    func testReadsFilesOfEverySizeByteForByte() throws {
        let sizes = ["empty": 0, "one-k": 1024, "one-m": 1 << 20]
        for (name, size) in sizes { HostFiles.write(share + "/" + name, pattern(size, seed: UInt8(size & 0xFF))) }
        let c = try client()
        for (name, size) in sizes {
            let entry = try c.lookup(name)
            XCTAssertEqual(entry.attributes.size, UInt64(size))
            XCTAssertEqual(entry.attributes.mode & 0o170000, 0o100000, "regular file")
            XCTAssertEqual(entry.attributes.nlink, 1)
            XCTAssertEqual(entry.entryValid, 1)
            let attributes = try c.call(.getattr(fileHandle: nil), node: entry.nodeID) { try $0.attributes() }
            XCTAssertEqual(attributes.attributes, entry.attributes)
            let fh = try c.open(entry.nodeID)
            let withHandle = try c.call(.getattr(fileHandle: fh), node: entry.nodeID) { try $0.attributes() }
            XCTAssertEqual(withHandle.attributes.ino, entry.attributes.ino)
            XCTAssertEqual(try c.readAll(fh, chunk: 100_000), pattern(size, seed: UInt8(size & 0xFF)), name)
            try c.release(fh)
        }
    }

    func testReadIsCappedByTheReplyBuffer() throws {
        HostFiles.write(share + "/f", pattern(10_000))
        let c = try client()
        let fh = try c.open(try c.lookup("f").nodeID)
        let data = try c.call(.read(fileHandle: fh, offset: 0, size: 8192), replySize: 16 + 1000) { Array(try $0.read(requested: 8192)) }
        XCTAssertEqual(data, Array(pattern(10_000)[..<1000]))
    }

    func testNamesWithSpacesAndUTF8AndNestedFolders() throws {
        mkdir(share + "/a dir", 0o755)
        mkdir(share + "/a dir/ünïcödé 📁", 0o755)
        HostFiles.write(share + "/a dir/ünïcödé 📁/file name.txt", Array("deep".utf8))
        let c = try client()
        let a = try c.lookup("a dir")
        XCTAssertEqual(a.attributes.mode & 0o170000, 0o040000)
        let b = try c.lookup("ünïcödé 📁", in: a.nodeID)
        let f = try c.lookup("file name.txt", in: b.nodeID)
        let fh = try c.open(f.nodeID)
        XCTAssertEqual(try c.readAll(fh), Array("deep".utf8))
        XCTAssertEqual(try c.errno(.lookup(name: Array("missing".utf8)), node: b.nodeID), ENOENT)
        XCTAssertEqual(try c.errno(.lookup(name: Array("x".utf8)), node: f.nodeID), ENOTDIR)
    }

    func testReaddirAndReaddirplusList() throws {
            HostFiles.write(share + "/file", [1, 2, 3])
            mkdir(share + "/sub", 0o755)
            for i in 0..<40 { HostFiles.write(share + "/sub/entry-\(i)-" + String(repeating: "x", count: i), []) }
            let c = try client()
            let top = try c.list(FUSE.rootID, plus: false)
            XCTAssertEqual(Set(top.map(\.name)), ["file", "sub"], "no . or ..")
            XCTAssertEqual(top.first { $0.name == "sub" }?.type, 4, "DT_DIR")
            XCTAssertEqual(top.first { $0.name == "file" }?.type, 8, "DT_REG")

            let sub = try c.lookup("sub")
            // A small size forces several READDIR rounds through the offset cookies.
            let names = try c.list(sub.nodeID, plus: false, size: 256).map(\.name)
            XCTAssertEqual(names.count, 40)
            XCTAssertEqual(Set(names), Set((0..<40).map { "entry-\($0)-" + String(repeating: "x", count: $0) }))

            let before = c.server.nodeCount
            let plus = try c.list(sub.nodeID, plus: true, size: 1024)
            XCTAssertEqual(plus.count, 40)
            XCTAssertEqual(c.server.nodeCount, before + 40, "each READDIRPLUS entry is a lookup")
            let entry = try XCTUnwrap(plus.first?.entry)
            XCTAssertNotEqual(entry.nodeID, 0)
            XCTAssertEqual(entry.attributes.mode & 0o170000, 0o100000)
            XCTAssertEqual(try c.lookup(plus[0].name, in: sub.nodeID).nodeID, entry.nodeID, "same inode, same node id")
            for item in plus { try c.forget(item.entry!.nodeID) }
            try c.forget(entry.nodeID)
            XCTAssertEqual(c.server.nodeCount, before)
    }

    func testModificationsReachTheHost() throws {
        let c = try client()
        // CREATE + WRITE.
        let (entry, opened) = try c.call(.create(name: Array("new.txt".utf8), flags: UInt32(O_WRONLY), mode: 0o644, umask: 0o022)) { try $0.create() }
        XCTAssertEqual(entry.attributes.mode, 0o100644)
        let data = pattern(300_000)
        let written = try c.call(.write(fileHandle: opened.fileHandle, offset: 0, size: UInt32(data.count)), data: data) {
            try $0.write(requested: UInt32(data.count))
        }
        XCTAssertEqual(written, UInt32(data.count))
        try c.call(.flush(fileHandle: opened.fileHandle, lockOwner: 0)) { try $0.empty() }
        try c.release(opened.fileHandle)
        XCTAssertEqual(HostFiles.read(share + "/new.txt"), data)

        // SETATTR size (by path and through a handle), mode, times.
        var set = FUSESetAttributes()
        set.valid = FUSESetAttributes.validSize
        set.size = 1000
        let attributes = try c.call(.setattr(set), node: entry.nodeID) { try $0.attributes() }
        XCTAssertEqual(attributes.attributes.size, 1000)
        XCTAssertEqual(HostFiles.read(share + "/new.txt"), Array(data[..<1000]))
        let fh = try c.open(entry.nodeID, flags: O_RDWR)
        set.valid = FUSESetAttributes.validSize | FUSESetAttributes.validFileHandle
        set.size = 10
        set.fileHandle = fh
        XCTAssertEqual(try c.call(.setattr(set), node: entry.nodeID) { try $0.attributes() }.attributes.size, 10)
        try c.release(fh)
        XCTAssertEqual(HostFiles.read(share + "/new.txt"), Array(data[..<10]))
        set = FUSESetAttributes()
        set.valid = FUSESetAttributes.validMode | FUSESetAttributes.validMtime
        set.mode = 0o600
        set.mtime = 1_000_000_000
        let changed = try c.call(.setattr(set), node: entry.nodeID) { try $0.attributes() }
        XCTAssertEqual(changed.attributes.mode, 0o100600)
        XCTAssertEqual(changed.attributes.mtime, 1_000_000_000)
        var status = stat()
        stat(share + "/new.txt", &status)
        XCTAssertEqual(status.st_mode & 0o7777, 0o600)
        XCTAssertEqual(status.st_mtim.tv_sec, 1_000_000_000)

        // MKDIR, RENAME into it, RENAME2 NOREPLACE, UNLINK, RMDIR.
        let dir = try c.call(.mkdir(name: Array("d".utf8), mode: 0o755, umask: 0)) { try $0.entry() }
        XCTAssertEqual(dir.attributes.mode, 0o040755)
        try c.call(.rename(name: Array("new.txt".utf8), newDirectory: dir.nodeID, newName: Array("moved.txt".utf8))) { try $0.empty() }
        XCTAssertFalse(HostFiles.exists(share + "/new.txt"))
        XCTAssertEqual(HostFiles.read(share + "/d/moved.txt"), Array(data[..<10]))
        HostFiles.write(share + "/d/other", [9])
        XCTAssertEqual(try c.errno(.rename2(name: Array("other".utf8), newDirectory: dir.nodeID, newName: Array("moved.txt".utf8),
                                            flags: LinuxFS.renameNoReplace), node: dir.nodeID), EEXIST)
        XCTAssertEqual(try c.errno(.rename2(name: Array("other".utf8), newDirectory: dir.nodeID, newName: Array("x".utf8),
                                            flags: 4), node: dir.nodeID), EINVAL, "RENAME_WHITEOUT is refused")
        try c.call(.rename2(name: Array("other".utf8), newDirectory: FUSE.rootID, newName: Array("back".utf8), flags: 1), node: dir.nodeID) { try $0.empty() }
        XCTAssertEqual(HostFiles.read(share + "/back"), [9])
        XCTAssertEqual(try c.errno(.rmdir(name: Array("d".utf8))), ENOTEMPTY)
        try c.call(.unlink(name: Array("moved.txt".utf8)), node: dir.nodeID) { try $0.empty() }
        try c.call(.rmdir(name: Array("d".utf8))) { try $0.empty() }
        XCTAssertFalse(HostFiles.exists(share + "/d"))
        XCTAssertEqual(try c.errno(.unlink(name: Array("d".utf8))), ENOENT)

        let statfs = try c.call(.statfs) { try $0.statfs() }
        XCTAssertGreaterThan(statfs.blocks, 0)
        XCTAssertGreaterThan(statfs.nameLength, 0)
    }

    func testReadOnlyRefusesEveryChangeAndLeavesTheHostAlone() throws {
        HostFiles.write(share + "/f", pattern(5000))
        mkdir(share + "/d", 0o755)
        HostFiles.write(share + "/d/g", [1, 2])
        let before = HostFiles.fingerprint(share)
        let c = try client(readOnly: true)
        let f = try c.lookup("f")
        let d = try c.lookup("d")
        let name = Array("n".utf8)
        var set = FUSESetAttributes()
        set.valid = FUSESetAttributes.validSize
        let refused: [(FUSERequest, UInt64)] = [
            (.create(name: name, flags: UInt32(O_WRONLY), mode: 0o644, umask: 0), FUSE.rootID),
            (.mkdir(name: name, mode: 0o755, umask: 0), FUSE.rootID),
            (.unlink(name: Array("f".utf8)), FUSE.rootID),
            (.rmdir(name: Array("d".utf8)), FUSE.rootID),
            (.rename(name: Array("f".utf8), newDirectory: d.nodeID, newName: name), FUSE.rootID),
            (.rename2(name: Array("f".utf8), newDirectory: d.nodeID, newName: name, flags: 0), FUSE.rootID),
            (.setattr(set), f.nodeID),
            (.open(flags: UInt32(O_WRONLY)), f.nodeID),
            (.open(flags: UInt32(O_RDWR)), f.nodeID),
            (.open(flags: UInt32(O_RDONLY | O_TRUNC)), f.nodeID),
        ]
        for (request, node) in refused {
            XCTAssertEqual(try c.errno(request, node: node), EROFS, "\(request)")
        }
        let fh = try c.open(f.nodeID)
        XCTAssertEqual(try c.errno(.write(fileHandle: fh, offset: 0, size: 0), node: f.nodeID), EROFS)
        XCTAssertEqual(try c.readAll(fh), pattern(5000), "reading still works")
        XCTAssertEqual(try c.list(FUSE.rootID, plus: false).count, 2)
        XCTAssertEqual(HostFiles.fingerprint(share), before, "the host folder is unchanged")
    }

    func testUnsupportedAndRefusedOpcodes() throws {
        let c = try client()
        func request(_ opcode: UInt32, body: [UInt8] = []) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: 40) + body
            bytes.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: UInt32(raw.count).littleEndian, toByteOffset: 0, as: UInt32.self)
                raw.storeBytes(of: opcode.littleEndian, toByteOffset: 4, as: UInt32.self)
                raw.storeBytes(of: UInt64(7).littleEndian, toByteOffset: 8, as: UInt64.self)
                raw.storeBytes(of: UInt64(1).littleEndian, toByteOffset: 16, as: UInt64.self)
            }
            return bytes
        }
        XCTAssertEqual(try c.errno(raw: request(FUSEServerOpcode.mknod, body: [UInt8](repeating: 0, count: 16) + Array("x\0".utf8))), EPERM)
        XCTAssertEqual(try c.errno(raw: request(FUSEServerOpcode.symlink, body: Array("x\0y\0".utf8))), EPERM)
        XCTAssertEqual(try c.errno(raw: request(FUSEServerOpcode.link, body: [UInt8](repeating: 0, count: 8) + Array("x\0".utf8))), EPERM)
        XCTAssertEqual(try c.errno(raw: request(5)), ENOSYS, "READLINK")
        XCTAssertEqual(try c.errno(raw: request(9999)), ENOSYS)
        XCTAssertEqual(try c.errno(raw: request(FUSEServerOpcode.access, body: [UInt8](repeating: 0, count: 8))), 0, "ACCESS F_OK on the root")
        XCTAssertFalse(HostFiles.exists(share + "/x"))
    }
}
