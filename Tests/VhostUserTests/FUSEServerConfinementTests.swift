// FUSEServer's hard rules: the guest never reaches outside the share (names, symlinks,
// special files), hostile requests never trap, and lifetimes follow FUSE (descriptor and
// node counts return to baseline after long open/read/release/forget runs).
import Wire
import XCTest
import Glibc
@testable import VhostUser

final class FUSEServerConfinementTests: FUSEShareTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        HostFiles.write(top + "/outside", Array("secret".utf8))
        HostFiles.write(share + "/inside.txt", Array("public".utf8))
        mkdir(share + "/sub", 0o755)
    }

    func testDotDotSlashAndEmptyNamesAreRefused() throws {
        let c = try client()
        XCTAssertEqual(try c.errno(.lookup(name: Array("..".utf8))), EINVAL)
        XCTAssertEqual(try c.errno(.lookup(name: Array(".".utf8))), EINVAL)
        let sub = try c.lookup("sub")
        XCTAssertEqual(try c.errno(.lookup(name: Array("..".utf8)), node: sub.nodeID), EINVAL)
        XCTAssertEqual(try c.errno(.mkdir(name: Array("..".utf8), mode: 0o755, umask: 0), node: sub.nodeID), EINVAL)
        XCTAssertEqual(try c.errno(.rename(name: Array("inside.txt".utf8), newDirectory: sub.nodeID, newName: Array("..".utf8))), EINVAL)
        // 'a/b' cannot even be encoded by Core; hand-craft it.
        var bytes = try c.encode(.lookup(name: Array("a_b".utf8)), node: FUSE.rootID)
        bytes[41] = UInt8(ascii: "/")
        XCTAssertEqual(try c.errno(raw: bytes), EINVAL)
        bytes = try c.encode(.lookup(name: Array("sub".utf8)), node: FUSE.rootID)
        bytes[40] = 0 // empty name
        XCTAssertEqual(try c.errno(raw: bytes), EINVAL)
    }

    func testSymlinksInsideAreFollowedAndEscapingOnesRefused() throws {
        symlink("/etc/passwd", share + "/absolute")
        symlink("../outside", share + "/climbs")
        symlink("../../outside", share + "/sub/climbs-twice")
        symlink("../inside.txt", share + "/sub/to-inside")
        symlink("sub", share + "/to-sub")
        symlink(top, share + "/to-parent")
        symlink("missing", share + "/dangling")
        let c = try client()
        for name in ["absolute", "climbs", "to-parent"] {
            XCTAssertEqual(try c.errno(.lookup(name: Array(name.utf8))), EACCES, name)
        }
        XCTAssertTrue(log.contains("leads outside the share"), "a refused symlink is logged")
        let sub = try c.lookup("sub")
        XCTAssertEqual(try c.errno(.lookup(name: Array("climbs-twice".utf8)), node: sub.nodeID), EACCES)
        XCTAssertEqual(try c.errno(.lookup(name: Array("dangling".utf8))), ENOENT)

        let inside = try c.lookup("inside.txt")
        let viaLink = try c.lookup("to-inside", in: sub.nodeID)
        XCTAssertEqual(viaLink.nodeID, inside.nodeID, "the target's node")
        XCTAssertEqual(viaLink.attributes.mode & 0o170000, 0o100000, "the guest sees the target's type")
        let fh = try c.open(viaLink.nodeID)
        XCTAssertEqual(try c.readAll(fh), Array("public".utf8))
        try c.release(fh)
        XCTAssertEqual(try c.lookup("to-sub").nodeID, sub.nodeID)

        // CREATE through an escaping symlink's name never writes outside.
        XCTAssertNotEqual(try c.errno(.create(name: Array("climbs".utf8), flags: UInt32(O_WRONLY | O_TRUNC), mode: 0o644, umask: 0)), 0)
        XCTAssertEqual(HostFiles.read(top + "/outside"), Array("secret".utf8))
    }

    func testSpecialFilesAreNeverOpenedOrListed() throws {
        XCTAssertEqual(mkfifo(share + "/fifo", 0o644), 0)
        symlink("fifo", share + "/to-fifo")
        let c = try client()
        XCTAssertEqual(try c.errno(.lookup(name: Array("fifo".utf8))), EACCES)
        XCTAssertEqual(try c.errno(.lookup(name: Array("to-fifo".utf8))), EACCES)
        XCTAssertFalse(try c.list(FUSE.rootID, plus: false).map(\.name).contains("fifo"), "FIFOs are hidden")
        let plus = try c.list(FUSE.rootID, plus: true)
        XCTAssertEqual(plus.first { $0.name == "to-fifo" }?.entry?.nodeID, 0, "a refused READDIRPLUS entry takes no lookup")
    }

    func testUnknownNodesAndHandlesAreErrorsNotCrashes() throws {
        let c = try client()
        XCTAssertEqual(try c.errno(.getattr(fileHandle: nil), node: 999), ENOENT)
        XCTAssertEqual(try c.errno(.lookup(name: Array("x".utf8)), node: 0), ENOENT)
        XCTAssertEqual(try c.errno(.open(flags: 0), node: 12345), ENOENT)
        XCTAssertEqual(try c.errno(.read(fileHandle: 77, offset: 0, size: 10)), EBADF)
        XCTAssertEqual(try c.errno(.write(fileHandle: 77, offset: 0, size: 0)), EBADF)
        XCTAssertEqual(try c.errno(.release(fileHandle: 77, flags: 0)), EBADF)
        XCTAssertEqual(try c.errno(.readdir(fileHandle: 77, offset: 0, size: 100)), EBADF)
        XCTAssertEqual(try c.errno(.getattr(fileHandle: 77)), EBADF)
        let dirHandle = try c.call(.opendir(flags: 0)) { try $0.open() }.fileHandle
        XCTAssertEqual(try c.errno(.read(fileHandle: dirHandle, offset: 0, size: 10)), EBADF, "a directory handle is not a file handle")
        XCTAssertEqual(try c.errno(.open(flags: 0)), EISDIR)
        let file = try c.lookup("inside.txt")
        XCTAssertEqual(try c.errno(.opendir(flags: 0), node: file.nodeID), ENOTDIR)
        try c.forget(999, 5) // unknown: ignored
        try c.forget(FUSE.rootID, 100) // the root is permanent
        XCTAssertEqual(try c.errno(.getattr(fileHandle: nil)), 0)
    }

    func testTruncatedAndLyingRequestsNeverTrap() throws {
        let c = try client()
        let good = try c.encode(.lookup(name: Array("inside.txt".utf8)), node: FUSE.rootID)
        // Shorter than an in header: answered EINVAL when `unique` is there, else dropped.
        XCTAssertNil(c.raw(Array(good[..<10])))
        XCTAssertEqual(try c.errno(raw: Array(good[..<20])), EINVAL)
        // Every truncation of a valid request is refused, never served or trapped on.
        for cut in 16..<good.count {
            XCTAssertEqual(try c.errno(raw: Array(good[..<cut])), EINVAL, "cut at \(cut)")
        }
        // `len` claiming more than arrived, or less than a header.
        var lying = good
        lying[0] = UInt8(good.count + 1)
        XCTAssertEqual(try c.errno(raw: lying), EINVAL)
        lying[0] = 8
        XCTAssertEqual(try c.errno(raw: lying), EINVAL)
        // WRITE whose size exceeds the data sent.
        var write = try c.encode(.write(fileHandle: 1, offset: 0, size: 0), node: 1, data: [1, 2, 3])
        write.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(100).littleEndian, toByteOffset: 56, as: UInt32.self) }
        XCTAssertEqual(try c.errno(raw: write), EINVAL)
        // BATCH_FORGET with a count beyond its entries: dropped without a reply.
        var batch = [UInt8](repeating: 0, count: 48)
        batch.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(48).littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: FUSEServerOpcode.batchForget.littleEndian, toByteOffset: 4, as: UInt32.self)
            raw.storeBytes(of: UInt32(1000).littleEndian, toByteOffset: 40, as: UInt32.self)
        }
        XCTAssertNil(c.raw(batch))
        // No room for a reply: nothing happens, nothing is returned.
        XCTAssertNil(c.raw(good, replySize: 8))
        // A reply buffer too small for fuse_entry_out: ERANGE, and no lookup was taken.
        let nodes = c.server.nodeCount
        let small = try XCTUnwrap(c.raw(good, replySize: 100))
        XCTAssertEqual(small.count, 16)
        XCTAssertEqual(small.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }, -ERANGE)
        XCTAssertEqual(c.server.nodeCount, nodes)
        // Random garbage.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var bytes = (0..<Int.random(in: 0..<200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if bytes.count >= 8 { bytes[4] = UInt8.random(in: 0...50, using: &rng); bytes[5] = 0; bytes[6] = 0; bytes[7] = 0 }
            _ = c.raw(bytes, replySize: 4096)
        }
        XCTAssertEqual(HostFiles.read(top + "/outside"), Array("secret".utf8))
    }

    func testTwoThousandCyclesLeaveNoDescriptorsOrNodesBehind() throws {
        HostFiles.write(share + "/sub/data", pattern(3000))
        let c = try client()
        let baseDescriptors = c.server.openDescriptorCount
        let baseNodes = c.server.nodeCount
        let processDescriptors = countProcessDescriptors()
        for i in 0..<2000 {
            let sub = try c.lookup("sub")
            let file = try c.lookup("data", in: sub.nodeID)
            let fh = try c.open(file.nodeID)
            let data = try c.call(.read(fileHandle: fh, offset: UInt64(i % 3000), size: 64)) { Array(try $0.read(requested: 64)) }
            XCTAssertEqual(data.first, pattern(3000)[i % 3000])
            try c.release(fh)
            if i % 2 == 0 {
                try c.forget(file.nodeID)
                try c.forget(sub.nodeID)
            } else {
                var batch = [UInt8](repeating: 0, count: 48 + 32)
                batch.withUnsafeMutableBytes { raw in
                    raw.storeBytes(of: UInt32(80).littleEndian, toByteOffset: 0, as: UInt32.self)
                    raw.storeBytes(of: FUSEServerOpcode.batchForget.littleEndian, toByteOffset: 4, as: UInt32.self)
                    raw.storeBytes(of: UInt32(2).littleEndian, toByteOffset: 40, as: UInt32.self)
                    raw.storeBytes(of: file.nodeID.littleEndian, toByteOffset: 48, as: UInt64.self)
                    raw.storeBytes(of: UInt64(1).littleEndian, toByteOffset: 56, as: UInt64.self)
                    raw.storeBytes(of: sub.nodeID.littleEndian, toByteOffset: 64, as: UInt64.self)
                    raw.storeBytes(of: UInt64(1).littleEndian, toByteOffset: 72, as: UInt64.self)
                }
                XCTAssertNil(c.raw(batch))
            }
            let dh = try c.call(.opendir(flags: 0)) { try $0.open() }.fileHandle
            try c.release(dh, directory: true)
        }
        XCTAssertEqual(c.server.openDescriptorCount, baseDescriptors)
        XCTAssertEqual(c.server.nodeCount, baseNodes)
        XCTAssertEqual(c.server.handleCount, 0)
        XCTAssertEqual(countProcessDescriptors(), processDescriptors, "no descriptor leaked in the process")
    }

    func testHardLinksShareOneNode() throws {
        XCTAssertEqual(link(share + "/inside.txt", share + "/sub/hard"), 0)
        let c = try client()
        let a = try c.lookup("inside.txt")
        let sub = try c.lookup("sub")
        let b = try c.lookup("hard", in: sub.nodeID)
        XCTAssertEqual(a.nodeID, b.nodeID)
        let nodes = c.server.nodeCount
        try c.forget(a.nodeID)
        XCTAssertEqual(c.server.nodeCount, nodes, "still one lookup left")
        try c.forget(b.nodeID)
        XCTAssertEqual(c.server.nodeCount, nodes - 1)
    }

    func testDestroyDropsEverythingButTheRoot() throws {
        let c = try client()
        _ = try c.lookup("sub")
        _ = try c.open(try c.lookup("inside.txt").nodeID)
        var destroy = [UInt8](repeating: 0, count: 40)
        destroy.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(40).littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: FUSEServerOpcode.destroy.littleEndian, toByteOffset: 4, as: UInt32.self)
        }
        XCTAssertEqual(try c.errno(raw: destroy), 0)
        XCTAssertEqual(c.server.nodeCount, 1)
        XCTAssertEqual(c.server.handleCount, 0)
    }

    func countProcessDescriptors() -> Int {
        guard let dir = opendir("/proc/self/fd") else { return -1 }
        defer { closedir(dir) }
        var count = 0
        while readdir(dir) != nil { count += 1 }
        return count
    }
}
