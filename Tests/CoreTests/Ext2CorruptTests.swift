// ext2 against damaged images: a truncated image, a garbage superblock, a directory block
// with rec_len 0, an indirect block pointing at itself, random bytes over the metadata.
// Each gives a mount error or `FileSystemError.io`: never a trap, never a hang.
import Foundation
import XCTest
@testable import Core
import TestSupport

final class Ext2CorruptTests: XCTestCase {
    /// A small 1 KiB-block image of the standard source folder.
    func makeImage(_ name: String) throws -> [UInt8] {
        let folder = try E2fs.scratch(name)
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("src")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try E2fs.makeSource(at: source)
        return try E2fs.image(of: source, at: folder.appendingPathComponent("disk.img"), options: ["-b", "1024"], megabytes: 8)
    }

    func testTruncatedImage() throws {
        let bytes = try makeImage("trunc")
        for size in [0, 1536, 4096, bytes.count / 2] {
            let device = MemoryBlockDevice(bytes: Array(bytes[0..<size]))
            XCTAssertThrowsError(try Ext2FileSystem.mount(device: device, cacheCapacity: 8, readOnly: true), "size \(size)")
        }
    }

    func testGarbageSuperblock() throws {
        let bytes = try makeImage("garbage")
        var rng = RNG(seed: 11)
        for round in 0..<200 {
            var damaged = bytes
            for index in 1024..<2048 where round == 0 || rng.below(8) == 0 { damaged[index] = UInt8(truncatingIfNeeded: rng.next()) }
            if round > 0 { damaged[1024 + 56] = 0x53; damaged[1024 + 57] = 0xEF }
            let device = MemoryBlockDevice(bytes: damaged)
            if let fs = try? Ext2FileSystem.mount(device: device, cacheCapacity: 8, readOnly: true) {
                _ = try? fs.tree()
            }
        }
        var noMagic = bytes
        noMagic[1024 + 56] = 0
        XCTAssertThrowsError(try Ext2FileSystem.mount(device: MemoryBlockDevice(bytes: noMagic), cacheCapacity: 8, readOnly: true)) { error in
            XCTAssertEqual(String(describing: error), "notExt2")
        }
    }

    /// The inode and first data block of `path` in `bytes`.
    func locate(_ path: String, in bytes: [UInt8]) throws -> (inode: Ext2Inode, blockSize: Int) {
        let fs = try Ext2FileSystem.mount(device: MemoryBlockDevice(bytes: bytes), cacheCapacity: 8, readOnly: true)
        return (try fs.resolve(vpath(path)).inode, fs.superblock.blockSize)
    }

    func testDirectoryRecordLengthZero() throws {
        var bytes = try makeImage("reclen")
        let (directory, size) = try locate("/a", in: bytes)
        let at = Int(directory.block[0]) * size
        bytes[at + 4] = 0
        bytes[at + 5] = 0
        let fs = try Ext2FileSystem.mount(device: MemoryBlockDevice(bytes: bytes), cacheCapacity: 8, readOnly: false)
        assertFileSystemError(.io) { try fs.readDirectory(vpath("/a")) }
        assertFileSystemError(.io) { try fs.stat(vpath("/a/five-k")) }
        assertFileSystemError(.io) { try fs.makeDirectory(vpath("/a/new"), mode: 0o755) }
        XCTAssertEqual(try fs.readDirectory(vpath("/")).count > 0, true)
    }

    func testIndirectBlockPointingAtItself() throws {
        var bytes = try makeImage("cycle")
        let (file, size) = try locate("/big", in: bytes)
        let single = Int(file.block[12]), double = Int(file.block[13])
        for index in 0..<size / 4 {
            for (block, value) in [(single, single), (double, double)] {
                let at = block * size + index * 4
                bytes[at] = UInt8(value & 0xFF)
                bytes[at + 1] = UInt8(value >> 8 & 0xFF)
                bytes[at + 2] = UInt8(value >> 16 & 0xFF)
                bytes[at + 3] = 0
            }
        }
        let fs = try Ext2FileSystem.mount(device: MemoryBlockDevice(bytes: bytes), cacheCapacity: 8, readOnly: false)
        XCTAssertEqual(try fs.contents("/big").count, 400_000)
        assertFileSystemError(.io) { try fs.remove(vpath("/big")) }
    }

    func testPointerOutsideTheFileSystem() throws {
        var bytes = try makeImage("outside")
        let (file, size) = try locate("/a/five-k", in: bytes)
        // Point the first data block past the end: reading it is io.
        let fs0 = try Ext2FileSystem.mount(device: MemoryBlockDevice(bytes: bytes), cacheCapacity: 8, readOnly: true)
        let (number, _) = try fs0.resolve(vpath("/a/five-k"))
        let (block, offset) = try fs0.location(of: number)
        let at = Int(block) * size + offset + 40
        bytes[at] = 0xFF; bytes[at + 1] = 0xFF; bytes[at + 2] = 0xFF; bytes[at + 3] = 0x7F
        XCTAssertNotEqual(file.block[0], 0)
        let fs = try Ext2FileSystem.mount(device: MemoryBlockDevice(bytes: bytes), cacheCapacity: 8, readOnly: true)
        assertFileSystemError(.io) { try fs.contents("/a/five-k") }
    }

    func testRandomMetadataDamage() throws {
        let bytes = try makeImage("random")
        var rng = RNG(seed: 12)
        for _ in 0..<60 {
            var damaged = bytes
            for _ in 0..<40 {
                // The first 300 KiB hold the superblock, descriptors, bitmaps, inode table, directories.
                damaged[1024 + rng.below(300 * 1024)] = UInt8(truncatingIfNeeded: rng.next())
            }
            let device = MemoryBlockDevice(bytes: damaged)
            guard let fs = try? Ext2FileSystem.mount(device: device, cacheCapacity: 8, readOnly: false) else { continue }
            _ = try? fs.tree()
            _ = try? fs.remove(vpath("/big"))
            _ = try? fs.put("/new", E2fs.pattern(30_000, seed: 1))
            _ = try? fs.rename(from: vpath("/a"), to: vpath("/many/a"))
            _ = try? fs.removeDirectory(vpath("/gone"))
            _ = try? fs.unmount()
        }
    }
}
