// FUSEFileSystem's directory listings terminate whatever the server answers (issue 9):
// cookies that alternate, repeat or go back end the listing with `.io`; a server whose
// cookies grow forever (or that sends dots forever) is stopped at the entry bound with
// `.tooLarge`; a listing the memory budget refuses is `.outOfMemory`. Each ends in a
// bounded number of READDIRs, the directory is released and every looked-up node forgotten.
import XCTest
@testable import Core
@testable import Drivers
@testable import VsockDriver
@testable import FSDriver
@testable import Wire

private func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
private func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

/// The reply header for `request` around `body`.
private func reply(_ request: ScriptedChannel.Request, _ body: [UInt8], error: Int32 = 0) -> [UInt8] {
    le32(UInt32(16 + body.count)) + le32(UInt32(bitPattern: error)) + le64(request.unique) + body
}

/// One fuse_dirent record, padded to 8 bytes.
private func record(_ name: String, cookie: UInt64, type: UInt32 = 8) -> [UInt8] {
    let bytes = Array(name.utf8)
    let raw = le64(1) + le64(cookie) + le32(UInt32(bytes.count)) + le32(type) + bytes
    return raw + [UInt8](repeating: 0, count: (8 - raw.count % 8) % 8)
}

final class FUSEListingTests: XCTestCase {
    var channel: ScriptedChannel!
    var fs: FUSEFileSystem!
    /// What READDIR at a cookie answers: the records' bytes.
    var readdir: (UInt64) -> [UInt8] = { _ in [] }
    var readdirCount = 0

    override func setUp() {
        channel = ScriptedChannel()
        channel.answer = { [unowned self] r in
            switch FUSEOpcode(rawValue: r.opcode) {
            case .initialize:
                var out = FUSEInitReply()
                out.major = 7; out.minor = 31; out.maxWrite = 8192
                var body = [UInt8](repeating: 0, count: FUSEInitReply.size)
                body.withUnsafeMutableBytes { out.encode(into: $0) }
                return (reply(r, body), nil)
            case .lookup:
                var entry = FUSEEntry()
                entry.nodeID = 8
                entry.attributes.mode = 0o040755
                var body = [UInt8](repeating: 0, count: FUSEEntry.size)
                body.withUnsafeMutableBytes { entry.encode(into: $0) }
                return (reply(r, body), nil)
            case .opendir:
                return (reply(r, le64(99) + le32(0) + le32(0)), nil)
            case .readdir:
                self.readdirCount += 1
                let offset = r.bytes[48..<56].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
                return (reply(r, self.readdir(offset)), nil)
            case .releasedir:
                return (reply(r, []), nil)
            default:
                return (reply(r, [], error: -38), nil)
            }
        }
        fs = try! FUSEFileSystem.mount(channel: channel, transfer: 4096)
    }

    func list() throws -> [String] {
        try fs.readDirectory(try VFSPath(parsing: Array("/dir".utf8))).map { String(decoding: $0.name, as: UTF8.self) }
    }

    func assertEnded(with expected: FileSystemError, readdirs: ClosedRange<Int>, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try list(), file: file, line: line) {
            XCTAssertEqual($0 as? FileSystemError, expected, file: file, line: line)
        }
        XCTAssertTrue(readdirs.contains(readdirCount), "READDIRs: \(readdirCount)", file: file, line: line)
        XCTAssertEqual(channel.requests.last?.opcode, FUSEOpcode.releasedir.rawValue, "released", file: file, line: line)
        XCTAssertEqual(channel.forgets, [8], "the folder's lookup is forgotten", file: file, line: line)
    }

    func testHonestListingAcrossRepliesSkipsTheDots() throws {
        readdir = { offset in
            switch offset {
            case 0: return record(".", cookie: 1, type: 4) + record("..", cookie: 2, type: 4) + record("a", cookie: 3)
            case 3: return record("b", cookie: 7, type: 4)
            default: return []
            }
        }
        XCTAssertEqual(try list(), ["a", "b"])
        XCTAssertEqual(readdirCount, 3)
    }

    func testCookiesThatAlternateEndTheListing() {
        // 0 -> 1, 1 -> 2, 2 -> 1, ...: a loop unless the client notices the step back.
        readdir = { offset in record("x\(offset)", cookie: offset == 1 ? 2 : 1) }
        assertEnded(with: .io, readdirs: 3...3)
        XCTAssertEqual(fs.malformedReplies, 1)
    }

    func testACookieRepeatedInsideOneReplyEndsTheListing() {
        readdir = { offset in offset == 0 ? record("a", cookie: 4) + record("b", cookie: 4) : [] }
        assertEnded(with: .io, readdirs: 1...1)
    }

    func testAFirstCookieOfZeroEndsTheListing() {
        readdir = { _ in record("a", cookie: 0) }
        assertEnded(with: .io, readdirs: 1...1)
    }

    func testCookiesThatGrowForeverStopAtTheDefaultBound() {
        // 100 fresh names per reply, forever: the default bound (65,536) stops it.
        readdir = { offset in (1...100).flatMap { record("n\(offset + UInt64($0))", cookie: offset + UInt64($0)) } }
        let started = Date()
        assertEnded(with: .tooLarge, readdirs: 656...657)
        XCTAssertLessThan(Date().timeIntervalSince(started), 60)
    }

    func testDotsForeverStopAtTheBound() {
        fs.maximumDirectoryEntries = 1000
        readdir = { offset in record(".", cookie: offset + 1, type: 4) }
        assertEnded(with: .tooLarge, readdirs: 1001...1001)
    }

    func testExactlyTheBoundIsListed() throws {
        fs.maximumDirectoryEntries = 10
        readdir = { offset in offset < 10 ? record("n\(offset)", cookie: offset + 1) : [] }
        XCTAssertEqual(try list().count, 10)
    }

    func testAListingTheBudgetRefusesIsOutOfMemory() {
        readdir = { offset in offset == 0 ? record("a", cookie: 1) : [] }
        MemoryBudget.isEnforced = true
        MemoryBudget.reserveOverride = Int.max / 4
        defer { MemoryBudget.isEnforced = false; MemoryBudget.reserveOverride = nil }
        assertEnded(with: .outOfMemory, readdirs: 1...1)
    }
}
