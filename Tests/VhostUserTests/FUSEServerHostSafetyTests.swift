// toro-fs treats the guest as hostile even when it runs as root (DESIGN.md "Robustness
// rules", FUSEServerPolicy.swift): no set-user-ID, set-group-ID or sticky bit from a guest
// request, no ownership change, no FIFO or device ever opened (CREATE of an existing FIFO
// answers at once instead of blocking), and what the guest does is checked on the host.
// These tests are meant to run as root (the README's path, and this project's CI); as
// another user every assertion still holds, with less at stake. What the guest's FUSE
// client sees of these rules: DriverDeviceTests (FUSEFileSystemServerTests).
import Wire
import XCTest
import Foundation
import Glibc
import TestSupport
@testable import VhostUser

final class FUSEServerHostSafetyTests: FUSEShareTestCase {
    func hostMode(_ path: String) -> UInt32 {
        var status = stat()
        XCTAssertEqual(lstat(path, &status), 0, path)
        return UInt32(status.st_mode) & 0o7777
    }

    func hostOwner(_ path: String) -> (uid: UInt32, gid: UInt32) {
        var status = stat()
        XCTAssertEqual(lstat(path, &status), 0, path)
        return (status.st_uid, status.st_gid)
    }

    func testCreateAndMkdirNeverMakeSetIDOrStickyBits() throws {
        mkdir(share + "/shared-group", 0o775)
        XCTAssertEqual(chmod(share + "/shared-group", 0o2775), 0, "a set-group-ID folder made by the host")
        let c = try client()
        let (entry, opened) = try c.call(.create(name: Array("tool".utf8), flags: UInt32(O_WRONLY), mode: 0o107755, umask: 0)) { try $0.create() }
        try c.release(opened.fileHandle)
        XCTAssertEqual(entry.attributes.mode & 0o7777, 0o755, "the guest is told what the host has")
        XCTAssertEqual(hostMode(share + "/tool"), 0o755)

        let dir = try c.call(.mkdir(name: Array("sticky".utf8), mode: 0o41755, umask: 0)) { try $0.entry() }
        XCTAssertEqual(dir.attributes.mode & 0o7777, 0o755)
        XCTAssertEqual(hostMode(share + "/sticky"), 0o755)

        let group = try c.lookup("shared-group")
        let inner = try c.call(.mkdir(name: Array("inner".utf8), mode: 0o755, umask: 0), node: group.nodeID) { try $0.entry() }
        XCTAssertEqual(hostMode(share + "/shared-group/inner"), 0o755, "S_ISGID inherited from the parent is cleared")
        XCTAssertEqual(inner.attributes.mode & 0o7777, 0o755)
        XCTAssertEqual(hostMode(share + "/shared-group"), 0o2775, "the host's own folder keeps its bits")
    }

    func testSetattrRefusesSetIDStickyAndOwnerChanges() throws {
        HostFiles.write(share + "/f", [1, 2, 3])
        chmod(share + "/f", 0o644)
        let owner = hostOwner(share + "/f")
        let c = try client()
        let f = try c.lookup("f")
        for mode: UInt32 in [0o104755, 0o102755, 0o101777, 0o4000] {
            var set = FUSESetAttributes()
            set.valid = FUSESetAttributes.validMode
            set.mode = mode
            XCTAssertEqual(try c.errno(.setattr(set), node: f.nodeID), EPERM, "chmod 0o\(String(mode, radix: 8))")
        }
        XCTAssertEqual(hostMode(share + "/f"), 0o644, "nothing changed")

        var chown = FUSESetAttributes()
        chown.valid = FUSESetAttributes.validUID
        chown.uid = 12345
        XCTAssertEqual(try c.errno(.setattr(chown), node: f.nodeID), EPERM, "chown to another user")
        chown.valid = FUSESetAttributes.validGID
        chown.gid = 12345
        XCTAssertEqual(try c.errno(.setattr(chown), node: f.nodeID), EPERM, "chgrp to another group")
        // A refused request changes nothing else it carried either.
        chown.valid = FUSESetAttributes.validUID | FUSESetAttributes.validSize
        chown.size = 0
        XCTAssertEqual(try c.errno(.setattr(chown), node: f.nodeID), EPERM)
        XCTAssertEqual(HostFiles.read(share + "/f"), [1, 2, 3])
        XCTAssertEqual(hostOwner(share + "/f").uid, owner.uid)
        XCTAssertEqual(hostOwner(share + "/f").gid, owner.gid)

        // The current owner and group, and a plain mode, are fine.
        var same = FUSESetAttributes()
        same.valid = FUSESetAttributes.validUID | FUSESetAttributes.validGID | FUSESetAttributes.validMode
        same.uid = owner.uid
        same.gid = owner.gid
        same.mode = 0o100600
        let attributes = try c.call(.setattr(same), node: f.nodeID) { try $0.attributes() }
        XCTAssertEqual(attributes.attributes.mode, 0o100600)
        XCTAssertEqual(hostMode(share + "/f"), 0o600)
    }

    func testWritingASetIDFileClearsItsSetIDBits() throws {
        HostFiles.write(share + "/program", [0x7F, 0x45, 0x4C, 0x46])
        HostFiles.write(share + "/other", [1])
        XCTAssertEqual(chmod(share + "/program", 0o6755), 0)
        XCTAssertEqual(chmod(share + "/other", 0o4755), 0)
        let c = try client()
        let program = try c.lookup("program")
        let reader = try c.open(program.nodeID, flags: O_RDONLY)
        try c.release(reader)
        XCTAssertEqual(hostMode(share + "/program"), 0o6755, "reading changes nothing")
        let writer = try c.open(program.nodeID, flags: O_WRONLY)
        XCTAssertEqual(hostMode(share + "/program"), 0o755, "opened for writing: set-ID bits gone")
        try c.release(writer)

        var truncate = FUSESetAttributes()
        truncate.valid = FUSESetAttributes.validSize
        truncate.size = 0
        _ = try c.call(.setattr(truncate), node: try c.lookup("other").nodeID) { try $0.attributes() }
        XCTAssertEqual(hostMode(share + "/other"), 0o755, "truncated: set-ID bit gone")
    }

    /// CREATE of a name that is a FIFO (O_CREAT without O_EXCL) used to open it, blocking
    /// the whole back-end until a writer or reader came. A watchdog opens the FIFO after 3 s,
    /// so a regression fails on time instead of hanging the suite.
    func testCreateOfAnExistingFIFOAnswersAtOnce() throws {
        let fifo = share + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o666), 0)
        let watchdog = fifoWatchdog(fifo)
        defer { watchdog.cancel() }
        let c = try client()
        for flags in [O_RDONLY, O_WRONLY, O_RDWR, O_WRONLY | O_TRUNC] {
            let start = Posix.monotonicNow()
            XCTAssertEqual(try c.errno(.create(name: Array("fifo".utf8), flags: UInt32(flags), mode: 0o644, umask: 0)), EACCES,
                           "flags \(flags)")
            XCTAssertLessThan(Posix.monotonicNow() - start, 1, "CREATE of a FIFO must not block (flags \(flags))")
        }
        XCTAssertEqual(try c.errno(.create(name: Array("fifo".utf8), flags: UInt32(O_WRONLY | O_EXCL), mode: 0o644, umask: 0)), EEXIST)
        XCTAssertEqual(c.server.handleCount, 0)
        XCTAssertEqual(c.server.nodeCount, 1, "no node for the FIFO")
        var status = stat()
        XCTAssertEqual(lstat(fifo, &status), 0)
        XCTAssertEqual(status.st_mode & S_IFMT, S_IFIFO, "the FIFO is still there, untouched")
    }

    func testCreateOfAnExistingDeviceOrDirectoryOpensNothing() throws {
        mkdir(share + "/dir", 0o755)
        let device = share + "/null"
        let made = mknod(device, S_IFCHR | 0o666, makedev(1, 3)) == 0  // needs CAP_MKNOD (root)
        let c = try client()
        XCTAssertEqual(try c.errno(.create(name: Array("dir".utf8), flags: UInt32(O_RDONLY), mode: 0o644, umask: 0)), EISDIR)
        if made {
            XCTAssertEqual(try c.errno(.create(name: Array("null".utf8), flags: UInt32(O_WRONLY), mode: 0o644, umask: 0)), EACCES)
            XCTAssertEqual(try c.errno(.lookup(name: Array("null".utf8))), EACCES)
        }
        XCTAssertEqual(c.server.handleCount, 0)
        // An existing regular file is opened (no O_EXCL), truncated when asked.
        HostFiles.write(share + "/plain", [1, 2, 3])
        let (_, opened) = try c.call(.create(name: Array("plain".utf8), flags: UInt32(O_WRONLY | O_TRUNC), mode: 0o644, umask: 0)) { try $0.create() }
        try c.release(opened.fileHandle)
        XCTAssertEqual(HostFiles.read(share + "/plain"), [])
    }
}

private func makedev(_ major: UInt32, _ minor: UInt32) -> dev_t {
    dev_t((UInt64(major & 0xFFF) << 8) | UInt64(minor & 0xFF) | (UInt64(minor & ~0xFF) << 12) | (UInt64(major & ~0xFFF) << 32))
}
