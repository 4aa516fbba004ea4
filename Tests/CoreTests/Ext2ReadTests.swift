// ext2 read side against images made by the real `mke2fs -d` (1 KiB and 4 KiB blocks,
// 256- and 128-byte inodes, revision 0 without `filetype`): every file and folder read
// back through the FileSystem API equals the source folder. An ext4 image is refused with
// its features named, its bytes unchanged.
import Foundation
import XCTest
@testable import Core

extension Ext2FileSystem {
    /// The whole file at `path`.
    func contents(_ path: String) throws -> [UInt8] {
        let handle = try open(vpath(path), flags: .read, mode: 0)
        defer { try? close(handle) }
        let size = Int(clamping: try attributes(handle).size)
        guard size <= 128 << 20 else { throw FileSystemError.tooLarge } // a damaged image's size
        var out = [UInt8](repeating: 0xAA, count: size)
        var done = 0
        while done < size {
            let count = try out.withUnsafeMutableBytes {
                try read(handle, offset: UInt64(done), into: UnsafeMutableRawBufferPointer(rebasing: $0[done..<min(size, done + 70_001)]))
            }
            XCTAssertGreaterThan(count, 0)
            if count == 0 { break }
            done += count
        }
        return out
    }

    /// Creates or replaces `path` with `bytes`, written in pieces of `chunk`.
    func put(_ path: String, _ bytes: [UInt8], chunk: Int = 65_536) throws {
        let handle = try open(vpath(path), flags: [.write, .create, .truncate], mode: 0o644)
        var done = 0
        while done < bytes.count {
            let end = min(bytes.count, done + chunk)
            let count = try bytes.withUnsafeBytes { try write(handle, offset: UInt64(done), from: UnsafeRawBufferPointer(rebasing: $0[done..<end])) }
            XCTAssertEqual(count, end - done)
            done = end
        }
        try close(handle)
    }

    /// Every file and folder below the root (no lost+found), as `E2fs.tree` gives them.
    func tree() throws -> [String: [UInt8]?] {
        var out: [String: [UInt8]?] = [:]
        var stack = [""]
        while let relative = stack.popLast() {
            for entry in try readDirectory(vpath("/" + relative)) {
                let name = String(decoding: entry.name, as: UTF8.self)
                if relative.isEmpty && name == "lost+found" { continue }
                let path = relative.isEmpty ? name : relative + "/" + name
                if entry.kind == .directory {
                    out[path] = .some(nil)
                    stack.append(path)
                } else {
                    out[path] = .some(try contents("/" + path))
                }
            }
        }
        return out
    }
}

final class Ext2ReadTests: XCTestCase {
    func checkRead(_ options: [String], name: String) throws {
        let folder = try E2fs.scratch(name)
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try E2fs.makeSource(at: source)
        let bytes = try E2fs.image(of: source, at: folder.appendingPathComponent("disk.img"), options: options)
        let device = MemoryBlockDevice(bytes: bytes, readOnly: true)
        let fs = try Ext2FileSystem.mount(device: device, cacheCapacity: 32, readOnly: true)
        let expected = try E2fs.tree(source)
        let found = try fs.tree()
        XCTAssertEqual(Set(found.keys), Set(expected.keys))
        for (path, contents) in expected where found[path] != contents {
            XCTFail("\(name): /\(path) differs")
        }
        XCTAssertEqual(try fs.readDirectory(vpath("/many")).count, 300)
        XCTAssertEqual(try fs.stat(vpath("/sparse")).size, (3 << 20) + 14)
        XCTAssertEqual(try fs.stat(vpath("/empty")).size, 0)
        XCTAssertEqual(try fs.stat(vpath("/a")).kind, .directory)
        XCTAssertEqual(try fs.contents("/" + E2fs.longName), Array("long name\n".utf8))
        assertFileSystemError(.notFound) { try fs.stat(vpath("/nothing")) }
        assertFileSystemError(.notADirectory) { try fs.stat(vpath("/big/x")) }
        assertFileSystemError(.readOnly) { try fs.makeDirectory(vpath("/new"), mode: 0o755) }
        let statistics = try fs.statFileSystem()
        XCTAssertEqual(Int(statistics.blockSize), fs.superblock.blockSize)
        XCTAssertGreaterThan(fs.cache.statistics.hits, 0)
        try fs.unmount()
        XCTAssertEqual(device.writes, 0)
        XCTAssertEqual(device.bytes, bytes)
    }

    func testOneKiBBlocks256ByteInodes() throws { try checkRead(["-b", "1024", "-I", "256"], name: "r1k") }
    func testFourKiBBlocks() throws { try checkRead(["-b", "4096"], name: "r4k") }
    func testTwoKiBBlocks128ByteInodes() throws { try checkRead(["-b", "2048", "-I", "128"], name: "r2k") }
    func testRevisionZero() throws { try checkRead(["-r", "0", "-b", "1024"], name: "rev0") }

    func testExt4IsRefusedWithItsFeaturesNamed() throws {
        let folder = try E2fs.scratch("ext4")
        defer { try? FileManager.default.removeItem(at: folder) }
        let image = folder.appendingPathComponent("ext4.img")
        let made = try E2fs.run("mke2fs", ["-q", "-F", "-t", "ext4", image.path, "16M"])
        XCTAssertEqual(made.status, 0, made.output)
        let bytes = [UInt8](try Data(contentsOf: image))
        let device = MemoryBlockDevice(bytes: bytes)
        for readOnly in [false, true] {
            do {
                _ = try Ext2FileSystem.mount(device: device, cacheCapacity: 16, readOnly: readOnly)
                XCTFail("ext4 mounted")
            } catch {
                guard case .incompatibleFeatures(let bits) = error else { return XCTFail("\(error)") }
                let line = String(decoding: error.message, as: UTF8.self)
                XCTAssertNotEqual(bits & 0x40, 0)
                XCTAssertTrue(line.contains("extent"), line)
                XCTAssertTrue(line.contains("64bit"), line)
                XCTAssertFalse(line.contains("filetype"), line)
            }
        }
        XCTAssertEqual(device.writes, 0)
        XCTAssertEqual(device.bytes, bytes)
    }

    func testUnknownReadOnlyFeatureMountsReadOnlyOnly() throws {
        let folder = try E2fs.scratch("rocompat")
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: source.appendingPathComponent("x"))
        var bytes = try E2fs.image(of: source, at: folder.appendingPathComponent("d.img"), options: ["-b", "1024"], megabytes: 2)
        bytes[1024 + 100] |= 0x20 // dir_nlink
        let device = MemoryBlockDevice(bytes: bytes)
        XCTAssertThrowsError(try Ext2FileSystem.mount(device: device, cacheCapacity: 8, readOnly: false)) { error in
            guard case .readOnlyFeatures(0x20)? = error as? Ext2MountError else { return XCTFail("\(error)") }
        }
        let fs = try Ext2FileSystem.mount(device: device, cacheCapacity: 8, readOnly: true)
        XCTAssertEqual(try fs.contents("/x"), Array("x".utf8))
        XCTAssertEqual(device.bytes, bytes)
    }
}
