// ext2 directories: linear lists of entries packed in the directory's blocks. An entry is
// inode (u32), rec_len (u16), name_len (u8, or u16 without the `filetype` feature),
// file_type (u8, with `filetype`), then the name; rec_len spans to the next entry, so the
// entries of a block tile it exactly. Inode 0 marks an unused entry.
//
// Hashed (htree, EXT2_INDEX_FL) directories are read the same way: their index blocks look
// like one unused entry spanning the block. Any change to such a directory clears the flag
// (the index would be stale), which leaves a valid linear directory.
//
// Distrust: every entry is checked before use (rec_len >= 8, a multiple of 4, inside the
// block; name inside rec_len); a bad one, or a hole in a directory, is `io`. Walks are
// bounded by the directory's size in blocks and each block by its size.

extension Ext2FileSystem {
    /// One parsed entry header at `offset` in a directory block.
    struct EntryHeader {
        var inode: UInt32
        var recordLength: Int
        var nameLength: Int
        var type: UInt8
    }

    var hasFileType: Bool { superblock.incompatible & Ext2Features.incompatibleFileType != 0 }

    /// Bytes an entry with a name of `length` bytes needs.
    static func entrySize(_ length: Int) -> Int { (8 + length + 3) & ~3 }

    func header(_ bytes: UnsafeMutableRawBufferPointer, _ offset: Int) throws(FileSystemError) -> EntryHeader {
        guard offset + 8 <= bytes.count else { throw .io }
        let length = Int(bytes.le16(offset + 4))
        let nameLength = hasFileType ? Int(bytes.u8(offset + 6)) : Int(bytes.le16(offset + 6))
        guard length >= 8, length & 3 == 0, offset + length <= bytes.count, 8 + nameLength <= length else { throw .io }
        return EntryHeader(inode: bytes.le32(offset), recordLength: length, nameLength: nameLength,
                           type: hasFileType ? bytes.u8(offset + 7) : 0)
    }

    /// Blocks in directory `directory` (its size must be whole blocks).
    func blockCount(_ directory: Ext2Inode) throws(FileSystemError) -> UInt64 {
        let size = UInt64(superblock.blockSize)
        guard directory.size % size == 0 else { throw .io }
        return directory.size / size
    }

    /// Holds directory block `logical` (a hole is `io`).
    func directoryBlock(_ directory: Ext2Inode, _ logical: UInt64) throws(FileSystemError) -> CacheBuffer {
        let block = try lookup(directory, logical)
        guard block != 0 else { throw .io }
        return try cache.get(UInt64(block))
    }

    static func matches(_ bytes: UnsafeMutableRawBufferPointer, _ offset: Int, _ name: [UInt8]) -> Bool {
        for index in 0..<name.count where bytes[offset + 8 + index] != name[index] { return false }
        return true
    }

    /// The entry called `name`: its inode and file type; nil when absent.
    func find(_ directory: Ext2Inode, _ name: [UInt8]) throws(FileSystemError) -> (inode: UInt32, type: UInt8)? {
        for logical in 0..<(try blockCount(directory)) {
            let buffer = try directoryBlock(directory, logical)
            defer { cache.release(buffer) }
            let bytes = cache.bytes(buffer)
            var offset = 0
            while offset < bytes.count {
                let entry = try header(bytes, offset)
                if entry.inode != 0 && entry.nameLength == name.count && Ext2FileSystem.matches(bytes, offset, name) {
                    return (entry.inode, entry.type)
                }
                offset += entry.recordLength
            }
        }
        return nil
    }

    /// Every entry but `.` and `..`, in disk order.
    func list(_ directory: Ext2Inode) throws(FileSystemError) -> [DirectoryEntry] {
        var out: [DirectoryEntry] = []
        for logical in 0..<(try blockCount(directory)) {
            let buffer = try directoryBlock(directory, logical)
            let bytes = cache.bytes(buffer)
            var offset = 0
            var found: [(name: [UInt8], inode: UInt32, type: UInt8)] = []
            while offset < bytes.count {
                let entry: EntryHeader
                do throws(FileSystemError) { entry = try header(bytes, offset) } catch {
                    cache.release(buffer)
                    throw error
                }
                if entry.inode != 0 {
                    let name = Array(UnsafeRawBufferPointer(bytes.slice(offset + 8, entry.nameLength)))
                    if name != [0x2E] && name != [0x2E, 0x2E] { found.append((name, entry.inode, entry.type)) }
                }
                offset += entry.recordLength
            }
            cache.release(buffer)
            guard out.count + found.count <= maximumListing else {
                Log.timestamp()
                Log.write("ext2: a folder of more than ")
                Log.decimal(maximumListing)
                Log.write(" entries; its listing is refused\n")
                throw .tooLarge
            }
            for item in found {
                out.append(DirectoryEntry(name: item.name, kind: try kind(ofEntryType: item.type, inode: item.inode)))
            }
        }
        return out
    }

    func kind(ofEntryType type: UInt8, inode: UInt32) throws(FileSystemError) -> FileKind {
        switch type {
        case 1: return .file
        case 2: return .directory
        case 7: return .symlink
        case 0: return try readInode(inode).kind
        default: return .other
        }
    }

    /// True when the directory holds nothing but `.` and `..`.
    func isEmpty(_ directory: Ext2Inode) throws(FileSystemError) -> Bool {
        for logical in 0..<(try blockCount(directory)) {
            let buffer = try directoryBlock(directory, logical)
            defer { cache.release(buffer) }
            let bytes = cache.bytes(buffer)
            var offset = 0
            while offset < bytes.count {
                let entry = try header(bytes, offset)
                if entry.inode != 0 {
                    let dot = entry.nameLength == 1 && bytes[offset + 8] == 0x2E
                    let dotDot = entry.nameLength == 2 && bytes[offset + 8] == 0x2E && bytes[offset + 9] == 0x2E
                    if !dot && !dotDot { return false }
                }
                offset += entry.recordLength
            }
        }
        return true
    }

    /// Adds `name` -> `inode` to directory `number` (the caller checked it is absent),
    /// in the first gap big enough or a new block at the end. Writes the directory inode.
    func addEntry(_ number: UInt32, _ directory: inout Ext2Inode, _ name: [UInt8], inode: UInt32, type: UInt8) throws(FileSystemError) {
        let needed = Ext2FileSystem.entrySize(name.count)
        directory.flags &= ~Ext2Inode.indexFlag
        directory.modificationTime = seconds
        directory.changeTime = seconds
        defer { try? writeInode(number, directory) }
        for logical in 0..<(try blockCount(directory)) {
            let buffer = try directoryBlock(directory, logical)
            defer { cache.release(buffer) }
            let bytes = cache.bytes(buffer)
            var offset = 0
            while offset < bytes.count {
                let entry = try header(bytes, offset)
                let used = entry.inode == 0 ? 0 : Ext2FileSystem.entrySize(entry.nameLength)
                if entry.recordLength - used >= needed {
                    var at = offset
                    var length = entry.recordLength
                    if used > 0 {
                        bytes.setLE16(offset + 4, UInt16(used))
                        at = offset + used
                        length = entry.recordLength - used
                    }
                    writeEntry(bytes, at, inode: inode, length: length, name: name, type: type)
                    cache.markDirty(buffer)
                    return
                }
                offset += entry.recordLength
            }
        }
        let logical = try blockCount(directory)
        var fresh = false
        let block = try map(&directory, logical, fresh: &fresh)
        directory.size += UInt64(superblock.blockSize)
        let buffer = try cache.getZeroed(UInt64(block))
        writeEntry(cache.bytes(buffer), 0, inode: inode, length: superblock.blockSize, name: name, type: type)
        cache.release(buffer)
    }

    func writeEntry(_ bytes: UnsafeMutableRawBufferPointer, _ offset: Int, inode: UInt32, length: Int, name: [UInt8], type: UInt8) {
        bytes.setLE32(offset, inode)
        bytes.setLE16(offset + 4, UInt16(length))
        if hasFileType {
            bytes[offset + 6] = UInt8(name.count)
            bytes[offset + 7] = type
        } else {
            bytes.setLE16(offset + 6, UInt16(name.count))
        }
        for index in 0..<name.count { bytes[offset + 8 + index] = name[index] }
    }

    /// Removes the entry `name` (merging its space into the previous entry) or, with
    /// `replacement`, points it at another inode. Returns the inode it named; `notFound`.
    /// Writes the directory inode.
    @discardableResult
    func changeEntry(_ number: UInt32, _ directory: inout Ext2Inode, _ name: [UInt8],
                     replacement: (inode: UInt32, type: UInt8)? = nil) throws(FileSystemError) -> UInt32 {
        for logical in 0..<(try blockCount(directory)) {
            let buffer = try directoryBlock(directory, logical)
            defer { cache.release(buffer) }
            let bytes = cache.bytes(buffer)
            var offset = 0, previous = -1
            while offset < bytes.count {
                let entry = try header(bytes, offset)
                if entry.inode != 0 && entry.nameLength == name.count && Ext2FileSystem.matches(bytes, offset, name) {
                    if let replacement {
                        bytes.setLE32(offset, replacement.inode)
                        if hasFileType { bytes[offset + 7] = replacement.type }
                    } else if previous >= 0 {
                        bytes.setLE16(previous + 4, UInt16(offset - previous + entry.recordLength))
                    } else {
                        bytes.setLE32(offset, 0)
                    }
                    cache.markDirty(buffer)
                    directory.flags &= ~Ext2Inode.indexFlag
                    directory.modificationTime = seconds
                    directory.changeTime = seconds
                    try writeInode(number, directory)
                    return entry.inode
                }
                previous = offset
                offset += entry.recordLength
            }
        }
        throw .notFound
    }
}
