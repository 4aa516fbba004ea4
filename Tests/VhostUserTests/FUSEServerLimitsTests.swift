// What one guest may hold through toro-fs (FUSEServerLimits.swift): nodes past
// `--max-nodes` are ENFILE, handles past `--max-handles` EMFILE, both before anything is
// made on the host, and forgetting or releasing makes room again. A host out of
// descriptors (a low `ulimit -n`) answers EMFILE and serves again once descriptors return.
// What the guest's FUSE client sees past the handle cap: DriverDeviceTests
// (FUSEFileSystemServerTests).
import Wire
import XCTest
import Glibc
@testable import VhostUser

final class FUSEServerLimitsTests: FUSEShareTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        for name in ["f1", "f2", "f3", "f4"] { HostFiles.write(share + "/" + name, Array(name.utf8)) }
        mkdir(share + "/d", 0o755)
    }

    func client(maxNodes: Int = 100, maxHandles: Int = 100) throws -> FUSETestClient {
        let c = FUSETestClient(try FUSEServer(root: share, readOnly: false,
                                              limits: FUSEServerLimits(maxNodes: maxNodes, maxHandles: maxHandles)))
        try c.initialize()
        return c
    }

    func testNodesPastTheCapAreENFILEAndForgetMakesRoom() throws {
        let c = try client(maxNodes: 3)
        let f1 = try c.lookup("f1")
        let f2 = try c.lookup("f2")
        XCTAssertEqual(c.server.nodeCount, 3, "the root and two files")
        XCTAssertEqual(try c.errno(.lookup(name: Array("f3".utf8))), ENFILE)
        XCTAssertEqual(try c.lookup("f1").nodeID, f1.nodeID, "a node the guest holds still resolves")
        XCTAssertEqual(try c.errno(.mkdir(name: Array("m".utf8), mode: 0o755, umask: 0)), ENFILE)
        XCTAssertFalse(HostFiles.exists(share + "/m"), "refused before anything was made")
        XCTAssertEqual(try c.errno(.create(name: Array("n".utf8), flags: UInt32(O_WRONLY), mode: 0o644, umask: 0)), ENFILE)
        XCTAssertFalse(HostFiles.exists(share + "/n"))
        let listing = try c.list(FUSE.rootID, plus: true)
        XCTAssertEqual(listing.count, 5, "READDIRPLUS still lists everything")
        XCTAssertEqual(listing.first { $0.name == "f3" }?.entry?.nodeID, 0, "an entry past the cap takes no node")
        XCTAssertEqual(c.server.nodeCount, 3)
        XCTAssertTrue(log.contains("--max-nodes"), "\(log.lines)")
        for item in listing where item.entry?.nodeID ?? 0 != 0 { try c.forget(item.entry!.nodeID) }
        try c.forget(f2.nodeID)
        XCTAssertNotEqual(try c.lookup("f3").nodeID, 0, "forgetting made room")
    }

    func testHandlesPastTheCapAreEMFILEAndReleaseMakesRoom() throws {
        let c = try client(maxHandles: 2)
        let f1 = try c.lookup("f1")
        let f2 = try c.lookup("f2")
        let first = try c.open(f1.nodeID)
        let folder = try c.call(.opendir(flags: 0)) { try $0.open() }.fileHandle
        XCTAssertEqual(try c.errno(.open(flags: 0), node: f2.nodeID), EMFILE)
        XCTAssertEqual(try c.errno(.opendir(flags: 0)), EMFILE)
        XCTAssertEqual(try c.errno(.create(name: Array("n".utf8), flags: UInt32(O_WRONLY), mode: 0o644, umask: 0)), EMFILE)
        XCTAssertFalse(HostFiles.exists(share + "/n"), "refused before anything was made")
        XCTAssertEqual(c.server.handleCount, 2)
        XCTAssertTrue(log.contains("--max-handles"), "\(log.lines)")
        try c.release(folder, directory: true)
        let second = try c.open(f2.nodeID)
        XCTAssertEqual(try c.readAll(second), Array("f2".utf8))
        try c.release(first)
        try c.release(second)
    }

    /// The host itself out of descriptors: every request that needs one is answered EMFILE
    /// (nothing made on the host), and serving resumes once descriptors come back.
    func testHostOutOfDescriptorsAnswersEMFILEAndRecovers() throws {
        let c = try client()
        let f1 = try c.lookup("f1")
        var answers: [String: Int32] = [:]
        let filler = DescriptorFiller()
        answers["lookup"] = try c.errno(.lookup(name: Array("f2".utf8)))
        answers["open"] = try c.errno(.open(flags: 0), node: f1.nodeID)
        answers["opendir"] = try c.errno(.opendir(flags: 0))
        answers["create"] = try c.errno(.create(name: Array("n".utf8), flags: UInt32(O_WRONLY), mode: 0o644, umask: 0))
        answers["getattr"] = try c.errno(.getattr(fileHandle: nil), node: f1.nodeID)
        filler.free(4)
        answers["lookup again"] = try c.errno(.lookup(name: Array("f2".utf8)))
        filler.release()
        XCTAssertEqual(answers, ["lookup": EMFILE, "open": EMFILE, "opendir": EMFILE, "create": EMFILE,
                                 "getattr": 0, "lookup again": 0])
        XCTAssertFalse(HostFiles.exists(share + "/n"), "CREATE made nothing")
        let fh = try c.open(f1.nodeID)
        XCTAssertEqual(try c.readAll(fh), Array("f1".utf8))
        try c.release(fh)
        XCTAssertEqual(c.server.handleCount, 0)
        XCTAssertEqual(c.server.nodeCount, 3, "the root, f1 and f2")
    }
}
