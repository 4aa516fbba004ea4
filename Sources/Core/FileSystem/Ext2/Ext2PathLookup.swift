// ext2 path lookup: a `VFSPath` walked from the root inode, entry by entry, following
// symbolic links (POSIX path resolution, as Linux's namei does it, confined to this file
// system). What microvm's toro-fs does for the same folder is the model: a link that stays
// inside the share shows its target, one that leads out is refused.
//
// Links. A symlink's target is text: a fast link keeps it (under 60 bytes) in the inode's
// `i_block` area and owns no data block; a slow one keeps it in its first data block, read
// through the block map. Every component but the last is followed when it is a link; the
// last is followed on request (`followLast`): `stat`, `open`, `truncate` and
// `readDirectory` follow it; `remove`, `rename`, `makeDirectory` and `removeDirectory` act
// on the link itself, and a listing shows a link as `.symlink` (toro-fs lists it as
// DT_UNKNOWN, `.other`; services treat both as "stat it to see the target").
// A relative target is walked from the folder holding the link, an absolute one from this
// file system's root (toro-fs never sees one: `toro run` leaves absolute links out of a
// shared folder's image; a `--disk` image may hold them).
//
// Confinement and bounds (a link is untrusted input, like every byte of the image):
//   * `..` steps back along the folders this lookup walked (the physical parent, as Linux:
//     `l/..` with `l -> a/b` is `a`); a `..` at the root would leave the file system and is
//     `permissionDenied` (what virtio-fs answers for a link leading out of the share).
//   * At most `maxLinksFollowed` (40, Linux's MAXSYMLINKS) links per lookup; one more is
//     `permissionDenied` (ELOOP, which virtio-fs also reports so). A loop `a -> b -> a` ends
//     there: the walk is one loop over a stack of pending components, never recursion.
//   * A target must be 1 to min(block size, 4096) bytes without NUL, else `invalidPath`; one
//     whose bytes are not where the inode says (a fast link of 60 bytes or more, a slow one
//     with a hole) is `io`. A component over 255 bytes is `nameTooLong`.
//   * The path still to walk, with a target put in place of its link, stays within
//     `VFSPath.maxLength` (4096 bytes), else `nameTooLong`; so the pending stack holds at
//     most 2048 components. The walked folders are capped at `maxLookupDepth`.
// A missing entry (a dangling link's target) is `notFound`; a file used as a folder is
// `notADirectory`.

extension Ext2FileSystem {
    /// Links a single lookup follows before it gives up (Linux's MAXSYMLINKS).
    static let maxLinksFollowed = 40
    /// The longest link target read (PATH_MAX), also capped by the block size.
    static let maxLinkTarget = 4096
    /// Folders a lookup may stand below the root: twice what a 4096-byte path can name.
    static let maxLookupDepth = 4096

    /// Where a lookup ended.
    struct Ext2Lookup {
        var number: UInt32
        var inode: Ext2Inode
        /// The folders walked from the root (first) to the result when it is a folder, else
        /// to the folder holding it: the result's ancestry, links resolved.
        var folders: [UInt32]
    }

    /// The inode `path` names, every link followed (the last one too unless `followLast`
    /// is false, which gives the link itself).
    func resolve(_ path: VFSPath, followLast: Bool = true) throws(FileSystemError) -> (number: UInt32, inode: Ext2Inode) {
        let found = try walk(path, followLast: followLast)
        return (found.number, found.inode)
    }

    /// The directory holding `path`'s last component (links on the way followed), that
    /// name, and the folders from the root to that directory.
    func resolveParent(_ path: VFSPath) throws(FileSystemError) -> (number: UInt32, inode: Ext2Inode, name: [UInt8], folders: [UInt32]) {
        guard let parent = path.parent, let name = path.name else { throw .invalidPath }
        let found = try walk(parent, followLast: true)
        guard found.inode.kind == .directory else { throw .notADirectory }
        return (found.number, found.inode, name, found.folders)
    }

    /// Walks `path` from the root, following links by the rules at the top of this file.
    func walk(_ path: VFSPath, followLast: Bool) throws(FileSystemError) -> Ext2Lookup {
        guard mounted else { throw .io }
        let root = Ext2FileSystem.rootInode
        // The components still to walk, the next one last; and their bytes, a "/" each.
        var pending: [[UInt8]] = path.components.reversed()
        var pendingBytes = path.isRoot ? 0 : path.byteCount
        var folders: [UInt32] = [root]
        var number = root
        var inode = try readInode(number)
        var followed = 0
        while let name = pending.popLast() {
            pendingBytes -= name.count + 1
            guard inode.kind == .directory else { throw .notADirectory }
            if name == Ext2FileSystem.dotDot {
                // Only a link's target brings `..` here (VFSPath removes them).
                guard folders.count > 1 else { throw .permissionDenied }
                folders.removeLast()
                number = folders[folders.count - 1]
                inode = try readInode(number)
                continue
            }
            guard let entry = try find(inode, name) else { throw .notFound }
            let child = try readInode(entry.inode)
            if child.kind == .symlink && (followLast || !pending.isEmpty) {
                followed += 1
                guard followed <= Ext2FileSystem.maxLinksFollowed else { throw .permissionDenied }
                let target = try linkTarget(child)
                let components = try Ext2FileSystem.components(ofTarget: target)
                let bytes = components.reduce(0) { $0 + $1.count + 1 }
                guard pendingBytes + bytes <= VFSPath.maxLength else { throw .nameTooLong }
                pending.append(contentsOf: components.reversed())
                pendingBytes += bytes
                if target[0] == Ext2FileSystem.slash {
                    folders = [root]
                    number = root
                    inode = try readInode(root)
                }
                continue
            }
            number = entry.inode
            inode = child
            if inode.kind == .directory {
                guard folders.count < Ext2FileSystem.maxLookupDepth else { throw .nameTooLong }
                folders.append(number)
            }
        }
        return Ext2Lookup(number: number, inode: inode, folders: folders)
    }

    static let slash: UInt8 = 0x2F
    static let dotDot: [UInt8] = [0x2E, 0x2E]

    /// The target of symlink `inode`: 1 to min(block size, `maxLinkTarget`) bytes, no NUL.
    func linkTarget(_ inode: Ext2Inode) throws(FileSystemError) -> [UInt8] {
        let limit = min(superblock.blockSize, Ext2FileSystem.maxLinkTarget)
        guard inode.size > 0, inode.size <= UInt64(limit) else { throw .invalidPath }
        let count = Int(inode.size)
        var target: [UInt8]
        if inode.isFastSymlink(sectorsPerBlock: sectorsPerBlock) {
            // i_block's 60 bytes, as the disk holds them (each pointer little-endian).
            guard count < 60 else { throw .io }
            target = []
            target.reserveCapacity(count)
            for index in 0..<count {
                target.append(UInt8(truncatingIfNeeded: inode.block[index / 4] >> (8 * UInt32(index % 4))))
            }
        } else {
            let block = try lookup(inode, 0)
            guard block != 0 else { throw .io }
            let cached = try cache.get(UInt64(block))
            target = Array(UnsafeRawBufferPointer(cache.bytes(cached).slice(0, count)))
            cache.release(cached)
        }
        guard !target.contains(0) else { throw .invalidPath }
        return target
    }

    /// A target's components in order: empty ones and `.` dropped, `..` kept.
    static func components(ofTarget target: [UInt8]) throws(FileSystemError) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var start = 0
        while start < target.count {
            var end = start
            while end < target.count && target[end] != slash { end += 1 }
            let length = end - start
            if length > VFSPath.maxComponentLength { throw .nameTooLong }
            if length > 0 && !(length == 1 && target[start] == 0x2E) {
                out.append(Array(target[start..<end]))
            }
            start = end + 1
        }
        return out
    }
}
