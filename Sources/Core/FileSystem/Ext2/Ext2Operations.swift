// The `FileSystem` operations of `Ext2FileSystem`: path lookup, open/read/write/close,
// truncate, directories, unlink, rename. Errors and edge cases follow MemoryFileSystem
// (the reference back-end), so the VFS and services see the same answers.
//
// Link counts: a file has one link per entry; a directory 2 (its entry and its `.`) plus
// one per subdirectory (their `..`). An inode whose last link goes while a handle holds it
// is freed at the last `close` (or at `unmount`).
//
// Symlinks are followed by path lookup (Ext2PathLookup.swift: confined to this file system,
// at most 40 per lookup): `stat`, `open` and `truncate` reach the target, `remove` and
// `rename` act on the link itself. `open` with `.create` never creates through a link: on a
// dangling one it is `permissionDenied` (`exists` with `.exclusive`), as toro-fs answers
// (O_CREAT|O_NOFOLLOW). This back-end makes no links. Device nodes, FIFOs and sockets are
// listed and stat'ed, never opened (`permissionDenied`).

extension Ext2FileSystem {
    static let maxLinks: UInt16 = 32_000

    func openFile(_ handle: FileHandleID) throws(FileSystemError) -> OpenFile {
        guard mounted else { throw .io }
        guard let file = handles.first(where: { $0.id == handle.rawValue }) else { throw .badDescriptor }
        return file
    }

    func attributes(of inode: Ext2Inode) -> FileAttributes {
        FileAttributes(size: inode.size, kind: inode.kind, mode: UInt32(inode.mode & 0o7777),
                       modificationTime: UInt64(inode.modificationTime))
    }

    // MARK: Files

    public func stat(_ path: VFSPath) throws(FileSystemError) -> FileAttributes {
        attributes(of: try resolve(path).inode)
    }

    public func attributes(_ handle: FileHandleID) throws(FileSystemError) -> FileAttributes {
        attributes(of: try readInode(try openFile(handle).inode))
    }

    public func open(_ path: VFSPath, flags: OpenFlags, mode: UInt32) throws(FileSystemError) -> FileHandleID {
        guard mounted else { throw .io }
        guard handles.count < Ext2FileSystem.maxHandles else { throw .tooManyOpenFiles }
        var number = Ext2FileSystem.rootInode
        var inode: Ext2Inode
        var created = false
        if path.isRoot {
            inode = try readInode(number)
            if flags.contains(.create) && flags.contains(.exclusive) { throw .exists }
        } else {
            var (parentNumber, parent, name, _) = try resolveParent(path)
            if let entry = try find(parent, name) {
                if flags.contains(.create) && flags.contains(.exclusive) { throw .exists }
                number = entry.inode
                inode = try readInode(number)
                if inode.kind == .symlink {
                    // The whole path again, the link followed; a dangling one is not created through.
                    do throws(FileSystemError) {
                        (number, inode) = try resolve(path)
                    } catch {
                        throw error == .notFound && flags.contains(.create) ? .permissionDenied : error
                    }
                }
            } else {
                guard flags.contains(.create) else { throw .notFound }
                guard !isReadOnly else { throw .readOnly }
                (number, inode) = try createInode(near: parentNumber, mode: Ext2Inode.typeFile | UInt16(mode & 0o7777))
                created = true
                do throws(FileSystemError) {
                    try addEntry(parentNumber, &parent, name, inode: number, type: 1)
                } catch {
                    try? destroy(number, &inode)
                    throw error
                }
            }
        }
        if inode.kind == .directory && (flags.contains(.write) || flags.contains(.create)) { throw .isADirectory }
        if inode.kind == .symlink || inode.kind == .other { throw .permissionDenied }
        if flags.contains(.write) && isReadOnly { throw .readOnly }
        var changed = created
        if flags.contains(.truncate) && flags.contains(.write) && inode.size > 0 {
            try resize(number, &inode, to: 0)
            changed = true
        }
        let id = nextHandle
        nextHandle += 1
        handles.append(OpenFile(id: id, inode: number, flags: flags, changed: changed))
        return FileHandleID(id)
    }

    public func read(_ handle: FileHandleID, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        let file = try openFile(handle)
        guard file.flags.contains(.read) else { throw .badDescriptor }
        let inode = try readInode(file.inode)
        guard inode.kind != .directory else { throw .isADirectory }
        guard offset < inode.size, !buffer.isEmpty else { return 0 }
        let count = Int(min(UInt64(buffer.count), inode.size - offset))
        let size = superblock.blockSize
        var done = 0
        while done < count {
            let position = offset + UInt64(done)
            let within = Int(position % UInt64(size))
            let length = min(size - within, count - done)
            let target = buffer.slice(done, length)
            let block = try lookup(inode, position / UInt64(size))
            if block == 0 {
                target.initializeMemory(as: UInt8.self, repeating: 0)
            } else {
                let cached = try cache.get(UInt64(block))
                target.copyMemory(from: UnsafeRawBufferPointer(cache.bytes(cached).slice(within, length)))
                cache.release(cached)
            }
            done += length
        }
        return count
    }

    public func write(_ handle: FileHandleID, offset: UInt64, from buffer: UnsafeRawBufferPointer) throws(FileSystemError) -> Int {
        let file = try openFile(handle)
        guard file.flags.contains(.write) else { throw .badDescriptor }
        guard !isReadOnly else { throw .readOnly }
        var inode = try readInode(file.inode)
        guard inode.kind == .file else { throw .isADirectory }
        guard !buffer.isEmpty else { return 0 }
        let (end, overflow) = offset.addingReportingOverflow(UInt64(buffer.count))
        guard !overflow else { throw .tooLarge }
        try checkSize(end)
        if offset > inode.size { try zeroTail(inode) }
        let size = superblock.blockSize
        var done = 0
        var failure: FileSystemError? = nil
        while done < buffer.count {
            let position = offset + UInt64(done)
            let within = Int(position % UInt64(size))
            let length = min(size - within, buffer.count - done)
            do throws(FileSystemError) {
                var fresh = false
                let block = try map(&inode, position / UInt64(size), fresh: &fresh)
                let cached = fresh || length == size ? try cache.getZeroed(UInt64(block)) : try cache.get(UInt64(block))
                cache.bytes(cached).slice(within, length).copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[done..<done + length]))
                cache.markDirty(cached)
                cache.release(cached)
            } catch {
                failure = error
                break
            }
            done += length
        }
        inode.size = max(inode.size, offset + UInt64(done))
        inode.modificationTime = seconds
        inode.changeTime = seconds
        try writeInode(file.inode, inode)
        if let failure, done == 0 { throw failure }
        if let index = handles.firstIndex(where: { $0.id == file.id }) { handles[index].changed = true }
        try syncIfDue()
        return done
    }

    public func close(_ handle: FileHandleID) throws(FileSystemError) {
        guard mounted else { throw .io }
        guard let index = handles.firstIndex(where: { $0.id == handle.rawValue }) else { throw .badDescriptor }
        let file = handles.remove(at: index)
        try releaseIfOrphan(file.inode)
        // Close after writing: the file's data and metadata reach the disk.
        if file.changed && !isReadOnly { try sync() }
    }

    public func truncate(_ path: VFSPath, size: UInt64) throws(FileSystemError) {
        var (number, inode) = try resolve(path)
        guard inode.kind != .directory else { throw .isADirectory }
        guard inode.kind == .file else { throw .permissionDenied }
        guard !isReadOnly else { throw .readOnly }
        try resize(number, &inode, to: size)
    }

    public func statFileSystem() throws(FileSystemError) -> FileSystemStatistics {
        guard mounted else { throw .io }
        return FileSystemStatistics(blockSize: UInt32(superblock.blockSize), totalBlocks: UInt64(superblock.blocksCount),
                                    freeBlocks: UInt64(superblock.freeBlocks), totalFiles: UInt64(superblock.inodesCount),
                                    freeFiles: UInt64(superblock.freeInodes), maxNameLength: 255)
    }

    /// Refuses sizes the block map cannot address, or above 2 GiB without `large_file`.
    func checkSize(_ size: UInt64) throws(FileSystemError) {
        let blockSize = UInt64(superblock.blockSize)
        let blocks = size / blockSize + (size % blockSize == 0 ? 0 : 1)
        guard blocks <= maxLogicalBlocks else { throw .tooLarge }
        let large = superblock.readOnlyCompatible & Ext2Features.readOnlyLargeFile != 0 && superblock.revision >= 1
        guard size < (large ? UInt64(1) << 40 : UInt64(1) << 31) else { throw .tooLarge }
    }

    /// Zeroes the bytes past the end of file in its last block, so a later extension reads
    /// zeros there.
    func zeroTail(_ inode: Ext2Inode) throws(FileSystemError) {
        let size = UInt64(superblock.blockSize)
        let within = Int(inode.size % size)
        guard within != 0 else { return }
        let block = try lookup(inode, inode.size / size)
        guard block != 0 else { return }
        let cached = try cache.get(UInt64(block))
        cache.bytes(cached).slice(within, Int(size) - within).initializeMemory(as: UInt8.self, repeating: 0)
        cache.markDirty(cached)
        cache.release(cached)
    }

    /// Cuts or extends file `number` to `size` bytes, freeing the blocks past the end.
    func resize(_ number: UInt32, _ inode: inout Ext2Inode, to size: UInt64) throws(FileSystemError) {
        try checkSize(size)
        let blockSize = UInt64(superblock.blockSize)
        defer { try? writeInode(number, inode) }
        if size < inode.size {
            try freeBlocks(&inode, from: (size + blockSize - 1) / blockSize)
            inode.size = size
            try zeroTail(inode)
        } else if size > inode.size {
            try zeroTail(inode)
            inode.size = size
        }
        inode.modificationTime = seconds
        inode.changeTime = seconds
    }

    // MARK: Inode life

    /// A new inode with `mode`, one link (two for a directory), stamped now; written.
    func createInode(near: UInt32, mode: UInt16) throws(FileSystemError) -> (UInt32, Ext2Inode) {
        let directory = mode & Ext2Inode.typeMask == Ext2Inode.typeDirectory
        let number = try allocateInode(directory: directory, near: near)
        var inode = Ext2Inode()
        inode.mode = mode
        inode.links = directory ? 2 : 1
        inode.accessTime = seconds
        inode.changeTime = seconds
        inode.modificationTime = seconds
        try writeInode(number, inode, fresh: true)
        return (number, inode)
    }

    /// Frees an inode with no links left: its blocks, attribute block and bitmap bit.
    func destroy(_ number: UInt32, _ inode: inout Ext2Inode) throws(FileSystemError) {
        let directory = inode.kind == .directory
        if !inode.isFastSymlink(sectorsPerBlock: sectorsPerBlock) && inode.kind != .other { try freeBlocks(&inode, from: 0) }
        if inode.attributeBlock != 0 { try releaseAttributeBlock(&inode) }
        inode.links = 0
        inode.size = 0
        // e2fsck reads a free inode's dtime below the inode count as an orphan-list link
        // (ext3's use of the field): without a wall clock, stamp the inode count instead.
        inode.deletionTime = max(seconds, superblock.inodesCount)
        try writeInode(number, inode)
        try freeInode(number, directory: directory)
    }

    /// Drops one reference to an extended-attribute block (h_refcount at byte 4), freeing
    /// it at the last.
    func releaseAttributeBlock(_ inode: inout Ext2Inode) throws(FileSystemError) {
        let block = inode.attributeBlock
        try check(block)
        let cached = try cache.get(UInt64(block))
        let bytes = cache.bytes(cached)
        guard bytes.le32(0) == 0xEA02_0000 else {
            cache.release(cached)
            throw .io
        }
        let references = bytes.le32(4)
        if references > 1 {
            bytes.setLE32(4, references - 1)
            cache.markDirty(cached)
        }
        cache.release(cached)
        if references <= 1 { try freeBlock(block) }
        inode.attributeBlock = 0
        inode.sectors &-= sectorsPerBlock
    }

    /// Frees inode `number` when it has no links and no handle holds it.
    func releaseIfOrphan(_ number: UInt32) throws(FileSystemError) {
        guard !isReadOnly, !handles.contains(where: { $0.inode == number }) else { return }
        var inode = try readInode(number)
        if inode.links == 0 && inode.deletionTime == 0 { try destroy(number, &inode) }
    }

    /// Drops one link of `number` (a directory: all of them), freeing it when none is left
    /// and no handle holds it.
    func unlinkInode(_ number: UInt32) throws(FileSystemError) {
        var inode = try readInode(number)
        inode.links = inode.kind == .directory || inode.links == 0 ? 0 : inode.links - 1
        inode.changeTime = seconds
        try writeInode(number, inode)
        try releaseIfOrphan(number)
    }
}
