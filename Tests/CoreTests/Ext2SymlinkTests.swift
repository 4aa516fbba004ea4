// ext2 symlinks against images made by the real `mke2fs -d` from a folder of links (1 KiB
// and 4 KiB blocks): path lookup follows them (Ext2PathLookup.swift) in the same folder,
// into a subfolder, from the root (absolute), through a link to a folder, along a chain of
// 40 and a slow (block-held) target; stat, open, truncate and readDirectory see the target;
// remove and rename act on the link. Refused: a loop, a chain of 41, `..` above the root,
// a dangling link (and creating through one), targets that are empty, hold a NUL or are too
// long, and a path grown past 4096 bytes by nested targets. Changes leave `e2fsck -fn` clean.
import Foundation
import XCTest
@testable import Core

final class Ext2SymlinkTests: XCTestCase {
    /// A folder of files and links:
    ///
    ///   one.txt  sub/two.txt  sub/deeper/three.txt
    ///   same -> one.txt            into-sub -> sub/two.txt     absolute -> /sub/two.txt
    ///   dirlink -> sub             sub/up -> ../one.txt        sub/root -> ..
    ///   phys -> dirlink/deeper/..  (physical `..`: sub)
    ///   slow -> ./ x 50 + sub/two.txt   (111 bytes: kept in a data block)
    ///   n00 -> n01 -> ... -> n40 -> one.txt   (n01: 40 links; n00: 41)
    ///   loop-a -> loop-b -> loop-a   self -> self
    ///   escape -> ../outside.txt   sub/escape -> ../../outside.txt   root-escape -> /../one.txt
    ///   escape-dir -> ..           dangling -> missing.txt   file-as-dir -> one.txt/x
    ///   w0 -> w1/PAD ... w4 -> w5/PAD, w5 -> .   (PAD: `/sub/..` x 128: 898-byte targets)
    static func makeSource(at root: URL) throws {
        let fm = FileManager.default
        func file(_ path: String, _ text: String) throws {
            try Data(text.utf8).write(to: root.appendingPathComponent(path))
        }
        func link(_ path: String, _ target: String) throws {
            try fm.createSymbolicLink(atPath: root.appendingPathComponent(path).path, withDestinationPath: target)
        }
        try fm.createDirectory(at: root.appendingPathComponent("sub/deeper"), withIntermediateDirectories: true)
        try file("one.txt", "one\n")
        try file("sub/two.txt", "two\n")
        try file("sub/deeper/three.txt", "three\n")
        try link("same", "one.txt")
        try link("into-sub", "sub/two.txt")
        try link("absolute", "/sub/two.txt")
        try link("dirlink", "sub")
        try link("sub/up", "../one.txt")
        try link("sub/root", "..")
        try link("phys", "dirlink/deeper/..")
        try link("slow", String(repeating: "./", count: 50) + "sub/two.txt")
        for index in 0..<40 { try link(String(format: "n%02d", index), String(format: "n%02d", index + 1)) }
        try link("n40", "one.txt")
        try link("loop-a", "loop-b")
        try link("loop-b", "loop-a")
        try link("self", "self")
        try link("escape", "../outside.txt")
        try link("sub/escape", "../../outside.txt")
        try link("root-escape", "/../one.txt")
        try link("escape-dir", "..")
        try link("dangling", "missing.txt")
        try link("file-as-dir", "one.txt/x")
        let pad = String(repeating: "/sub/..", count: 128)
        for index in 0..<5 { try link("w\(index)", "w\(index + 1)" + pad) }
        try link("w5", ".")
    }

    /// A mounted image of `makeSource`, and the image's path (for e2fsck).
    func mounted(_ options: [String], name: String) throws -> (fs: Ext2FileSystem, device: MemoryBlockDevice, image: URL, folder: URL) {
        let folder = try E2fs.scratch(name)
        let source = folder.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try Self.makeSource(at: source)
        let image = folder.appendingPathComponent("disk.img")
        let device = MemoryBlockDevice(bytes: try E2fs.image(of: source, at: image, options: options, megabytes: 4))
        let fs = try Ext2FileSystem.mount(device: device, cacheCapacity: 32, readOnly: false, clock: { 1000 })
        return (fs, device, image, folder)
    }

    let one = Array("one\n".utf8), two = Array("two\n".utf8), three = Array("three\n".utf8)

    func checkFollowing(_ options: [String], name: String) throws {
        let (fs, _, _, folder) = try mounted(options, name: name)
        defer { try? FileManager.default.removeItem(at: folder) }
        // Same folder, a subfolder, absolute, `..` inside, a folder, physical `..`, slow.
        XCTAssertEqual(try fs.contents("/same"), one)
        XCTAssertEqual(try fs.stat(vpath("/same")), try fs.stat(vpath("/one.txt")))
        XCTAssertEqual(try fs.contents("/into-sub"), two)
        XCTAssertEqual(try fs.contents("/absolute"), two)
        XCTAssertEqual(try fs.contents("/sub/up"), one)
        XCTAssertEqual(try fs.contents("/sub/root/one.txt"), one)
        XCTAssertEqual(try fs.contents("/dirlink/two.txt"), two)
        XCTAssertEqual(try fs.contents("/dirlink/deeper/three.txt"), three)
        XCTAssertEqual(try fs.stat(vpath("/dirlink")).kind, .directory)
        XCTAssertEqual(try fs.contents("/phys/two.txt"), two)
        XCTAssertEqual(try fs.contents("/slow"), two)
        let slow = try fs.resolve(vpath("/slow"), followLast: false).inode
        XCTAssertEqual(slow.kind, .symlink)
        XCTAssertFalse(slow.isFastSymlink(sectorsPerBlock: fs.sectorsPerBlock), "the long target is in a block")
        XCTAssertTrue(try fs.resolve(vpath("/same"), followLast: false).inode.isFastSymlink(sectorsPerBlock: fs.sectorsPerBlock))
        // A chain of 40 links is followed; 41 is refused, as a loop is.
        XCTAssertEqual(try fs.contents("/n01"), one)
        assertFileSystemError(.permissionDenied) { try fs.stat(vpath("/n00")) }
        assertFileSystemError(.permissionDenied) { try fs.stat(vpath("/loop-a")) }
        assertFileSystemError(.permissionDenied) { try fs.open(vpath("/self"), flags: .read, mode: 0) }
        assertFileSystemError(.permissionDenied) { try fs.readDirectory(vpath("/loop-b")) }
        // Never above the root, however it is tried.
        for path in ["/escape", "/sub/escape", "/root-escape", "/escape-dir", "/escape-dir/one.txt", "/dirlink/escape"] {
            assertFileSystemError(.permissionDenied) { try fs.stat(vpath(path)) }
            assertFileSystemError(.permissionDenied) { try fs.open(vpath(path), flags: .read, mode: 0) }
        }
        // Dangling, a file used as a folder.
        assertFileSystemError(.notFound) { try fs.stat(vpath("/dangling")) }
        assertFileSystemError(.notFound) { try fs.open(vpath("/dangling"), flags: .read, mode: 0) }
        assertFileSystemError(.notADirectory) { try fs.stat(vpath("/file-as-dir")) }
        assertFileSystemError(.notADirectory) { try fs.stat(vpath("/same/x")) }
        // Nested targets: four 898-byte ones pending at once fit 4096 bytes, five do not.
        XCTAssertEqual(try fs.contents("/w1/one.txt"), one)
        assertFileSystemError(.nameTooLong) { try fs.stat(vpath("/w0/one.txt")) }
        // readDirectory follows a link to a folder; a listing shows links as links.
        let names = { (path: String) in try fs.readDirectory(vpath(path)).map { String(decoding: $0.name, as: UTF8.self) }.sorted() }
        XCTAssertEqual(try names("/dirlink"), try names("/sub"))
        XCTAssertEqual(try names("/sub/root"), try names("/"))
        let kinds = Dictionary(uniqueKeysWithValues: try fs.readDirectory(.root).map { (String(decoding: $0.name, as: UTF8.self), $0.kind) })
        XCTAssertEqual(kinds["same"], .symlink)
        XCTAssertEqual(kinds["dirlink"], .symlink)
        XCTAssertEqual(kinds["slow"], .symlink)
        XCTAssertEqual(kinds["one.txt"], .file)
        assertFileSystemError(.notADirectory) { try fs.readDirectory(vpath("/same")) }
        XCTAssertEqual(fs.cache.heldCount, 0, "no lookup left a cache buffer held")
        try fs.unmount()
    }

    func testFollowingOneKiBBlocks() throws { try checkFollowing(["-b", "1024"], name: "link1k") }
    func testFollowingFourKiBBlocks() throws { try checkFollowing(["-b", "4096"], name: "link4k") }

    /// Writes go to the target; creating through a dangling link is refused; remove,
    /// rename, mkdir and rmdir act on the link itself. The image stays clean.
    func testChangesActOnTheRightInode() throws {
        let (fs, device, image, folder) = try mounted(["-b", "1024"], name: "linkwrite")
        defer { try? FileManager.default.removeItem(at: folder) }
        // Through a link: open for writing (with create and truncate), truncate.
        try fs.put("/same", Array("ONE\n".utf8))
        XCTAssertEqual(try fs.contents("/one.txt"), Array("ONE\n".utf8))
        try fs.put("/dirlink/made.txt", Array("made\n".utf8))
        XCTAssertEqual(try fs.contents("/sub/made.txt"), Array("made\n".utf8))
        try fs.truncate(vpath("/into-sub"), size: 2)
        XCTAssertEqual(try fs.contents("/sub/two.txt"), Array("tw".utf8))
        assertFileSystemError(.exists) { try fs.open(vpath("/same"), flags: [.write, .create, .exclusive], mode: 0o644) }
        // Dangling: never created through.
        assertFileSystemError(.permissionDenied) { try fs.open(vpath("/dangling"), flags: [.write, .create], mode: 0o644) }
        assertFileSystemError(.exists) { try fs.open(vpath("/dangling"), flags: [.write, .create, .exclusive], mode: 0o644) }
        assertFileSystemError(.notFound) { try fs.stat(vpath("/missing.txt")) }
        assertFileSystemError(.exists) { try fs.makeDirectory(vpath("/dangling"), mode: 0o755) }
        assertFileSystemError(.notADirectory) { try fs.removeDirectory(vpath("/dirlink")) }
        // Remove and rename the link, not its target.
        try fs.remove(vpath("/same"))
        assertFileSystemError(.notFound) { try fs.resolve(vpath("/same"), followLast: false) }
        XCTAssertEqual(try fs.contents("/one.txt"), Array("ONE\n".utf8))
        try fs.rename(from: vpath("/into-sub"), to: vpath("/sub/deeper/renamed"))
        XCTAssertEqual(try fs.resolve(vpath("/sub/deeper/renamed"), followLast: false).inode.kind, .symlink)
        assertFileSystemError(.notFound) { try fs.stat(vpath("/sub/deeper/renamed")) } // sub/two.txt from sub/deeper
        XCTAssertEqual(try fs.contents("/sub/two.txt"), Array("tw".utf8))
        try fs.rename(from: vpath("/slow"), to: vpath("/one.txt"))
        XCTAssertEqual(try fs.contents("/one.txt"), Array("tw".utf8), "one.txt is now the slow link")
        try fs.remove(vpath("/dangling"))
        try fs.remove(vpath("/dirlink/up"))
        try fs.remove(vpath("/n00"))
        // A folder cannot be moved under itself through a link.
        assertFileSystemError(.invalidPath) { try fs.rename(from: vpath("/sub"), to: vpath("/dirlink/deeper/x")) }
        assertFileSystemError(.invalidPath) { try fs.rename(from: vpath("/sub"), to: vpath("/phys/x")) }
        try fs.rename(from: vpath("/dirlink"), to: vpath("/sub/deeper/back"))   // the link moves, not sub
        XCTAssertEqual(try fs.stat(vpath("/sub")).kind, .directory)
        XCTAssertEqual(try fs.resolve(vpath("/sub/deeper/back"), followLast: false).inode.kind, .symlink)
        assertFileSystemError(.notFound) { try fs.stat(vpath("/sub/deeper/back")) } // `sub` from sub/deeper
        try fs.unmount()
        try Data(device.bytes).write(to: image)
        try E2fs.assertClean(image)
    }

    /// Removing a fast link (target in the inode) and a slow one (in a block) frees what
    /// each held.
    func testRemovingFastAndSlowLinksFreesTheirBlocks() throws {
        let (fs, device, image, folder) = try mounted(["-b", "1024"], name: "linkfree")
        defer { try? FileManager.default.removeItem(at: folder) }
        let free = try fs.statFileSystem().freeBlocks
        try fs.remove(vpath("/same"))
        try fs.remove(vpath("/slow"))
        XCTAssertEqual(try fs.statFileSystem().freeBlocks, free + 1, "the slow link's block is freed")
        try fs.unmount()
        try Data(device.bytes).write(to: image)
        try E2fs.assertClean(image)
    }

    /// A damaged link (a hostile image): an empty target, one holding a NUL, one longer
    /// than a block, a fast one claiming 60 bytes or more.
    func testDamagedTargetsAreRefused() throws {
        let (fs, _, _, folder) = try mounted(["-b", "1024"], name: "linkbad")
        defer { try? FileManager.default.removeItem(at: folder) }
        func damage(_ path: String, _ change: (inout Ext2Inode) -> Void) throws {
            let (number, found) = try fs.resolve(vpath(path), followLast: false)
            var inode = found
            change(&inode)
            try fs.writeInode(number, inode)
        }
        try damage("/same") { $0.size = 0 }
        assertFileSystemError(.invalidPath) { try fs.stat(vpath("/same")) }
        try damage("/into-sub") { $0.block[1] &= 0xFFFF_00FF }   // "sub/two.txt": byte 5, `w`, becomes NUL
        assertFileSystemError(.invalidPath) { try fs.open(vpath("/into-sub"), flags: .read, mode: 0) }
        try damage("/slow") { $0.size = 1025 }
        assertFileSystemError(.invalidPath) { try fs.stat(vpath("/slow")) }
        try damage("/absolute") { $0.size = 60 }
        assertFileSystemError(.io) { try fs.stat(vpath("/absolute")) }
        // Through a folder too; the intact links still work.
        assertFileSystemError(.invalidPath) { try fs.stat(vpath("/same/x")) }
        XCTAssertEqual(try fs.contents("/dirlink/two.txt"), two)
        XCTAssertEqual(fs.cache.heldCount, 0, "no refusal left a cache buffer held")
        try fs.unmount()
    }
}
