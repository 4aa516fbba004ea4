// The `FileSystem` operations that change ext2's tree: listing, mkdir, unlink, rmdir and
// rename (across folders too: a moved directory's `..` is repointed and both parents'
// link counts follow). Errors mirror MemoryFileSystem's, checked before anything changes.
// Links in a path's folders are followed (Ext2PathLookup); the last component is never
// followed here, except by `readDirectory` (a link to a folder lists that folder): `remove`
// and `rename` act on a link itself, and a listing shows it as `.symlink`.
// Each change to the tree is synced before it returns (as Linux's `dirsync` mount option):
// a service that writes a file, closes it (which syncs) and renames it over the old one
// (kv's SAVE) finds the new name on the disk even if the machine stops a moment later.

extension Ext2FileSystem {
    public func readDirectory(_ path: VFSPath) throws(FileSystemError) -> [DirectoryEntry] {
        let (_, inode) = try resolve(path)
        guard inode.kind == .directory else { throw .notADirectory }
        return try list(inode)
    }

    public func makeDirectory(_ path: VFSPath, mode: UInt32) throws(FileSystemError) {
        try makeDirectoryEntries(path, mode: mode)
        try sync()
    }

    private func makeDirectoryEntries(_ path: VFSPath, mode: UInt32) throws(FileSystemError) {
        guard mounted else { throw .io }
        if path.isRoot { throw .exists }
        var (parentNumber, parent, name, _) = try resolveParent(path)
        guard try find(parent, name) == nil else { throw .exists }
        guard !isReadOnly else { throw .readOnly }
        guard parent.links < Ext2FileSystem.maxLinks else { throw .noSpace }
        var (number, inode) = try createInode(near: parentNumber, mode: Ext2Inode.typeDirectory | UInt16(mode & 0o7777))
        do throws(FileSystemError) {
            var fresh = false
            let block = try map(&inode, 0, fresh: &fresh)
            inode.size = UInt64(superblock.blockSize)
            let cached = try cache.getZeroed(UInt64(block))
            let bytes = cache.bytes(cached)
            writeEntry(bytes, 0, inode: number, length: 12, name: [0x2E], type: 2)
            writeEntry(bytes, 12, inode: parentNumber, length: superblock.blockSize - 12, name: [0x2E, 0x2E], type: 2)
            cache.release(cached)
            try writeInode(number, inode)
            try addEntry(parentNumber, &parent, name, inode: number, type: 2)
        } catch {
            try? destroy(number, &inode)
            throw error
        }
        parent = try readInode(parentNumber)
        parent.links += 1
        try writeInode(parentNumber, parent)
    }

    public func remove(_ path: VFSPath) throws(FileSystemError) {
        try removeEntries(path)
        try sync()
    }

    private func removeEntries(_ path: VFSPath) throws(FileSystemError) {
        guard mounted else { throw .io }
        if path.isRoot { throw .isADirectory }
        var (parentNumber, parent, name, _) = try resolveParent(path)
        guard let entry = try find(parent, name) else { throw .notFound }
        guard try readInode(entry.inode).kind != .directory else { throw .isADirectory }
        guard !isReadOnly else { throw .readOnly }
        try changeEntry(parentNumber, &parent, name)
        try unlinkInode(entry.inode)
    }

    public func removeDirectory(_ path: VFSPath) throws(FileSystemError) {
        try removeDirectoryEntries(path)
        try sync()
    }

    private func removeDirectoryEntries(_ path: VFSPath) throws(FileSystemError) {
        guard mounted else { throw .io }
        if path.isRoot { throw .invalidPath }
        var (parentNumber, parent, name, _) = try resolveParent(path)
        guard let entry = try find(parent, name) else { throw .notFound }
        let inode = try readInode(entry.inode)
        guard inode.kind == .directory else { throw .notADirectory }
        guard try isEmpty(inode) else { throw .notEmpty }
        guard !isReadOnly else { throw .readOnly }
        try changeEntry(parentNumber, &parent, name)
        parent = try readInode(parentNumber)
        if parent.links > 2 { parent.links -= 1 }
        try writeInode(parentNumber, parent)
        try unlinkInode(entry.inode)
    }

    public func rename(from: VFSPath, to: VFSPath) throws(FileSystemError) {
        try renameEntries(from: from, to: to)
        try sync()
    }

    private func renameEntries(from: VFSPath, to: VFSPath) throws(FileSystemError) {
        guard mounted else { throw .io }
        if from.isRoot || to.isRoot { throw .invalidPath }
        let (sourceParentNumber, sourceParent, sourceName, _) = try resolveParent(from)
        guard let source = try find(sourceParent, sourceName) else { throw .notFound }
        if from == to { return }
        if to.isWithin(from) { throw .invalidPath }
        var (targetParentNumber, targetParent, targetName, targetFolders) = try resolveParent(to)
        let sourceInode = try readInode(source.inode)
        let movingDirectory = sourceInode.kind == .directory
        // Under itself through a link (`/a` to `/link-to-a/x`): the target's folders hold it.
        if movingDirectory && targetFolders.contains(source.inode) { throw .invalidPath }
        let existing = try find(targetParent, targetName)
        var replacedDirectory = false
        if let existing {
            if existing.inode == source.inode { return }
            let target = try readInode(existing.inode)
            if movingDirectory {
                guard target.kind == .directory else { throw .notADirectory }
                guard try isEmpty(target) else { throw .notEmpty }
                replacedDirectory = true
            } else if target.kind == .directory {
                throw .isADirectory
            }
        }
        guard !isReadOnly else { throw .readOnly }
        if movingDirectory && targetParentNumber != sourceParentNumber {
            guard replacedDirectory || targetParent.links < Ext2FileSystem.maxLinks else { throw .noSpace }
        }
        let type = sourceInode.directoryEntryType
        if let existing {
            try changeEntry(targetParentNumber, &targetParent, targetName, replacement: (source.inode, type))
            try unlinkInode(existing.inode)
        } else {
            try addEntry(targetParentNumber, &targetParent, targetName, inode: source.inode, type: type)
        }
        var sourceParentNow = try readInode(sourceParentNumber)
        try changeEntry(sourceParentNumber, &sourceParentNow, sourceName)
        var moved = try readInode(source.inode)
        moved.changeTime = seconds
        try writeInode(source.inode, moved)
        guard movingDirectory else {
            return
        }
        // The target parent lost a subdirectory if one was replaced; the source parent lost
        // the moved one and the target parent gained it.
        if targetParentNumber != sourceParentNumber {
            try changeEntry(source.inode, &moved, [0x2E, 0x2E], replacement: (targetParentNumber, 2))
            var parent = try readInode(sourceParentNumber)
            if parent.links > 2 { parent.links -= 1 }
            try writeInode(sourceParentNumber, parent)
            if !replacedDirectory {
                parent = try readInode(targetParentNumber)
                parent.links += 1
                try writeInode(targetParentNumber, parent)
            }
        } else if replacedDirectory {
            var parent = try readInode(sourceParentNumber)
            if parent.links > 2 { parent.links -= 1 }
            try writeInode(sourceParentNumber, parent)
        }
    }
}
