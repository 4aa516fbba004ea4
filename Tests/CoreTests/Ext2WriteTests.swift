// ext2 write side: every change (create, extend, sparse writes up to triple-indirect
// blocks, truncate both ways, unlink, mkdir, rmdir, rename across folders of files and of a
// folder, rename over a file) made both through Ext2FileSystem and on a copy of the source
// folder; afterwards `e2fsck -fn` finds the image clean (exit 0, no "Fix?"), `debugfs
// rdump` extracts the copy's tree exactly, and a remount reads it back. A 2 MiB write
// through a 16-block cache leaves a clean file system too.
import Foundation
import XCTest
@testable import Core

final class Ext2WriteTests: XCTestCase {
    /// Applies each change to the mounted file system and to the host folder.
    struct Mirror {
        let fs: Ext2FileSystem
        let host: URL

        func url(_ path: String) -> URL { host.appendingPathComponent(String(path.dropFirst())) }

        func put(_ path: String, _ bytes: [UInt8]) throws {
            try fs.put(path, bytes)
            try Data(bytes).write(to: url(path))
        }

        func write(_ path: String, at offset: UInt64, _ bytes: [UInt8]) throws {
            let handle = try fs.open(vpath(path), flags: [.write, .create], mode: 0o644)
            XCTAssertEqual(try bytes.withUnsafeBytes { try fs.write(handle, offset: offset, from: $0) }, bytes.count)
            try fs.close(handle)
            if !FileManager.default.fileExists(atPath: url(path).path) {
                FileManager.default.createFile(atPath: url(path).path, contents: nil)
            }
            let file = try FileHandle(forWritingTo: url(path))
            try file.seek(toOffset: offset)
            file.write(Data(bytes))
            try file.close()
        }

        func truncate(_ path: String, _ size: UInt64) throws {
            try fs.truncate(vpath(path), size: size)
            let file = try FileHandle(forWritingTo: url(path))
            try file.truncate(atOffset: size)
            try file.close()
        }

        func remove(_ path: String) throws {
            try fs.remove(vpath(path))
            try FileManager.default.removeItem(at: url(path))
        }

        func mkdir(_ path: String) throws {
            try fs.makeDirectory(vpath(path), mode: 0o755)
            try FileManager.default.createDirectory(at: url(path), withIntermediateDirectories: false)
        }

        func rmdir(_ path: String) throws {
            try fs.removeDirectory(vpath(path))
            try FileManager.default.removeItem(at: url(path))
        }

        func rename(_ from: String, _ to: String) throws {
            try fs.rename(from: vpath(from), to: vpath(to))
            XCTAssertEqual(Foundation.rename(url(from).path, url(to).path), 0)
        }
    }

    func checkWrites(_ options: [String], name: String, indexDirectories: Bool = false) throws {
        let folder = try E2fs.scratch(name)
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try E2fs.makeSource(at: source)
        let image = folder.appendingPathComponent("disk.img")
        var bytes = try E2fs.image(of: source, at: image, options: options, megabytes: 16)
        if indexDirectories {
            // e2fsck -D builds hashed (htree) indexes for the large folders.
            XCTAssertLessThanOrEqual(try E2fs.run("e2fsck", ["-fyD", image.path]).status, 1)
            bytes = [UInt8](try Data(contentsOf: image))
        }
        let device = MemoryBlockDevice(bytes: bytes)
        let fs = try Ext2FileSystem.mount(device: device, cacheCapacity: 64, readOnly: false)
        let indexed = try fs.resolve(vpath("/many")).inode.flags & Ext2Inode.indexFlag != 0
        XCTAssertEqual(indexed, indexDirectories)
        let mirror = Mirror(fs: fs, host: source)

        try mirror.put("/new.txt", E2fs.pattern(10_000, seed: 3))
        try mirror.write("/a/five-k", at: 5000, E2fs.pattern(3000, seed: 4))
        try mirror.truncate("/big", 1000)
        try mirror.truncate("/empty", 70_000)
        try mirror.write("/sparse", at: 1 << 20, E2fs.pattern(5000, seed: 5))
        try mirror.write("/far", at: 67_500_000, Array("triple indirect\n".utf8))
        try mirror.write("/far2", at: 67_500_000, E2fs.pattern(9000, seed: 6))
        try mirror.truncate("/far2", 10)
        for index in stride(from: 0, to: 300, by: 2) { try mirror.remove(String(format: "/many/file-%03d", index)) }
        for index in 0..<40 { try mirror.put(String(format: "/many/new-%03d-", index) + String(repeating: "x", count: index), [UInt8(index)]) }
        try mirror.mkdir("/d1")
        try mirror.mkdir("/d1/d2")
        try mirror.put("/d1/d2/f", Array("in d2\n".utf8))
        try mirror.rmdir("/gone")
        try mirror.rename("/a/b/c/deep.txt", "/d1/deep.txt")
        try mirror.rename("/a/b", "/d1/d2/b")
        try mirror.rename("/a/five-k", "/d1/deep.txt")
        try mirror.rename("/new.txt", "/renamed.txt")
        try mirror.mkdir("/empty-dir")
        try mirror.mkdir("/d1/over")
        try mirror.rename("/empty-dir", "/d1/over")

        assertFileSystemError(.exists) { try fs.makeDirectory(vpath("/d1"), mode: 0o755) }
        assertFileSystemError(.notEmpty) { try fs.removeDirectory(vpath("/d1")) }
        assertFileSystemError(.isADirectory) { try fs.remove(vpath("/d1")) }
        assertFileSystemError(.invalidPath) { try fs.rename(from: vpath("/d1"), to: vpath("/d1/d2/x")) }
        assertFileSystemError(.notADirectory) { try fs.rename(from: vpath("/d1"), to: vpath("/renamed.txt")) }

        // Unlinked while open: readable until closed, freed at close.
        let held = try fs.open(vpath("/renamed.txt"), flags: .read, mode: 0)
        try fs.put("/doomed", E2fs.pattern(3000, seed: 7))
        let doomed = try fs.open(vpath("/doomed"), flags: .read, mode: 0)
        try fs.remove(vpath("/doomed"))
        var three = [UInt8](repeating: 0, count: 3000)
        XCTAssertEqual(try three.withUnsafeMutableBytes { try fs.read(doomed, offset: 0, into: $0) }, 3000)
        XCTAssertEqual(three, E2fs.pattern(3000, seed: 7))
        try fs.close(doomed)
        try fs.close(held)

        let expected = try E2fs.tree(source)
        XCTAssertEqual(try fs.tree() == expected, true, "tree before unmount")
        XCTAssertEqual(try fs.resolve(vpath("/many")).inode.flags & Ext2Inode.indexFlag, 0, "index flag cleared")
        try fs.sync()
        try fs.unmount()
        XCTAssertEqual(fs.cache.heldCount, 0)
        try Data(device.bytes).write(to: image)
        try E2fs.assertClean(image)

        let out = folder.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let dump = try E2fs.run("debugfs", ["-R", "rdump / \(out.path)", image.path])
        XCTAssertEqual(dump.status, 0, dump.output)
        var dumped = try E2fs.tree(out)
        dumped = dumped.filter { !$0.key.hasPrefix("lost+found") }
        XCTAssertEqual(Set(dumped.keys), Set(expected.keys))
        for (path, contents) in expected where dumped[path] != contents { XCTFail("rdump: /\(path) differs") }

        let again = try Ext2FileSystem.mount(device: device, cacheCapacity: 16, readOnly: true)
        XCTAssertEqual(try again.tree() == expected, true, "tree after remount")
    }

    func testWritesOneKiBBlocks() throws { try checkWrites(["-b", "1024", "-I", "256"], name: "w1k") }
    func testWritesFourKiBBlocks() throws { try checkWrites(["-b", "4096"], name: "w4k") }
    func testWritesHashedDirectories() throws { try checkWrites(["-b", "1024"], name: "wdx", indexDirectories: true) }
    func testWritesRevisionZero() throws { try checkWrites(["-r", "0", "-b", "1024"], name: "w0") }

    func testTwoMiBThroughSixteenBlockCache() throws {
        let folder = try E2fs.scratch("w2m")
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        let image = folder.appendingPathComponent("disk.img")
        let device = MemoryBlockDevice(bytes: try E2fs.image(of: source, at: image, options: ["-b", "1024"], megabytes: 8))
        let fs = try Ext2FileSystem.mount(device: device, cacheCapacity: 16, readOnly: false)
        let data = E2fs.pattern(2 << 20, seed: 9)
        try fs.put("/two-mib", data, chunk: 10_000)
        XCTAssertGreaterThan(fs.cache.statistics.dirtyEvictions, 0)
        XCTAssertEqual(try fs.contents("/two-mib"), data)
        try fs.unmount()
        XCTAssertGreaterThan(device.flushes, 0)
        try Data(device.bytes).write(to: image)
        try E2fs.assertClean(image)
        let again = try Ext2FileSystem.mount(device: device, cacheCapacity: 16, readOnly: false)
        XCTAssertEqual(try again.contents("/two-mib"), data)
        try again.remove(vpath("/two-mib"))
        try again.unmount()
        try Data(device.bytes).write(to: image)
        try E2fs.assertClean(image)
    }

    func testMountStateFlag() throws {
        let folder = try E2fs.scratch("state")
        defer { try? FileManager.default.removeItem(at: folder) }
        let image = folder.appendingPathComponent("disk.img")
        let device = MemoryBlockDevice(bytes: try E2fs.image(of: folder, at: image, options: ["-b", "1024"], megabytes: 2))
        func state() -> UInt16 { UInt16(device.bytes[1024 + 58]) | UInt16(device.bytes[1024 + 59]) << 8 }
        XCTAssertEqual(state() & 1, 1)
        let fs = try Ext2FileSystem.mount(device: device, cacheCapacity: 8, readOnly: false)
        XCTAssertEqual(state() & 1, 0, "not clean while mounted")
        try fs.sync()
        XCTAssertEqual(state() & 1, 0)
        XCTAssertThrowsError(try Ext2FileSystem.mount(device: device, cacheCapacity: 8, readOnly: false)) { error in
            XCTAssertEqual(String(describing: error), "notClean")
        }
        try fs.unmount()
        XCTAssertEqual(state() & 1, 1, "clean after unmount")
        assertFileSystemError(.io) { try fs.stat(.root) }
    }
}

/// ext2 behind the VFS, as a service would use it: descriptors, seeks, sync.
final class Ext2VFSTests: XCTestCase {
    func testThroughTheVFS() throws {
        let folder = try E2fs.scratch("vfs")
        defer { try? FileManager.default.removeItem(at: folder) }
        let image = folder.appendingPathComponent("disk.img")
        let source = folder.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        let device = MemoryBlockDevice(bytes: try E2fs.image(of: source, at: image, options: ["-b", "4096"], megabytes: 4))
        let fs = try Ext2FileSystem.mount(device: device, cacheCapacity: 16, readOnly: false)
        let vfs = VFS()
        try vfs.mount(fs)
        try vfs.mkdir(Array("/logs".utf8))
        let fd = try vfs.open(Array("/logs/day".utf8), flags: [.read, .write, .create])
        XCTAssertEqual(try vfs.write(fd, Array("first line\n".utf8)), 11)
        XCTAssertEqual(try vfs.write(fd, Array("second line\n".utf8)), 12)
        XCTAssertEqual(try vfs.seek(fd, offset: 0, from: .start), 0)
        XCTAssertEqual(try vfs.read(fd, count: 100), Array("first line\nsecond line\n".utf8))
        XCTAssertEqual(try vfs.fstat(fd).size, 23)
        let handle = try fs.open(vpath("/logs/day"), flags: .readWrite, mode: 0)
        assertFileSystemError(.tooLarge) { try [1, 2].withUnsafeBytes { try fs.write(handle, offset: UInt64.max - 1, from: $0) } }
        assertFileSystemError(.tooLarge) { try fs.truncate(vpath("/logs/day"), size: UInt64.max) }
        try fs.close(handle)
        try vfs.close(fd)
        try vfs.rename(Array("/logs/day".utf8), to: Array("/day".utf8))
        XCTAssertEqual(try vfs.readdir(Array("/".utf8)).map { String(decoding: $0.name, as: UTF8.self) }.sorted(),
                       ["day", "logs", "lost+found"])
        let flushes = device.flushes
        try vfs.sync()
        XCTAssertGreaterThan(device.flushes, flushes)
        _ = vfs.unmount()
        try fs.unmount()
        try Data(device.bytes).write(to: image)
        try E2fs.assertClean(image)
    }

    /// A file closed after writing is on the disk (superblock counts too) before any unmount,
    /// and a writer that keeps writing syncs once `syncIntervalSeconds` have passed.
    func testCloseAfterWritingAndPeriodicWritesReachTheDisk() throws {
        let folder = try E2fs.scratch("wsync")
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        let image = folder.appendingPathComponent("disk.img")
        let device = MemoryBlockDevice(bytes: try E2fs.image(of: source, at: image, options: ["-b", "1024"], megabytes: 2))
        var clock: UInt64 = 1000
        let fs = try Ext2FileSystem.mount(device: device, cacheCapacity: 64, readOnly: false, clock: { clock })
        let data = E2fs.pattern(5000, seed: 3)
        let handle = try fs.open(vpath("/closed"), flags: [.write, .create], mode: 0o644)
        _ = try data.withUnsafeBytes { try fs.write(handle, offset: 0, from: $0) }
        let flushesBefore = device.flushes
        try fs.close(handle)
        XCTAssertGreaterThan(device.flushes, flushesBefore, "the close synced and flushed")
        // The disk as it is now, without unmounting: a fresh mount read-only sees the file.
        let copy = MemoryBlockDevice(bytes: device.bytes, readOnly: true)
        let reader = try Ext2FileSystem.mount(device: copy, cacheCapacity: 16, readOnly: true)
        XCTAssertEqual(try reader.contents("/closed"), data)

        // A writer that never closes: nothing synced within the interval, a sync after it.
        let open = try fs.open(vpath("/open"), flags: [.write, .create], mode: 0o644)
        let writesBefore = device.writes
        clock += 1
        _ = try data.withUnsafeBytes { try fs.write(open, offset: 0, from: $0) }
        XCTAssertEqual(device.writes, writesBefore, "within the interval the blocks wait in the cache")
        clock += fs.syncIntervalSeconds
        _ = try data.withUnsafeBytes { try fs.write(open, offset: 5000, from: $0) }
        XCTAssertGreaterThan(device.writes, writesBefore, "past the interval the write synced")
        try fs.close(open)
        try fs.unmount()
        try Data(device.bytes).write(to: image)
        try E2fs.assertClean(image)
    }
}

extension Ext2WriteTests {
    /// A listing past `maximumListing` entries is refused with `.tooLarge`, not built.
    func testAListingPastItsBoundIsRefused() throws {
        let folder = try E2fs.scratch("wlist")
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: source.appendingPathComponent("many"), withIntermediateDirectories: true)
        for i in 0 ..< 40 {
            try Data("x".utf8).write(to: source.appendingPathComponent("many/f\(i)"))
        }
        let image = folder.appendingPathComponent("disk.img")
        let device = MemoryBlockDevice(bytes: try E2fs.image(of: source, at: image, options: ["-b", "1024"], megabytes: 2),
                                       readOnly: true)
        let fs = try Ext2FileSystem.mount(device: device, cacheCapacity: 16, readOnly: true)
        XCTAssertEqual(try fs.readDirectory(vpath("/many")).count, 40)
        fs.maximumListing = 40
        XCTAssertEqual(try fs.readDirectory(vpath("/many")).count, 40, "exactly at the bound")
        fs.maximumListing = 39
        XCTAssertThrowsError(try fs.readDirectory(vpath("/many"))) { XCTAssertEqual($0 as? FileSystemError, .tooLarge) }
        XCTAssertEqual(try fs.readDirectory(vpath("/")).count, 2, "a small folder still lists")
    }

    /// Every change to the tree reaches the disk before the call returns (kv's SAVE writes
    /// kv.db.tmp, closes it and renames it over kv.db: the machine may stop right after).
    func testTreeChangesReachTheDiskAtOnce() throws {
        let folder = try E2fs.scratch("wdirsync")
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try Data("old".utf8).write(to: source.appendingPathComponent("kv.db"))
        try Data("gone".utf8).write(to: source.appendingPathComponent("stale"))
        let image = folder.appendingPathComponent("disk.img")
        let device = MemoryBlockDevice(bytes: try E2fs.image(of: source, at: image, options: ["-b", "1024"], megabytes: 2))
        let fs = try Ext2FileSystem.mount(device: device, cacheCapacity: 64, readOnly: false, clock: { 1000 })
        let handle = try fs.open(vpath("/kv.db.tmp"), flags: [.write, .create], mode: 0o644)
        _ = try Array("new".utf8).withUnsafeBytes { try fs.write(handle, offset: 0, from: $0) }
        try fs.close(handle)
        try fs.rename(from: vpath("/kv.db.tmp"), to: vpath("/kv.db"))
        try fs.makeDirectory(vpath("/made"), mode: 0o755)
        try fs.remove(vpath("/stale"))
        // The disk as it is now, without a sync or an unmount.
        let reader = try Ext2FileSystem.mount(device: MemoryBlockDevice(bytes: device.bytes, readOnly: true),
                                              cacheCapacity: 16, readOnly: true)
        XCTAssertEqual(try reader.contents("/kv.db"), Array("new".utf8))
        XCTAssertEqual(try reader.readDirectory(vpath("/")).map { String(decoding: $0.name, as: UTF8.self) }.sorted(),
                       ["kv.db", "lost+found", "made"])
        try fs.unmount()
    }
}
