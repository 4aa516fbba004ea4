// FUSEFileSystem against a scripted server that lies: replies with the wrong unique, a
// length that disagrees with the bytes, a body of the wrong size, an errno out of range, a
// READ longer than asked, a byte count larger than the buffer, READDIR cookies that do not
// advance. Each must become `.io` (or the mapped errno) without a trap, and the file system
// must stay usable. The honest round trips run against the host back-end's FUSEServer in
// DriverDeviceTests (FUSEFileSystemServerTests).
import XCTest
@testable import Core
@testable import Drivers
@testable import VsockDriver
@testable import FSDriver
@testable import Wire

/// A FUSE "server" whose every answer the test chooses.
final class ScriptedChannel: FUSEChannel {
    struct Request {
        var opcode: UInt32
        var unique: UInt64
        var node: UInt64
        var bytes: [UInt8]
    }
    /// Returns the reply bytes and the count to report (defaults to the bytes' count).
    var answer: (Request) -> (bytes: [UInt8], count: Int?) = { _ in ([], nil) }
    var requests: [Request] = []
    var forgets: [UInt64] = []

    static func parse(_ raw: UnsafeRawBufferPointer) -> Request {
        let bytes = Array(raw)
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * $1) } }
        return Request(opcode: u32(4), unique: u64(8), node: u64(16), bytes: bytes)
    }

    func exchange(_ request: UnsafeRawBufferPointer, reply: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        let parsed = ScriptedChannel.parse(request)
        requests.append(parsed)
        let (bytes, count) = answer(parsed)
        let n = min(bytes.count, reply.count)
        for i in 0..<n { reply[i] = bytes[i] }
        return count ?? bytes.count
    }

    func post(_ request: UnsafeRawBufferPointer) throws(FileSystemError) {
        forgets.append(ScriptedChannel.parse(request).node)
    }
}

private func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
private func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

/// An out header plus `body`; `length` and `unique` may lie.
private func fuseReply(_ request: ScriptedChannel.Request, _ body: [UInt8], error: Int32 = 0,
               unique: UInt64? = nil, length: UInt32? = nil) -> [UInt8] {
    le32(length ?? UInt32(16 + body.count)) + le32(UInt32(bitPattern: error)) + le64(unique ?? request.unique) + body
}

private func encoded(size: Int, _ encode: (UnsafeMutableRawBufferPointer) -> Void) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: size)
    bytes.withUnsafeMutableBytes { encode($0) }
    return bytes
}

final class FUSEFileSystemTests: XCTestCase {
    var channel: ScriptedChannel!
    var fs: FUSEFileSystem!
    /// What the honest part of the script answers; tests override `lie`.
    var lie: ((ScriptedChannel.Request) -> (bytes: [UInt8], count: Int?)?)? = nil
    let fileContent: [UInt8] = (0..<5000).map { UInt8($0 % 251) }

    func honest(_ r: ScriptedChannel.Request) -> (bytes: [UInt8], count: Int?) {
        switch FUSEOpcode(rawValue: r.opcode) {
        case .initialize:
            var out = FUSEInitReply()
            out.major = 7; out.minor = 31; out.maxWrite = 8192
            return (fuseReply(r, encoded(size: FUSEInitReply.size) { out.encode(into: $0) }), nil)
        case .lookup:
            let name = Array(r.bytes[40..<(r.bytes.count - 1)])
            guard name == Array("file".utf8) || name == Array("dir".utf8) else { return (fuseReply(r, [], error: -2), nil) }
            var entry = FUSEEntry()
            entry.nodeID = name == Array("file".utf8) ? 7 : 8
            entry.attributes.mode = name == Array("file".utf8) ? 0o100644 : 0o040755
            entry.attributes.size = UInt64(fileContent.count)
            return (fuseReply(r, encoded(size: FUSEEntry.size) { entry.encode(into: $0) }), nil)
        case .open, .opendir:
            return (fuseReply(r, le64(99) + le32(0) + le32(0)), nil)
        case .read:
            let off = r.bytes[48..<56].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            let size = r.bytes[56..<60].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            let data = Array(fileContent[min(off, fileContent.count)..<min(off + size, fileContent.count)])
            return (fuseReply(r, data), nil)
        case .release, .releasedir:
            return (fuseReply(r, []), nil)
        default:
            return (fuseReply(r, [], error: -38), nil)
        }
    }

    override func setUp() {
        channel = ScriptedChannel()
        channel.answer = { [unowned self] r in self.lie?(r) ?? self.honest(r) }
        fs = try! FUSEFileSystem.mount(channel: channel, transfer: 4096)
    }

    func path(_ text: String) -> VFSPath { try! VFSPath(parsing: Array(text.utf8)) }

    func readAll(_ name: String) throws -> [UInt8] {
        let handle = try fs.open(path(name), flags: .read, mode: 0)
        defer { try? fs.close(handle) }
        var buffer = [UInt8](repeating: 0, count: 10_000)
        let n = try buffer.withUnsafeMutableBytes { try fs.read(handle, offset: 0, into: $0) }
        return Array(buffer[..<n])
    }

    func testHonestServerReadsInChunksAndForgetsEveryNode() throws {
        XCTAssertEqual(fs.maximumWrite, 4096, "the server's 8192 is clamped to our transfer")
        XCTAssertEqual(try readAll("/file"), fileContent)
        // 5000 bytes in 4096-byte chunks: two READs.
        XCTAssertEqual(channel.requests.filter { $0.opcode == FUSEOpcode.read.rawValue }.count, 2)
        XCTAssertEqual(channel.forgets, [7], "the open file's node is forgotten at close")
        XCTAssertEqual(fs.openCount, 0)
        XCTAssertEqual(try fs.stat(path("/dir")).kind, .directory)
        XCTAssertEqual(channel.forgets, [7, 8])
    }

    func testServerErrnosMapToFileSystemErrors() {
        XCTAssertThrowsError(try fs.stat(path("/missing"))) { XCTAssertEqual($0 as? FileSystemError, .notFound) }
        for (errno, expected) in [(-13, FileSystemError.permissionDenied), (-30, .readOnly), (-20, .notADirectory),
                                  (-17, .exists), (-5, .io), (-28, .noSpace), (-36, .nameTooLong)] {
            lie = { r in r.opcode == FUSEOpcode.lookup.rawValue ? (fuseReply(r, [], error: Int32(errno)), nil) : nil }
            XCTAssertThrowsError(try fs.stat(path("/file"))) { XCTAssertEqual($0 as? FileSystemError, expected, "errno \(errno)") }
        }
    }

    /// Each lie becomes `.io`, is counted, and the next honest request works.
    func testLyingRepliesBecomeIOErrorsAndTheFileSystemCarriesOn() throws {
        let lies: [(String, (ScriptedChannel.Request) -> (bytes: [UInt8], count: Int?))] = [
            ("wrong unique", { r in (fuseReply(r, [], unique: r.unique &+ 1), nil) }),
            ("length larger than the bytes", { r in (fuseReply(r, [], length: 200), nil) }),
            ("length smaller than the bytes", { r in (fuseReply(r, [0, 0, 0, 0], length: 16), nil) }),
            ("length below the header", { r in (fuseReply(r, [], length: 4), nil) }),
            ("truncated header", { r in ([1, 2, 3], nil) }),
            ("errno out of range", { r in (fuseReply(r, [], error: -4000), nil) }),
            ("positive errno", { r in (fuseReply(r, [], error: 5), nil) }),
            ("error with a body", { r in (fuseReply(r, [1, 2, 3, 4, 5, 6, 7, 8], error: -2), nil) }),
            ("entry of the wrong size", { r in (fuseReply(r, [UInt8](repeating: 0, count: 100)), nil) }),
            ("count beyond the buffer", { r in (fuseReply(r, []), 1 << 30) }),
        ]
        for (what, answer) in lies {
            lie = { r in r.opcode == FUSEOpcode.lookup.rawValue ? answer(r) : nil }
            let before = fs.malformedReplies
            XCTAssertThrowsError(try fs.stat(path("/file")), what) { XCTAssertEqual($0 as? FileSystemError, .io, what) }
            XCTAssertEqual(fs.malformedReplies, before + 1, what)
            lie = nil
            XCTAssertEqual(try fs.stat(path("/file")).size, UInt64(fileContent.count), "after \(what)")
        }
    }

    func testReadLongerThanAskedIsRefused() throws {
        let handle = try fs.open(path("/file"), flags: .read, mode: 0)
        lie = { r in r.opcode == FUSEOpcode.read.rawValue ? (fuseReply(r, [UInt8](repeating: 1, count: 4097)), nil) : nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        XCTAssertThrowsError(try buffer.withUnsafeMutableBytes { try fs.read(handle, offset: 0, into: $0) }) {
            XCTAssertEqual($0 as? FileSystemError, .io)
        }
        lie = nil
        try fs.close(handle)
        XCTAssertEqual(fs.openCount, 0)
    }

    func testDirectoryCookiesThatDoNotAdvanceEndTheListing() throws {
        // One record "a" with cookie 0 forever: a loop unless the client notices.
        lie = { r in
            guard r.opcode == FUSEOpcode.readdir.rawValue else { return nil }
            let record = le64(5) + le64(0) + le32(1) + le32(8) + [97] + [0, 0, 0, 0, 0, 0, 0]
            return (fuseReply(r, record), nil)
        }
        XCTAssertThrowsError(try fs.readDirectory(path("/dir"))) { XCTAssertEqual($0 as? FileSystemError, .io) }
        XCTAssertTrue(channel.requests.contains { $0.opcode == FUSEOpcode.releasedir.rawValue }, "the directory is released")
    }

    func testOlderServerIsRefusedAtMount() {
        let old = ScriptedChannel()
        old.answer = { r in
            var out = FUSEInitReply()
            out.major = 7; out.minor = 26
            return (fuseReply(r, Array(encoded(size: FUSEInitReply.size) { out.encode(into: $0) }[..<40])), nil)
        }
        XCTAssertThrowsError(try FUSEFileSystem.mount(channel: old)) { XCTAssertEqual($0 as? FileSystemError, .io) }
    }

    func testWriteThroughAReadOnlyHandleIsABadDescriptor() throws {
        let handle = try fs.open(path("/file"), flags: .read, mode: 0)
        XCTAssertThrowsError(try [1, 2, 3].withUnsafeBytes { try fs.write(handle, offset: 0, from: $0) }) {
            XCTAssertEqual($0 as? FileSystemError, .badDescriptor)
        }
        try fs.close(handle)
        XCTAssertThrowsError(try fs.close(handle)) { XCTAssertEqual($0 as? FileSystemError, .badDescriptor) }
    }

    /// close(2) semantics for a handle opened for writing: FLUSH before RELEASE; a failed
    /// FLUSH is reported, the handle is gone anyway; ENOSYS (a server without FLUSH) is not
    /// an error. A read-only handle goes straight to RELEASE.
    func testCloseFlushesThenReleasesAndReportsAFailedFlush() throws {
        let reader = try fs.open(path("/file"), flags: .read, mode: 0)
        try fs.close(reader)
        XCTAssertEqual(channel.requests.suffix(2).map(\.opcode), [FUSEOpcode.open.rawValue, FUSEOpcode.release.rawValue],
                       "no FLUSH for a read-only handle")
        let quiet = try fs.open(path("/file"), flags: [.read, .write], mode: 0)
        try fs.close(quiet)   // the script answers FLUSH with ENOSYS: not an error
        XCTAssertEqual(channel.requests.suffix(2).map(\.opcode), [FUSEOpcode.flush.rawValue, FUSEOpcode.release.rawValue])
        let writer = try fs.open(path("/file"), flags: [.read, .write], mode: 0)
        lie = { r in r.opcode == FUSEOpcode.flush.rawValue ? (fuseReply(r, [], error: -5), nil) : nil }
        XCTAssertThrowsError(try fs.close(writer)) { XCTAssertEqual($0 as? FileSystemError, .io) }
        XCTAssertEqual(channel.requests.last?.opcode, FUSEOpcode.release.rawValue, "released even so")
        XCTAssertEqual(fs.openCount, 0)
        XCTAssertThrowsError(try fs.close(writer)) { XCTAssertEqual($0 as? FileSystemError, .badDescriptor) }
    }
}
