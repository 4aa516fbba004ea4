// ext2's block and inode bitmaps: allocating and freeing, with the group descriptors' and
// superblock's free counts (and used-directory counts) kept exact in step with every bit.
//
// Blocks: bit b of group g's block bitmap is block firstDataBlock + g * blocksPerGroup + b.
// A search starts at a goal (the block after the file's previous one, so files stay
// contiguous), scans the rest of that group, then the following groups, wrapping once.
// Inodes: bit i of group g's inode bitmap is inode g * inodesPerGroup + i + 1; inodes
// below `firstInode` (reserved: root, resize, journal...) are never handed out.
//
// Distrust: freeing a block or inode whose bit is already clear means the image is
// inconsistent (two owners, or a pointer cycle): it is `io`, and nothing changes. That
// check is also what bounds every walk that frees blocks.

extension Ext2FileSystem {
    /// A free block, marked used and counted; `goal` 0 means "anywhere".
    func allocateBlock(goal: UInt32) throws(FileSystemError) -> UInt32 {
        guard !isReadOnly else { throw .readOnly }
        guard superblock.freeBlocks > 0 else { throw .noSpace }
        let sb = superblock
        var startGroup = 0, startBit = 0
        if goal >= sb.firstDataBlock && goal < sb.blocksCount {
            startGroup = Int((goal - sb.firstDataBlock) / sb.blocksPerGroup)
            startBit = Int((goal - sb.firstDataBlock) % sb.blocksPerGroup)
        }
        for step in 0...sb.groupCount {
            let group = (startGroup + step) % sb.groupCount
            guard groups[group].freeBlocks > 0 else { continue }
            let first = step == 0 ? startBit : 0
            let limit = Int(sb.blocksIn(group: group))
            if let bit = try claimBit(in: groups[group].blockBitmap, from: first, limit: limit) {
                groups[group].freeBlocks -= 1
                superblock.freeBlocks -= 1
                return sb.firstDataBlock + UInt32(group) * sb.blocksPerGroup + UInt32(bit)
            }
        }
        throw .noSpace
    }

    /// Marks `block` free and counts it.
    func freeBlock(_ block: UInt32) throws(FileSystemError) {
        let sb = superblock
        guard block >= sb.firstDataBlock, block < sb.blocksCount else { throw .io }
        let group = Int((block - sb.firstDataBlock) / sb.blocksPerGroup)
        let bit = Int((block - sb.firstDataBlock) % sb.blocksPerGroup)
        try clearBit(in: groups[group].blockBitmap, bit)
        guard UInt32(groups[group].freeBlocks) < sb.blocksIn(group: group) else { throw .io }
        groups[group].freeBlocks += 1
        superblock.freeBlocks += 1
    }

    /// A free inode, marked used and counted (a directory also in `usedDirectories`).
    /// Directories go to the group with the most free inodes, files near `near`'s group.
    func allocateInode(directory: Bool, near: UInt32) throws(FileSystemError) -> UInt32 {
        guard !isReadOnly else { throw .readOnly }
        guard superblock.freeInodes > 0 else { throw .noSpace }
        let sb = superblock
        var start = near >= 1 && near <= sb.inodesCount ? Int((near - 1) / sb.inodesPerGroup) : 0
        if directory {
            var best = -1
            for group in 0..<groups.count where best < 0 || groups[group].freeInodes > groups[best].freeInodes {
                best = group
            }
            start = max(best, 0)
        }
        for step in 0..<groups.count {
            let group = (start + step) % groups.count
            guard groups[group].freeInodes > 0 else { continue }
            // Reserved inodes sit at the start of group 0.
            let firstBit = UInt32(group) * sb.inodesPerGroup + 1 < sb.firstInode
                ? Int(sb.firstInode - 1 - UInt32(group) * sb.inodesPerGroup) : 0
            guard firstBit < Int(sb.inodesPerGroup) else { continue }
            if let bit = try claimBit(in: groups[group].inodeBitmap, from: firstBit, limit: Int(sb.inodesPerGroup)) {
                groups[group].freeInodes -= 1
                superblock.freeInodes -= 1
                if directory { groups[group].usedDirectories &+= 1 }
                return UInt32(group) * sb.inodesPerGroup + UInt32(bit) + 1
            }
        }
        throw .noSpace
    }

    /// Marks inode `number` free and counts it.
    func freeInode(_ number: UInt32, directory: Bool) throws(FileSystemError) {
        let sb = superblock
        guard number >= sb.firstInode, number <= sb.inodesCount else { throw .io }
        let group = Int((number - 1) / sb.inodesPerGroup)
        try clearBit(in: groups[group].inodeBitmap, Int((number - 1) % sb.inodesPerGroup))
        guard UInt32(groups[group].freeInodes) < sb.inodesPerGroup else { throw .io }
        groups[group].freeInodes += 1
        superblock.freeInodes += 1
        if directory && groups[group].usedDirectories > 0 { groups[group].usedDirectories -= 1 }
    }

    /// Sets the first clear bit at or after `from` and below `limit` in bitmap block
    /// `bitmap`; nil when there is none.
    func claimBit(in bitmap: UInt32, from: Int, limit: Int) throws(FileSystemError) -> Int? {
        let buffer = try cache.get(UInt64(bitmap))
        defer { cache.release(buffer) }
        let bytes = cache.bytes(buffer)
        let end = min(limit, bytes.count * 8)
        var bit = from
        while bit < end {
            let byte = bytes[bit >> 3]
            if byte == 0xFF && bit & 7 == 0 {
                bit += 8
                continue
            }
            if byte & (1 << UInt8(bit & 7)) == 0 {
                bytes[bit >> 3] = byte | (1 << UInt8(bit & 7))
                cache.markDirty(buffer)
                return bit
            }
            bit += 1
        }
        return nil
    }

    /// Clears `bit`, which must be set (`io` otherwise).
    func clearBit(in bitmap: UInt32, _ bit: Int) throws(FileSystemError) {
        let buffer = try cache.get(UInt64(bitmap))
        defer { cache.release(buffer) }
        let bytes = cache.bytes(buffer)
        guard bit >= 0, bit < bytes.count * 8 else { throw .io }
        let mask: UInt8 = 1 << UInt8(bit & 7)
        guard bytes[bit >> 3] & mask != 0 else { throw .io }
        bytes[bit >> 3] &= ~mask
        cache.markDirty(buffer)
    }
}
