// ext2's block map: which disk block holds a file's logical block, through the 12 direct
// pointers and the single, double and triple indirect blocks (n = blockSize / 4 pointers
// each, so logical blocks 0-11, 12..12+n, then n^2, then n^3). A 0 pointer is a hole: it
// reads as zeros and a write allocates it (and any indirect block on the way).
//
// Bounds: a lookup follows at most 3 pointers, so a pointer cycle cannot loop. Freeing
// walks at most 3 levels deep (recursion of fixed depth, never data-driven), reads each
// indirect block it frees once, and stops with `io` at the first block already free,
// which is what a cycle or a shared block runs into. Every pointer followed is checked to
// lie inside the file system first.
//
// Rules for callers: the functions change `inode` (pointers, `sectors`) in memory; the
// caller writes it back with `writeInode` afterwards, also when they throw.

extension Ext2FileSystem {
    /// Logical blocks a file can address.
    var maxLogicalBlocks: UInt64 {
        let n = UInt64(superblock.pointersPerBlock)
        return 12 + n + n * n + n * n * n
    }

    var sectorsPerBlock: UInt32 { UInt32(superblock.blockSize / 512) }

    /// Checks that `block` lies inside the file system's data area.
    func check(_ block: UInt32) throws(FileSystemError) {
        guard block >= superblock.firstDataBlock, block < superblock.blocksCount, block != 0 else { throw .io }
    }

    /// The root slot in `i_block` and the indices within each indirect level for `logical`.
    func path(_ logical: UInt64) throws(FileSystemError) -> (root: Int, indices: [Int]) {
        let n = UInt64(superblock.pointersPerBlock)
        if logical < 12 { return (Int(logical), []) }
        var rest = logical - 12
        if rest < n { return (12, [Int(rest)]) }
        rest -= n
        if rest < n * n { return (13, [Int(rest / n), Int(rest % n)]) }
        rest -= n * n
        if rest < n * n * n { return (14, [Int(rest / (n * n)), Int(rest / n % n), Int(rest % n)]) }
        throw .tooLarge
    }

    /// The disk block of `logical`, 0 for a hole (or beyond what a file can address).
    func lookup(_ inode: Ext2Inode, _ logical: UInt64) throws(FileSystemError) -> UInt32 {
        guard logical < maxLogicalBlocks else { return 0 }
        let (root, indices) = try path(logical)
        var pointer = inode.block[root]
        for index in indices {
            if pointer == 0 { return 0 }
            try check(pointer)
            let buffer = try cache.get(UInt64(pointer))
            pointer = cache.bytes(buffer).le32(index * 4)
            cache.release(buffer)
        }
        if pointer != 0 { try check(pointer) }
        return pointer
    }

    /// The disk block of `logical`, allocating it and the indirect blocks on its way when
    /// missing. `fresh` says the data block was just allocated (its contents are stale:
    /// the caller zeroes or overwrites it, through `getZeroed`).
    func map(_ inode: inout Ext2Inode, _ logical: UInt64, fresh: inout Bool) throws(FileSystemError) -> UInt32 {
        let (root, indices) = try path(logical)
        fresh = false
        var pointer = inode.block[root]
        if pointer == 0 {
            pointer = try allocateBlock(goal: allocationGoal)
            allocationGoal = pointer + 1
            inode.block[root] = pointer
            inode.sectors &+= sectorsPerBlock
            if indices.isEmpty {
                fresh = true
            } else {
                cache.release(try cache.getZeroed(UInt64(pointer)))
            }
        }
        for (level, index) in indices.enumerated() {
            try check(pointer)
            let buffer = try cache.get(UInt64(pointer))
            var next = cache.bytes(buffer).le32(index * 4)
            var zeroChild = false
            if next == 0 {
                do throws(FileSystemError) {
                    next = try allocateBlock(goal: allocationGoal)
                } catch {
                    cache.release(buffer)
                    throw error
                }
                allocationGoal = next + 1
                cache.bytes(buffer).setLE32(index * 4, next)
                cache.markDirty(buffer)
                inode.sectors &+= sectorsPerBlock
                if level == indices.count - 1 { fresh = true } else { zeroChild = true }
            }
            cache.release(buffer)
            if zeroChild { cache.release(try cache.getZeroed(UInt64(next))) }
            pointer = next
        }
        try check(pointer)
        return pointer
    }

    /// Frees every block holding logical blocks `first` and later, with the indirect
    /// blocks left empty, and clears their pointers.
    func freeBlocks(_ inode: inout Ext2Inode, from first: UInt64) throws(FileSystemError) {
        for index in 0..<12 where UInt64(index) >= first && inode.block[index] != 0 {
            try freeBlock(inode.block[index])
            inode.block[index] = 0
            inode.sectors &-= sectorsPerBlock
        }
        let n = UInt64(superblock.pointersPerBlock)
        var start: UInt64 = 12, span = n
        for level in 1...3 {
            let root = 11 + level
            let pointer = inode.block[root]
            if pointer != 0 && first < start + span {
                if try freeTree(&inode, pointer, level: level, start: start, first: first) {
                    try freeBlock(pointer)
                    inode.block[root] = 0
                    inode.sectors &-= sectorsPerBlock
                }
            }
            start += span
            span *= n
        }
    }

    /// Frees what indirect block `pointer` (at `level`, 1-3, mapping logical blocks from
    /// `start`) holds from `first` on; true when it then maps nothing (the caller frees it).
    func freeTree(_ inode: inout Ext2Inode, _ pointer: UInt32, level: Int, start: UInt64, first: UInt64) throws(FileSystemError) -> Bool {
        try check(pointer)
        let n = superblock.pointersPerBlock
        var childSpan: UInt64 = 1
        for _ in 1..<level { childSpan *= UInt64(n) }
        var pointers = [UInt32](repeating: 0, count: n)
        let buffer = try cache.get(UInt64(pointer))
        let bytes = cache.bytes(buffer)
        for index in 0..<n { pointers[index] = bytes.le32(index * 4) }
        cache.release(buffer)
        var changed = false, remaining = false
        for index in 0..<n where pointers[index] != 0 {
            let childStart = start + UInt64(index) * childSpan
            if childStart + childSpan <= first {
                remaining = true
                continue
            }
            let child = pointers[index]
            let empty = level == 1 ? true : try freeTree(&inode, child, level: level - 1, start: childStart, first: first)
            if empty {
                try freeBlock(child)
                pointers[index] = 0
                inode.sectors &-= sectorsPerBlock
                changed = true
            } else {
                remaining = true
            }
        }
        if changed && remaining {
            let buffer = try cache.get(UInt64(pointer))
            let bytes = cache.bytes(buffer)
            for index in 0..<n { bytes.setLE32(index * 4, pointers[index]) }
            cache.markDirty(buffer)
            cache.release(buffer)
        }
        return !remaining
    }
}
