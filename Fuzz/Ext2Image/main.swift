// libFuzzer target: ext2 over a damaged disk image (the superblock, group descriptors,
// bitmaps, inodes, directory entries and indirect blocks are all untrusted bytes; STYLE
// principle 7). The input patches a small real image (BaseImage.swift, made by mke2fs -d),
// which is then mounted read-only and read-write, walked, and changed.
//
// The input: byte 0 is the mode (bit 0: mount read-write; bit 1: a 3-block cache instead
// of 16); then patches until the input ends: u32 offset (modulo the image size), u8 length,
// that many bytes. Offsets below 64 KiB are favoured by taking the u32 modulo 64 KiB when
// its top bit is clear, where the metadata and directories live.
// Invariants (a violation traps, which libFuzzer reports):
//   * mounting, walking (at most 64 folders, 256 entries read), reading every file, and the
//     changes (create and write 20 KB, truncate, mkdir, rename across folders, unlink,
//     rmdir, sync, unmount) never trap, hang or recurse without bound: errors only;
//   * no call leaves a cache buffer held (`heldCount` is 0 between calls);
//   * a read never returns more than asked, nor past the size `attributes` reports.
import FuzzSupport
@testable import Core

final class FuzzDisk: BlockDevice {
    var bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var sectorSize: Int { 512 }
    var sectorCount: UInt64 { UInt64(bytes.count / 512) }
    var isReadOnly: Bool { false }
    func read(sector: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockDeviceError) {
        guard buffer.count % 512 == 0, sector + UInt64(buffer.count / 512) <= sectorCount else { throw .outOfRange }
        let start = Int(sector) * 512
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[start..<start + buffer.count])) }
    }
    func write(sector: UInt64, from buffer: UnsafeRawBufferPointer) throws(BlockDeviceError) {
        guard buffer.count % 512 == 0, sector + UInt64(buffer.count / 512) <= sectorCount else { throw .outOfRange }
        let start = Int(sector) * 512
        bytes.replaceSubrange(start..<start + buffer.count, with: buffer)
    }
    func flush() throws(BlockDeviceError) {}
}

func baseImage() -> [UInt8] {
    var image = [UInt8](repeating: 0, count: baseImageSize)
    for (offset, count, byte) in baseImageFills {
        for index in offset..<offset + count { image[index] = byte }
    }
    for (offset, run) in baseImageRuns {
        for (index, byte) in run.enumerated() { image[offset + index] = byte }
    }
    return image
}

let pristine = baseImage()

func path(_ text: StaticString) -> VFSPath {
    try! VFSPath(parsing: Array(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)))
}

func checkHeld(_ fs: Ext2FileSystem) {
    precondition(fs.cache.heldCount == 0, "a call left a cache buffer held")
}

func walk(_ fs: Ext2FileSystem) {
    var folders: [VFSPath] = [.root]
    var visited = 0, entriesRead = 0
    var buffer = [UInt8](repeating: 0, count: 5000)
    while let folder = folders.popLast(), visited < 64 {
        visited += 1
        let entries = (try? fs.readDirectory(folder)) ?? []
        checkHeld(fs)
        for entry in entries where entriesRead < 256 {
            entriesRead += 1
            guard let child = try? folder.appending(entry.name) else { continue }
            if entry.kind == .directory {
                folders.append(child)
                continue
            }
            guard let handle = try? fs.open(child, flags: .read, mode: 0) else { checkHeld(fs); continue }
            let size = (try? fs.attributes(handle))?.size ?? 0
            var offset: UInt64 = 0
            for _ in 0..<8 {
                let count = buffer.withUnsafeMutableBytes { raw in (try? fs.read(handle, offset: offset, into: raw)) ?? 0 }
                precondition(count <= buffer.count, "read more than asked")
                precondition(count == 0 || offset + UInt64(count) <= size, "read past the reported size")
                if count == 0 { break }
                offset += UInt64(count)
            }
            try? fs.close(handle)
            checkHeld(fs)
        }
    }
}

func change(_ fs: Ext2FileSystem) {
    let data = [UInt8](repeating: 0x5A, count: 20_000)
    if let handle = try? fs.open(path("/dir/new"), flags: [.write, .create], mode: 0o644) {
        _ = data.withUnsafeBytes { raw in (try? fs.write(handle, offset: 3000, from: raw)) ?? 0 }
        try? fs.close(handle)
    }
    checkHeld(fs)
    try? fs.truncate(path("/dir/indirect"), size: 100); checkHeld(fs)
    try? fs.makeDirectory(path("/made"), mode: 0o755); checkHeld(fs)
    try? fs.rename(from: path("/dir/sub"), to: path("/made/sub")); checkHeld(fs)
    try? fs.rename(from: path("/hello"), to: path("/made/sub/hello")); checkHeld(fs)
    try? fs.remove(path("/dir/f1")); checkHeld(fs)
    try? fs.removeDirectory(path("/made")); checkHeld(fs)
    try? fs.sync(); checkHeld(fs)
    walk(fs)
}

func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var cursor = Cursor(bytes: UnsafeRawBufferPointer(start: data, count: size))
    let mode = cursor.u8()
    var image = pristine
    while !cursor.isEmpty {
        let raw = cursor.u32()
        let offset = raw & 0x8000_0000 == 0 ? Int(raw % 65_536) : Int(raw % UInt32(image.count))
        let length = Int(cursor.u8())
        for index in 0..<length where !cursor.isEmpty && offset + index < image.count {
            image[offset + index] = cursor.u8()
        }
    }
    let disk = FuzzDisk(image)
    let capacity = mode & 2 != 0 ? 3 : 16
    if let fs = try? Ext2FileSystem.mount(device: disk, cacheCapacity: capacity, readOnly: true) {
        walk(fs)
        try? fs.unmount()
        checkHeld(fs)
    }
    if mode & 1 != 0, let fs = try? Ext2FileSystem.mount(device: disk, cacheCapacity: capacity, readOnly: false) {
        walk(fs)
        change(fs)
        try? fs.unmount()
        checkHeld(fs)
    }
    return 0
}

fuzzMain(fuzz)
