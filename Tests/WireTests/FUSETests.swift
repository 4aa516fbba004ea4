import XCTest
@testable import Wire

/// FUSE request encoding and reply checking (Sources/Wire/FUSE).
final class FUSETests: XCTestCase {
    let header = FUSERequestHeader(unique: 0x1122_3344_5566_7788, nodeID: 5, uid: 1000, gid: 100, pid: 42)

    // MARK: helpers

    func le32(_ v: UInt32) -> [UInt8] { (0 ..< 4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    func le64(_ v: UInt64) -> [UInt8] { (0 ..< 8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    func le16(_ v: UInt16) -> [UInt8] { [UInt8(truncatingIfNeeded: v), UInt8(v >> 8)] }

    /// The in header we expect for `opcode` and a message of `length` bytes.
    func inHeader(_ length: Int, _ opcode: UInt32) -> [UInt8] {
        le32(UInt32(length)) + le32(opcode) + le64(header.unique) + le64(5) + le32(1000) + le32(100) + le32(42) + [0, 0, 0, 0]
    }

    func encode(_ request: FUSERequest, capacity: Int = 4096) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0xEE, count: capacity)
        let count = try buffer.withUnsafeMutableBytes { raw in try request.encode(into: raw, header: header) }
        XCTAssertEqual(count, request.encodedSize)
        return Array(buffer[..<count])
    }

    func expectBytes(_ request: FUSERequest, _ body: [UInt8], dataCount: Int = 0, file: StaticString = #filePath, line: UInt = #line) throws {
        let bytes = try encode(request)
        XCTAssertEqual(bytes, inHeader(40 + body.count + dataCount, request.opcode.rawValue) + body, file: file, line: line)
    }

    /// A reply: out header (`length` defaults to the true size) then `body`.
    func reply(_ body: [UInt8], error: Int32 = 0, unique: UInt64? = nil, length: UInt32? = nil) -> [UInt8] {
        le32(length ?? UInt32(16 + body.count)) + le32(UInt32(bitPattern: error)) + le64(unique ?? header.unique) + body
    }

    func decode<T>(_ bytes: [UInt8], _ body: (FUSEReply) throws -> T) -> Result<T, FUSEError> {
        bytes.withUnsafeBytes { raw in
            do {
                let reply = try FUSEReply(raw, unique: header.unique)
                return .success(try body(reply))
            } catch let error as FUSEError {
                return .failure(error)
            } catch {
                XCTFail("untyped error \(error)")
                return .failure(.truncated)
            }
        }
    }

    func error<T>(_ result: Result<T, FUSEError>) -> FUSEError? {
        if case .failure(let e) = result { return e }
        return nil
    }

    func sampleEntry() -> FUSEEntry {
        var entry = FUSEEntry()
        entry.nodeID = 7; entry.generation = 1; entry.entryValid = 2; entry.attrValid = 3
        entry.attributes.ino = 7; entry.attributes.size = 12345; entry.attributes.mode = 0o100644
        entry.attributes.nlink = 1; entry.attributes.blksize = 4096
        return entry
    }

    func entryBytes(_ entry: FUSEEntry) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: FUSEEntry.size)
        bytes.withUnsafeMutableBytes { entry.encode(into: $0) }
        return bytes
    }

    // MARK: requests

    func testEncodesEveryRequest() throws {
        let a = Array("a.txt".utf8), b = Array("bb".utf8)
        let nul: [UInt8] = [0]
        try expectBytes(.lookup(name: a), a + nul)
        try expectBytes(.forget(lookups: 3), le64(3))
        try expectBytes(.getattr(fileHandle: nil), le32(0) + le32(0) + le64(0))
        try expectBytes(.getattr(fileHandle: 9), le32(1) + le32(0) + le64(9))
        var set = FUSESetAttributes()
        set.valid = FUSESetAttributes.validSize | FUSESetAttributes.validMode
        set.size = 99; set.mode = 0o600; set.uid = 1; set.gid = 2; set.fileHandle = 4
        try expectBytes(.setattr(set), le32(set.valid) + le32(0) + le64(4) + le64(99) + le64(0) + le64(0) + le64(0) + le64(0)
            + le32(0) + le32(0) + le32(0) + le32(0o600) + le32(0) + le32(1) + le32(2) + le32(0))
        try expectBytes(.mkdir(name: a, mode: 0o755, umask: 0o022), le32(0o755) + le32(0o022) + a + nul)
        try expectBytes(.unlink(name: a), a + nul)
        try expectBytes(.rmdir(name: b), b + nul)
        try expectBytes(.rename(name: a, newDirectory: 8, newName: b), le64(8) + a + nul + b + nul)
        try expectBytes(.rename2(name: a, newDirectory: 8, newName: b, flags: 1), le64(8) + le32(1) + le32(0) + a + nul + b + nul)
        try expectBytes(.open(flags: 2), le32(2) + le32(0))
        try expectBytes(.opendir(flags: 0o200000), le32(0o200000) + le32(0))
        let readIn = le64(6) + le64(4096) + le32(8192) + le32(0) + le64(0) + le32(0) + le32(0)
        try expectBytes(.read(fileHandle: 6, offset: 4096, size: 8192), readIn)
        try expectBytes(.readdir(fileHandle: 6, offset: 4096, size: 8192), readIn)
        try expectBytes(.readdirplus(fileHandle: 6, offset: 4096, size: 8192), readIn)
        try expectBytes(.write(fileHandle: 6, offset: 4096, size: 8192), readIn, dataCount: 8192)
        try expectBytes(.statfs, [])
        try expectBytes(.release(fileHandle: 6, flags: 2), le64(6) + le32(2) + le32(0) + le64(0))
        try expectBytes(.releasedir(fileHandle: 6, flags: 0), le64(6) + le32(0) + le32(0) + le64(0))
        try expectBytes(.flush(fileHandle: 6, lockOwner: 77), le64(6) + le32(0) + le32(0) + le64(77))
        try expectBytes(.initialize(maxReadahead: 65536, flags: 0x20), le32(7) + le32(31) + le32(65536) + le32(0x20))
        try expectBytes(.create(name: b, flags: 0o101, mode: 0o644, umask: 0o022), le32(0o101) + le32(0o644) + le32(0o022) + le32(0) + b + nul)
        XCTAssertEqual(FUSERequest.forget(lookups: 1).opcode.rawValue, 2)
        XCTAssertEqual(FUSERequest.readdirplus(fileHandle: 0, offset: 0, size: 0).opcode.rawValue, 44)
        XCTAssertEqual(FUSERequest.rename2(name: a, newDirectory: 0, newName: b, flags: 0).opcode.rawValue, 45)
    }

    func testEncodeWriteCopiesData() throws {
        let data: [UInt8] = [1, 2, 3, 4, 5]
        var buffer = [UInt8](repeating: 0xEE, count: 200)
        let count = try buffer.withUnsafeMutableBytes { out in
            try data.withUnsafeBytes { d in try FUSERequest.encodeWrite(into: out, header: header, fileHandle: 6, offset: 10, data: d) }
        }
        XCTAssertEqual(count, 85)
        XCTAssertEqual(Array(buffer[..<count]), inHeader(85, 16) + le64(6) + le64(10) + le32(5) + le32(0) + le64(0) + le32(0) + le32(0) + data)
        XCTAssertEqual(buffer[count], 0xEE)
        var small = [UInt8](repeating: 0, count: 84)
        XCTAssertThrowsError(try small.withUnsafeMutableBytes { out in
            try data.withUnsafeBytes { d in try FUSERequest.encodeWrite(into: out, header: header, fileHandle: 6, offset: 10, data: d) }
        }) { XCTAssertEqual($0 as? FUSEError, .bufferTooSmall) }
    }

    func testRefusesBadNamesAndSmallBuffers() {
        for name in [[], [UInt8](repeating: 0x61, count: 1025), Array("a/b".utf8), [0x61, 0, 0x62]] {
            XCTAssertThrowsError(try encode(.lookup(name: name))) { XCTAssertEqual($0 as? FUSEError, .invalidName) }
            XCTAssertThrowsError(try encode(.rename(name: Array("ok".utf8), newDirectory: 1, newName: name))) {
                XCTAssertEqual($0 as? FUSEError, .invalidName)
            }
        }
        XCTAssertNoThrow(try encode(.lookup(name: [UInt8](repeating: 0x61, count: 1024)), capacity: 1065))
        XCTAssertThrowsError(try encode(.lookup(name: Array("abc".utf8)), capacity: 43)) { XCTAssertEqual($0 as? FUSEError, .bufferTooSmall) }
        XCTAssertThrowsError(try encode(.statfs, capacity: 39)) { XCTAssertEqual($0 as? FUSEError, .bufferTooSmall) }
    }

    // MARK: well-formed replies

    func testDecodesReplies() {
        let entry = sampleEntry()
        XCTAssertEqual(try decode(reply(entryBytes(entry))) { try $0.entry() }.get(), entry)
        XCTAssertNoThrow(try decode(reply([])) { try $0.empty() }.get())

        var attr = FUSEAttributesReply()
        attr.attrValid = 5; attr.attrValidNsec = 6; attr.attributes = entry.attributes
        var attrBytes = [UInt8](repeating: 0, count: 104)
        attrBytes.withUnsafeMutableBytes { attr.encode(into: $0) }
        XCTAssertEqual(try decode(reply(attrBytes)) { try $0.attributes() }.get(), attr)

        let open = le64(0xABCD) + le32(1) + le32(0)
        XCTAssertEqual(try decode(reply(open)) { try $0.open() }.get(), FUSEOpenReply(fileHandle: 0xABCD, openFlags: 1))
        let created = try? decode(reply(entryBytes(entry) + open)) { try $0.create() }.get()
        XCTAssertEqual(created?.entry, entry)
        XCTAssertEqual(created?.open, FUSEOpenReply(fileHandle: 0xABCD, openFlags: 1))

        let kstatfs = le64(100) + le64(50) + le64(40) + le64(1000) + le64(900) + le32(4096) + le32(255) + le32(4096) + [UInt8](repeating: 0, count: 28)
        let statfs = try? decode(reply(kstatfs)) { try $0.statfs() }.get()
        XCTAssertEqual(statfs?.blocks, 100); XCTAssertEqual(statfs?.freeFiles, 900); XCTAssertEqual(statfs?.nameLength, 255)

        XCTAssertEqual(try decode(reply(le32(4096) + le32(0))) { try $0.write(requested: 4096) }.get(), 4096)
        XCTAssertEqual(try decode(reply([9, 8, 7])) { Array(try $0.read(requested: 10)) }.get(), [9, 8, 7])
        XCTAssertEqual(try decode(reply([])) { try $0.read(requested: 10).count }.get(), 0)
    }

    func testRemoteErrors() {
        XCTAssertEqual(error(decode(reply([], error: -2)) { try $0.entry() }), .remote(2))
        XCTAssertEqual(error(decode(reply([], error: -511)) { try $0.empty() }), .remote(511))
    }

    func testInitNegotiation() {
        func initReply(major: UInt32 = 7, minor: UInt32 = 38, maxWrite: UInt32) -> [UInt8] {
            var out = FUSEInitReply()
            out.major = major; out.minor = minor; out.maxReadahead = 65536; out.maxWrite = maxWrite; out.maxPages = 32
            var bytes = [UInt8](repeating: 0, count: 64)
            bytes.withUnsafeMutableBytes { out.encode(into: $0) }
            return bytes
        }
        let accepted = try? decode(reply(initReply(maxWrite: 1 << 20))) { try $0.initialize(maximumWrite: 128 * 1024) }.get()
        XCTAssertEqual(accepted?.maxWrite, 128 * 1024)
        XCTAssertEqual(accepted?.minor, 38)
        XCTAssertEqual(accepted?.maxPages, 32)
        XCTAssertEqual(try? decode(reply(initReply(minor: 31, maxWrite: 8192))) { try $0.initialize(maximumWrite: 65536).maxWrite }.get(), 8192)
        XCTAssertEqual(try? decode(reply(initReply(maxWrite: 0))) { try $0.initialize(maximumWrite: 65536).maxWrite }.get(), 4096)
        XCTAssertEqual(error(decode(reply(initReply(minor: 30, maxWrite: 8192))) { try $0.initialize(maximumWrite: 65536) }),
                       .protocolVersion(major: 7, minor: 30))
        // A 7.22 server sends the 24-byte compat struct: the version is what is wrong.
        XCTAssertEqual(error(decode(reply(Array(initReply(minor: 22, maxWrite: 8192)[..<24]))) { try $0.initialize(maximumWrite: 65536) }),
                       .protocolVersion(major: 7, minor: 22))
        XCTAssertEqual(error(decode(reply(le32(8) + le32(0))) { try $0.initialize(maximumWrite: 65536) }),
                       .protocolVersion(major: 8, minor: 0))
        XCTAssertEqual(error(decode(reply(Array(initReply(maxWrite: 8192)[..<60]))) { try $0.initialize(maximumWrite: 65536) }), .badLength)
        XCTAssertEqual(error(decode(reply(le32(7))) { try $0.initialize(maximumWrite: 65536) }), .badLength)
    }

    // MARK: malformed and lying replies

    func testRefusesBadHeaders() {
        let good = reply(le64(1) + le32(0) + le32(0))
        for cut in 0 ..< 16 {
            XCTAssertEqual(error(decode(Array(good[..<cut])) { try $0.open() }), .truncated, "cut \(cut)")
        }
        // Header claims more than arrived, or less.
        XCTAssertEqual(error(decode(reply(le64(1) + le32(0) + le32(0), length: 40)) { try $0.open() }), .truncated)
        XCTAssertEqual(error(decode(reply(le64(1) + le32(0) + le32(0), length: 24)) { try $0.open() }), .badLength)
        XCTAssertEqual(error(decode(reply([], length: 8)) { try $0.empty() }), .badLength)
        XCTAssertEqual(error(decode(reply([], length: 0)) { try $0.empty() }), .badLength)
        XCTAssertEqual(error(decode(reply([], length: .max)) { try $0.empty() }), .truncated)
        XCTAssertEqual(error(decode(reply([], unique: 1)) { try $0.empty() }), .wrongUnique(1))
        XCTAssertEqual(error(decode(reply([], error: 1)) { try $0.empty() }), .badErrno(1))
        XCTAssertEqual(error(decode(reply([], error: -512)) { try $0.empty() }), .badErrno(-512))
        XCTAssertEqual(error(decode(reply([], error: .min)) { try $0.empty() }), .badErrno(.min))
        // An error reply must carry no body.
        XCTAssertEqual(error(decode(reply(entryBytes(sampleEntry()), error: -2)) { try $0.entry() }), .badLength)
    }

    func testRefusesWrongBodySizes() {
        let entry = entryBytes(sampleEntry())
        XCTAssertEqual(error(decode(reply(Array(entry[..<127]))) { try $0.entry() }), .badLength)
        XCTAssertEqual(error(decode(reply(entry + [0])) { try $0.entry() }), .badLength)
        XCTAssertEqual(error(decode(reply([])) { try $0.entry() }), .badLength)
        XCTAssertEqual(error(decode(reply([0])) { try $0.empty() }), .badLength)
        XCTAssertEqual(error(decode(reply(entry)) { try $0.attributes() }), .badLength)
        XCTAssertEqual(error(decode(reply(entry)) { try $0.create() }), .badLength)
        XCTAssertEqual(error(decode(reply([1, 2, 3])) { try $0.open() }), .badLength)
        XCTAssertEqual(error(decode(reply([UInt8](repeating: 0, count: 79))) { try $0.statfs() }), .badLength)
        XCTAssertEqual(error(decode(reply(le32(4097) + le32(0))) { try $0.write(requested: 4096) }), .badLength)
        XCTAssertEqual(error(decode(reply(le32(1))) { try $0.write(requested: 4096) }), .badLength)
        XCTAssertEqual(error(decode(reply([UInt8](repeating: 1, count: 11))) { try $0.read(requested: 10) }), .badLength)
    }

    // MARK: directories

    func stream(plus: Bool, _ names: [[UInt8]]) -> [UInt8] {
        var buffer = [UInt8](repeating: 0xEE, count: 4096)
        let count = buffer.withUnsafeMutableBytes { raw -> Int in
            var writer = FUSEDirectoryWriter(raw)
            for (i, name) in names.enumerated() {
                let ok = name.withUnsafeBytes {
                    writer.append(ino: UInt64(10 + i), offset: UInt64(i + 1), type: 8, name: $0, entry: plus ? sampleEntry() : nil)
                }
                XCTAssertTrue(ok)
            }
            return writer.count
        }
        return Array(buffer[..<count])
    }

    func testDecodesDirectories() {
        let names = [Array(".".utf8), Array("..".utf8), Array("eight888".utf8), Array("a-longer-file-name.txt".utf8)]
        for plus in [false, true] {
            let bytes = stream(plus: plus, names)
            XCTAssertEqual(bytes.count % 8, 0)
            let decoded = decode(reply(bytes)) { r -> [([UInt8], UInt64, UInt64, FUSEEntry?)] in
                try r.directory(requested: 4096, plus: plus).map { (Array($0.name), $0.ino, $0.offset, $0.entry) }
            }
            let records = (try? decoded.get()) ?? []
            XCTAssertEqual(records.map { $0.0 }, names)
            XCTAssertEqual(records.map { $0.1 }, [10, 11, 12, 13])
            XCTAssertEqual(records.map { $0.2 }, [1, 2, 3, 4])
            XCTAssertEqual(records.map { $0.3 }, Array(repeating: plus ? sampleEntry() : nil, count: 4))
            XCTAssertEqual(error(decode(reply(bytes)) { try $0.directory(requested: UInt32(bytes.count - 1), plus: plus) }), .badLength)
        }
        XCTAssertEqual(try decode(reply([])) { try $0.directory(requested: 4096, plus: false).count }.get(), 0)
    }

    func testRefusesMalformedDirectories() {
        func refused(_ bytes: [UInt8], plus: Bool = false, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(error(decode(reply(bytes)) { try $0.directory(requested: 1 << 20, plus: plus) }), .malformedDirectory,
                           file: file, line: line)
        }
        let good = stream(plus: false, [Array("abc".utf8), Array("defgh".utf8)])
        XCTAssertEqual(good.count, 64)
        func patched(_ at: Int, _ value: [UInt8]) -> [UInt8] {
            var bytes = good; bytes.replaceSubrange(at ..< at + value.count, with: value); return bytes
        }
        refused(patched(16, le32(0)))                  // namelen 0
        refused(patched(16, le32(1025)))               // namelen over FUSE_NAME_MAX
        refused(patched(16, le32(.max)))               // namelen huge
        refused(patched(48, le32(9)))                  // second name runs off the end
        refused(patched(20, le32(16)))                 // type out of range
        refused(patched(24, [UInt8(ascii: "/")]))      // slash in name
        refused(patched(25, [0]))                      // NUL in name
        refused(Array(good[..<60]))                    // last record truncated inside its padding
        refused(Array(good[..<40]))                    // second record's fixed part truncated
        refused(good + [0, 0, 0, 0])                   // misaligned tail
        refused(good + [UInt8](repeating: 0, count: 24)) // a zeroed trailing record: namelen 0
        let plus = stream(plus: true, [Array("abc".utf8)])
        XCTAssertEqual(plus.count, 160)
        refused(Array(plus[..<152]), plus: true)       // plus record without room for its name
        refused(Array(good), plus: true)               // dirent stream read as direntplus
        // An unchecked stream stops at the bad record instead of trapping.
        let bad = patched(48, le32(9))
        XCTAssertEqual(bad.withUnsafeBytes { FUSEDirectory($0, plus: false).count }, 1)
    }
}
