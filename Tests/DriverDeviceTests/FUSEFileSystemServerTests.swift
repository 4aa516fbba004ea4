// The guest's FUSE client (FSDriver's FUSEFileSystem, behind a VFS as services use it)
// against the host's FUSE server (toro-fs's FUSEServer) over a real temporary folder,
// in-process: the two halves of virtio-fs agree on every operation services use, the guest
// never reaches outside the folder, a read-only share changes nothing, and long use leaks
// no host descriptor, node or guest handle. No virtqueue lies between them (that path is
// VirtIOFSDriverDeviceTests): `InProcessChannel` hands each request straight to the server.
// And what the guest sees of the server's host-safety rules and limits, whose host side
// VhostUserTests checks (FUSEServerHostSafetyTests, FUSEServerLimitsTests): set-ID bits
// dropped, a host FIFO refused at once, too many open files past the handle cap.
import XCTest
import Foundation
import Glibc
import Core
import Drivers
import FSDriver
import Wire
import TestSupport
@testable import VhostUser

/// Hands each request straight to a FUSEServer, as the virtqueues would.
final class InProcessChannel: FUSEChannel {
    let server: FUSEServer
    var forgets = 0
    init(server: FUSEServer) { self.server = server }

    func exchange(_ request: UnsafeRawBufferPointer, reply: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        guard let count = server.handle(request, reply: reply) else { throw .io }
        return count
    }

    func post(_ request: UnsafeRawBufferPointer) throws(FileSystemError) {
        var scratch = [UInt8](repeating: 0, count: 64)
        let answered = scratch.withUnsafeMutableBytes { server.handle(request, reply: $0) }
        guard answered == nil else { throw .io }
        forgets += 1
    }
}

final class FUSEFileSystemServerTests: XCTestCase {
    var root = ""
    var outside = ""
    let manager = FileManager.default

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "toro-fuse-\(UUID().uuidString)"
        outside = root + "-outside"
        try manager.createDirectory(atPath: root + "/nested/deeper", withIntermediateDirectories: true)
        try manager.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try Data("secret".utf8).write(to: URL(fileURLWithPath: outside + "/secret.txt"))
        try Data().write(to: URL(fileURLWithPath: root + "/empty"))
        try Data((0..<1024).map { UInt8($0 % 256) }).write(to: URL(fileURLWithPath: root + "/one KiB.bin"))
        var big = [UInt8](repeating: 0, count: 1 << 20)
        for i in big.indices { big[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 13) }
        try Data(big).write(to: URL(fileURLWithPath: root + "/nested/deeper/mebibyte.bin"))
        try Data("héllo wörld".utf8).write(to: URL(fileURLWithPath: root + "/nested/grüße 😀.txt"))
        try manager.createSymbolicLink(atPath: root + "/escape", withDestinationPath: outside + "/secret.txt")
        try manager.createSymbolicLink(atPath: root + "/climb", withDestinationPath: "../" + (outside as NSString).lastPathComponent + "/secret.txt")
        try manager.createSymbolicLink(atPath: root + "/inside", withDestinationPath: "nested/grüße 😀.txt")
    }

    override func tearDownWithError() throws {
        try? manager.removeItem(atPath: root)
        try? manager.removeItem(atPath: outside)
    }

    func mount(readOnly: Bool = false) throws -> (VFS, FUSEFileSystem, FUSEServer, InProcessChannel) {
        let server = try FUSEServer(root: root, readOnly: readOnly)
        let channel = InProcessChannel(server: server)
        let fs = try FUSEFileSystem.mount(channel: channel)
        let vfs = VFS()
        try vfs.mount(fs)
        return (vfs, fs, server, channel)
    }

    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    func read(_ vfs: VFS, _ path: String) throws -> [UInt8] { try readWhole(vfs, path, chunk: 200_000) }

    func host(_ path: String) -> [UInt8] { Array(manager.contents(atPath: root + "/" + path) ?? Data()) }

    /// The permission bits of `path` in the share, as the host has them.
    func hostMode(_ path: String) -> UInt32 {
        var status = stat()
        XCTAssertEqual(lstat(root + "/" + path, &status), 0, path)
        return UInt32(status.st_mode) & 0o7777
    }

    func testEveryFileReadsAsTheHostHasIt() throws {
        let (vfs, _, _, _) = try mount()
        for path in ["empty", "one KiB.bin", "nested/deeper/mebibyte.bin", "nested/grüße 😀.txt"] {
            XCTAssertEqual(try read(vfs, "/" + path), host(path), path)
            XCTAssertEqual(try vfs.stat(bytes("/" + path)).size, UInt64(host(path).count), path)
        }
        XCTAssertEqual(try read(vfs, "/inside"), host("nested/grüße 😀.txt"), "a symlink inside the share is followed")
        let names = try vfs.readdir(bytes("/nested")).map { String(decoding: $0.name, as: UTF8.self) }.sorted()
        XCTAssertEqual(names, ["deeper", "grüße 😀.txt"])
        XCTAssertEqual(try vfs.stat(bytes("/nested")).kind, .directory)
    }

    func testNothingOutsideTheShareIsReachable() throws {
        let (vfs, _, _, _) = try mount()
        for path in ["/escape", "/climb"] {
            XCTAssertThrowsError(try read(vfs, path), path) { error in
                let e = error as? FileSystemError
                XCTAssertTrue(e == .permissionDenied || e == .notFound, "\(path): \(error)")
            }
        }
        XCTAssertThrowsError(try vfs.open(bytes("/../secret.txt"), flags: .read)) // the VFS refuses to climb
    }

    func testWritesReachTheHost() throws {
        let (vfs, _, _, _) = try mount()
        let fd = try vfs.open(bytes("/new.txt"), flags: [.write, .create, .truncate])
        let payload = [UInt8]((0..<300_000).map { UInt8($0 % 253) })   // several WRITEs
        XCTAssertEqual(try vfs.write(fd, payload), payload.count)
        try vfs.close(fd)
        XCTAssertEqual(host("new.txt"), payload)
        try vfs.mkdir(bytes("/made"))
        try vfs.rename(bytes("/new.txt"), to: bytes("/made/moved.txt"))
        XCTAssertEqual(host("made/moved.txt"), payload)
        try vfs.truncate(bytes("/made/moved.txt"), size: 10)
        XCTAssertEqual(host("made/moved.txt"), Array(payload[..<10]))
        XCTAssertThrowsError(try vfs.rmdir(bytes("/made"))) { XCTAssertEqual($0 as? FileSystemError, .notEmpty) }
        try vfs.unlink(bytes("/made/moved.txt"))
        try vfs.rmdir(bytes("/made"))
        XCTAssertFalse(manager.fileExists(atPath: root + "/made"))
        XCTAssertThrowsError(try vfs.open(bytes("/one KiB.bin"), flags: [.write, .create, .exclusive])) {
            XCTAssertEqual($0 as? FileSystemError, .exists)
        }
        // Re-opening with truncate empties the file.
        let again = try vfs.open(bytes("/one KiB.bin"), flags: [.write, .truncate])
        try vfs.close(again)
        XCTAssertEqual(host("one KiB.bin"), [])
    }

    func testReadOnlyShareRefusesEveryWriteAndChangesNothing() throws {
        let before = try snapshot()
        let (vfs, _, _, _) = try mount(readOnly: true)
        XCTAssertEqual(try read(vfs, "/one KiB.bin"), host("one KiB.bin"))
        let attempts: [(String, () throws -> Void)] = [
            ("create", { _ = try vfs.open(self.bytes("/new"), flags: [.write, .create]) }),
            ("open for writing", { _ = try vfs.open(self.bytes("/one KiB.bin"), flags: .write) }),
            ("truncate", { try vfs.truncate(self.bytes("/one KiB.bin"), size: 0) }),
            ("mkdir", { try vfs.mkdir(self.bytes("/d")) }),
            ("unlink", { try vfs.unlink(self.bytes("/empty")) }),
            ("rmdir", { try vfs.rmdir(self.bytes("/nested/deeper")) }),
            ("rename", { try vfs.rename(self.bytes("/empty"), to: self.bytes("/renamed")) }),
        ]
        for (what, attempt) in attempts {
            XCTAssertThrowsError(try attempt(), what) { XCTAssertEqual($0 as? FileSystemError, .readOnly, what) }
        }
        XCTAssertEqual(try snapshot(), before)
    }

    func testTwoThousandRequestsLeaveNoDescriptorNodeOrHandleBehind() throws {
        let (vfs, fs, server, _) = try mount()
        _ = try read(vfs, "/nested/grüße 😀.txt")
        let descriptors = server.openDescriptorCount
        let nodes = server.nodeCount
        for i in 0..<2_000 {
            let path = ["/one KiB.bin", "/nested/grüße 😀.txt", "/inside", "/empty"][i % 4]
            _ = try read(vfs, path)
            _ = try vfs.stat(bytes(path))
            if i % 100 == 0 { _ = try vfs.readdir(bytes("/nested")) }
            if i % 50 == 0 { XCTAssertThrowsError(try vfs.stat(bytes("/nested/missing"))) }
            if i % 10 == 0 {
                // open with .create of a name that exists: its first LOOKUP is returned too.
                try vfs.close(try vfs.open(bytes("/nested/grüße 😀.txt"), flags: [.read, .write, .create]))
                XCTAssertThrowsError(try vfs.open(bytes("/empty"), flags: [.write, .create, .exclusive]))
            }
        }
        XCTAssertEqual(server.openDescriptorCount, descriptors)
        XCTAssertEqual(server.nodeCount, nodes)
        XCTAssertEqual(server.handleCount, 0)
        XCTAssertEqual(fs.openCount, 0)
        XCTAssertEqual(vfs.openCount, 0)
    }

    /// Every file's path and bytes, to prove a read-only run changed nothing.
    func snapshot() throws -> [String: [UInt8]] {
        var result: [String: [UInt8]] = [:]
        let enumerator = manager.enumerator(atPath: root)
        while let path = enumerator?.nextObject() as? String {
            result[path] = Array(manager.contents(atPath: root + "/" + path) ?? Data([0xFF]))
        }
        return result
    }

    /// fstat: a read-only handle answers from its LOOKUP, a writable one asks the host.
    func testHandleAttributes() throws {
        let (_, fs, _, _) = try mount()
        let reader = try fs.open(try VFSPath(parsing: bytes("/nested/deeper/mebibyte.bin")), flags: .read, mode: 0)
        XCTAssertEqual(try fs.attributes(reader).size, 1 << 20)
        XCTAssertEqual(try fs.attributes(reader).kind, .file)
        try fs.close(reader)
        XCTAssertThrowsError(try fs.attributes(reader)) { XCTAssertEqual($0 as? FileSystemError, .badDescriptor) }
        let writer = try fs.open(try VFSPath(parsing: bytes("/grown")), flags: [.write, .create], mode: 0o644)
        XCTAssertEqual(try fs.attributes(writer).size, 0)
        _ = try [UInt8](repeating: 7, count: 5000).withUnsafeBytes { try fs.write(writer, offset: 0, from: $0) }
        XCTAssertEqual(try fs.attributes(writer).size, 5000, "a writable handle reports the current size")
        try fs.close(writer)
        let folder = try fs.open(try VFSPath(parsing: bytes("/nested")), flags: .read, mode: 0)
        XCTAssertEqual(try fs.attributes(folder).kind, .directory)
        try fs.close(folder)
    }

    /// The guest's client asking for set-user-ID and set-group-ID bits through
    /// open(.create, mode:) gets a plain file (the server's side of the rule: FUSEServerHostSafetyTests).
    func testGuestCreateWithSetIDBitsMakesAPlainFile() throws {
        let (_, fs, _, _) = try mount()
        let handle = try fs.open(try VFSPath(parsing: bytes("/guest-made")), flags: [.write, .create], mode: 0o6755)
        try fs.close(handle)
        XCTAssertEqual(hostMode("guest-made"), 0o755)
    }

    /// The guest's client creating a name that is a FIFO on the host sees a refusal at once,
    /// not a hang (the server's side: FUSEServerHostSafetyTests). A watchdog opens the FIFO
    /// after 3 s, so a regression fails on time instead of hanging the suite.
    func testGuestCreateOfAHostFIFOIsRefusedAtOnce() throws {
        let fifo = root + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o666), 0)
        let watchdog = fifoWatchdog(fifo)
        defer { watchdog.cancel() }
        let (_, fs, server, _) = try mount()
        let start = Posix.monotonicNow()
        XCTAssertThrowsError(try fs.open(try VFSPath(parsing: bytes("/fifo")), flags: [.write, .create], mode: 0o644)) {
            XCTAssertEqual($0 as? FileSystemError, .permissionDenied)
        }
        XCTAssertLessThan(Posix.monotonicNow() - start, 1, "CREATE of a FIFO must not block")
        XCTAssertEqual(server.handleCount, 0)
    }

    /// A server holding its `--max-handles` answers EMFILE, which the guest's client reports
    /// as too many open files; closing one makes room (the server's side: FUSEServerLimitsTests).
    func testTheGuestSeesTooManyOpenFilesPastTheHandleCap() throws {
        for name in ["f1", "f2", "f3"] { try Data(name.utf8).write(to: URL(fileURLWithPath: root + "/" + name)) }
        let server = try FUSEServer(root: root, readOnly: false, limits: FUSEServerLimits(maxNodes: 100, maxHandles: 2))
        let fs = try FUSEFileSystem.mount(channel: InProcessChannel(server: server))
        let a = try fs.open(try VFSPath(parsing: Array("/f1".utf8)), flags: .read, mode: 0)
        let b = try fs.open(try VFSPath(parsing: Array("/f2".utf8)), flags: .read, mode: 0)
        XCTAssertThrowsError(try fs.open(try VFSPath(parsing: Array("/f3".utf8)), flags: .read, mode: 0)) {
            XCTAssertEqual($0 as? FileSystemError, .tooManyOpenFiles)
        }
        try fs.close(a)
        try fs.close(try fs.open(try VFSPath(parsing: Array("/f3".utf8)), flags: .read, mode: 0))
        try fs.close(b)
        XCTAssertEqual(server.handleCount, 0)
    }
}
