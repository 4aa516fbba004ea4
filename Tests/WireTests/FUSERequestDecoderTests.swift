import XCTest
@testable import Wire

/// The server-side request decoder (Sources/Wire/FUSE/FUSERequestDecoder.swift): round trips
/// with FUSERequest.encode, and truncated or lying input refused with a typed error.
final class FUSERequestDecoderTests: XCTestCase {
    let header = FUSERequestHeader(unique: 0xABCD, nodeID: 9, uid: 1, gid: 2, pid: 3)

    func encode(_ request: FUSERequest, data: [UInt8] = []) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: request.encodedSize + data.count)
        _ = try bytes.withUnsafeMutableBytes { raw in
            if case .write(let fh, let offset, _) = request {
                return try data.withUnsafeBytes { try FUSERequest.encodeWrite(into: raw, header: header, fileHandle: fh, offset: offset, data: $0) }
            }
            return try request.encode(into: raw, header: header)
        }
        return bytes
    }

    /// Decodes `bytes` and hands the operation to `check` while the bytes are alive.
    func decode(_ bytes: [UInt8], _ check: (FUSEIncomingRequest) -> Void = { _ in }) -> FUSEError? {
        bytes.withUnsafeBytes { raw in
            do throws(FUSEError) {
                check(try FUSEIncomingRequest(raw))
                return nil
            } catch {
                return error
            }
        }
    }

    func text(_ name: UnsafeRawBufferPointer) -> String { String(decoding: name, as: UTF8.self) }

    func testHeaderFieldsRoundTrip() throws {
        XCTAssertNil(decode(try encode(.statfs)) { r in
            XCTAssertEqual(r.opcode, FUSEOpcode.statfs.rawValue)
            XCTAssertEqual(r.unique, 0xABCD); XCTAssertEqual(r.nodeID, 9)
            XCTAssertEqual(r.uid, 1); XCTAssertEqual(r.gid, 2); XCTAssertEqual(r.pid, 3)
            guard case .statfs = r.operation else { return XCTFail("\(r.operation)") }
        })
    }

    func testEveryEncodedRequestDecodesToItsFields() throws {
        var ok = 0
        XCTAssertNil(decode(try encode(.lookup(name: Array("näme x".utf8)))) { r in
            if case .lookup(let n) = r.operation, self.text(n) == "näme x" { ok += 1 }
        })
        XCTAssertNil(decode(try encode(.forget(lookups: 42))) { r in if case .forget(42) = r.operation { ok += 1 } })
        XCTAssertNil(decode(try encode(.getattr(fileHandle: nil))) { r in if case .getattr(nil) = r.operation { ok += 1 } })
        XCTAssertNil(decode(try encode(.getattr(fileHandle: 5))) { r in if case .getattr(5) = r.operation { ok += 1 } })
        var set = FUSESetAttributes()
        set.valid = FUSESetAttributes.validSize | FUSESetAttributes.validMode | FUSESetAttributes.validMtime
        set.size = 77; set.mode = 0o600; set.mtime = 123; set.mtimensec = 4; set.fileHandle = 8; set.uid = 5; set.gid = 6
        XCTAssertNil(decode(try encode(.setattr(set))) { r in if case .setattr(let a) = r.operation, a == set { ok += 1 } })
        XCTAssertNil(decode(try encode(.mkdir(name: Array("d".utf8), mode: 0o755, umask: 0o22))) { r in
            if case .mkdir(let n, 0o755, 0o22) = r.operation, self.text(n) == "d" { ok += 1 }
        })
        XCTAssertNil(decode(try encode(.unlink(name: Array("u".utf8)))) { r in if case .unlink = r.operation { ok += 1 } })
        XCTAssertNil(decode(try encode(.rmdir(name: Array("r".utf8)))) { r in if case .rmdir = r.operation { ok += 1 } })
        XCTAssertNil(decode(try encode(.rename(name: Array("a".utf8), newDirectory: 3, newName: Array("bb".utf8)))) { r in
            if case .rename(let a, 3, let b, 0) = r.operation, self.text(a) == "a", self.text(b) == "bb" { ok += 1 }
        })
        XCTAssertNil(decode(try encode(.rename2(name: Array("a".utf8), newDirectory: 4, newName: Array("c".utf8), flags: 1))) { r in
            if case .rename(let a, 4, let c, 1) = r.operation, self.text(a) == "a", self.text(c) == "c" { ok += 1 }
        })
        XCTAssertNil(decode(try encode(.open(flags: 2))) { r in if case .open(2) = r.operation { ok += 1 } })
        XCTAssertNil(decode(try encode(.opendir(flags: 0))) { r in if case .opendir(0) = r.operation { ok += 1 } })
        XCTAssertNil(decode(try encode(.read(fileHandle: 1, offset: 2, size: 3))) { r in if case .read(1, 2, 3) = r.operation { ok += 1 } })
        XCTAssertNil(decode(try encode(.readdir(fileHandle: 1, offset: 2, size: 3))) { r in if case .readdir(1, 2, 3) = r.operation { ok += 1 } })
        XCTAssertNil(decode(try encode(.readdirplus(fileHandle: 1, offset: 2, size: 3))) { r in if case .readdirplus(1, 2, 3) = r.operation { ok += 1 } })
        XCTAssertNil(decode(try encode(.write(fileHandle: 6, offset: 7, size: 3), data: [9, 8, 7])) { r in
            if case .write(6, 7, let d) = r.operation, Array(d) == [9, 8, 7] { ok += 1 }
        })
        XCTAssertNil(decode(try encode(.release(fileHandle: 4, flags: 1))) { r in if case .release(4, 1) = r.operation { ok += 1 } })
        XCTAssertNil(decode(try encode(.releasedir(fileHandle: 4, flags: 0))) { r in if case .releasedir(4, 0) = r.operation { ok += 1 } })
        XCTAssertNil(decode(try encode(.flush(fileHandle: 11, lockOwner: 0))) { r in if case .flush(11) = r.operation { ok += 1 } })
        XCTAssertNil(decode(try encode(.initialize(maxReadahead: 4096, flags: 3))) { r in
            if case .initialize(7, 31, 4096, 3) = r.operation { ok += 1 }
        })
        XCTAssertNil(decode(try encode(.create(name: Array("f".utf8), flags: 1, mode: 0o644, umask: 0o22))) { r in
            if case .create(let n, 1, 0o644, 0o22) = r.operation, self.text(n) == "f" { ok += 1 }
        })
        XCTAssertEqual(ok, 21, "every request decoded to the fields it was encoded with")
    }

    /// Builds a request by hand for opcodes the guest's encoder does not have.
    func raw(_ opcode: UInt32, _ body: [UInt8]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 40) + body
        bytes.withUnsafeMutableBytes { r in
            r.storeBytes(of: UInt32(r.count).littleEndian, toByteOffset: 0, as: UInt32.self)
            r.storeBytes(of: opcode.littleEndian, toByteOffset: 4, as: UInt32.self)
        }
        return bytes
    }

    func le(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    func le(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    func testServerOnlyOpcodes() {
        var ok = 0
        XCTAssertNil(decode(raw(FUSEServerOpcode.fsync, le(UInt64(5)) + le(UInt32(1)) + le(UInt32(0)))) { r in
            if case .fsync(5, 1) = r.operation { ok += 1 }
        })
        XCTAssertNil(decode(raw(FUSEServerOpcode.fsyncdir, le(UInt64(6)) + le(UInt64(0)))) { r in if case .fsyncdir(6, 0) = r.operation { ok += 1 } })
        XCTAssertNil(decode(raw(FUSEServerOpcode.access, le(UInt32(4)) + le(UInt32(0)))) { r in if case .access(4) = r.operation { ok += 1 } })
        XCTAssertNil(decode(raw(FUSEServerOpcode.destroy, [])) { r in if case .destroy = r.operation { ok += 1 } })
        XCTAssertNil(decode(raw(FUSEServerOpcode.batchForget, le(UInt32(2)) + le(UInt32(0)) + le(UInt64(10)) + le(UInt64(1)) + le(UInt64(11)) + le(UInt64(3)))) { r in
            if case .batchForget(let entries, 2) = r.operation,
               FUSEIncomingRequest.forgetEntry(entries, 0) == (10, 1), FUSEIncomingRequest.forgetEntry(entries, 1) == (11, 3) { ok += 1 }
        })
        XCTAssertNil(decode(raw(FUSEServerOpcode.mknod, [])) { r in if case .refused(8) = r.operation { ok += 1 } })
        XCTAssertNil(decode(raw(4242, [])) { r in if case .unknown(4242) = r.operation { ok += 1 } })
        XCTAssertEqual(ok, 7)
    }

    func testTruncatedRequestsAreRefused() throws {
        for request: FUSERequest in [.lookup(name: Array("abc".utf8)), .getattr(fileHandle: 1), .read(fileHandle: 1, offset: 0, size: 1),
                                     .rename(name: Array("a".utf8), newDirectory: 1, newName: Array("b".utf8)), .initialize(maxReadahead: 0, flags: 0),
                                     .create(name: Array("c".utf8), flags: 0, mode: 0, umask: 0), .flush(fileHandle: 1, lockOwner: 0)] {
            let bytes = try encode(request)
            for cut in 0..<bytes.count {
                var shortened = Array(bytes[..<cut])
                if cut >= 4 { shortened.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(cut).littleEndian, as: UInt32.self) } }
                XCTAssertNotNil(decode(shortened), "\(request) cut at \(cut) must not decode")
            }
        }
    }

    func testLyingLengthsAndBadNames() throws {
        var bytes = try encode(.lookup(name: Array("abc".utf8)))
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(1000).littleEndian, as: UInt32.self) }
        XCTAssertEqual(decode(bytes), .truncated, "len beyond the bytes")
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(12).littleEndian, as: UInt32.self) }
        XCTAssertEqual(decode(bytes), .truncated, "len below a header")
        // Extra bytes after `len` are ignored.
        XCTAssertNil(decode(try encode(.statfs) + [1, 2, 3]))
        var slash = try encode(.lookup(name: Array("a_b".utf8)))
        slash[41] = UInt8(ascii: "/")
        XCTAssertEqual(decode(slash), .invalidName)
        var empty = try encode(.lookup(name: Array("a".utf8)))
        empty[40] = 0
        XCTAssertEqual(decode(empty), .invalidName)
        var unterminated = try encode(.lookup(name: Array("abc".utf8)))
        unterminated[unterminated.count - 1] = UInt8(ascii: "d")
        XCTAssertEqual(decode(unterminated), .truncated)
        var write = try encode(.write(fileHandle: 1, offset: 0, size: 4), data: [1, 2, 3, 4])
        write.removeLast()
        write.withUnsafeMutableBytes { $0.storeBytes(of: UInt32($0.count).littleEndian, as: UInt32.self) }
        XCTAssertEqual(decode(write), .truncated, "WRITE size beyond its data")
        let longName = [UInt8](repeating: UInt8(ascii: "n"), count: 1025)
        XCTAssertEqual(decode(raw(FUSEOpcode.lookup.rawValue, longName + [0])), .invalidName)
        XCTAssertEqual(decode(raw(FUSEServerOpcode.batchForget, le(UInt32(3)) + le(UInt32(0)) + le(UInt64(1)) + le(UInt64(1)))), .truncated)
        XCTAssertNil(FUSEIncomingRequest.peekUnique([UInt8](repeating: 0, count: 15).withUnsafeBytes { $0 }))
    }
}
