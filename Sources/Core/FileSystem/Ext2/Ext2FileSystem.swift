// ext2, read and write, as a `FileSystem` back-end over a `BufferCache`: mounting (every
// superblock and group-descriptor check), the in-memory copies of the counts, inodes read
// and written in place, `sync` and `unmount`. The other files of this folder add the
// block map (Ext2BlockMap), the bitmaps (Ext2Allocator), directories (Ext2Directory) and
// the `FileSystem` operations (Ext2Operations).
//
// On-disk layout (e2fsprogs lib/ext2fs/ext2_fs.h; "The Second Extended File System",
// Poirier): block groups of `blocksPerGroup` blocks, each with a block bitmap, an inode
// bitmap and an inode table that its 32-byte group descriptor locates; the descriptors
// follow the superblock, in the block after `firstDataBlock`.
//
// Consistency: bitmaps, inodes and directory blocks change in the cache as each operation
// runs; the superblock's and group descriptors' counts are kept here and written into
// the cache by `sync`/`unmount` (nothing else writes them). A read-write mount writes
// `s_state` not-clean at once; a clean `unmount` writes it clean again. Only the primary
// superblock and descriptors are updated (as Linux does); e2fsck reads those.
//
// Distrust: the image is untrusted input. Every block number is checked against the file
// system before it is read, every walk is bounded (indirect depth 3, directory entries by
// `rec_len` within their block, a freed block must have been in use), and an impossible
// value is `FileSystemError.io`, never a trap.
//
// Rules for callers: not thread-safe (serialise calls, as the VFS does). After `unmount`
// every call throws `io`. Call `sync` for durability (fsync, periodically); `unmount`
// before the disk goes away.

public final class Ext2FileSystem: FileSystem {
    struct Group {
        var blockBitmap: UInt32
        var inodeBitmap: UInt32
        var inodeTable: UInt32
        var freeBlocks: UInt16
        var freeInodes: UInt16
        var usedDirectories: UInt16
    }

    struct OpenFile {
        let id: UInt64
        let inode: UInt32
        let flags: OpenFlags
        /// The file was created, truncated or written through this handle: its close syncs.
        var changed = false
    }

    public let cache: BufferCache
    public let isReadOnly: Bool
    var superblock: Ext2Superblock
    var groups: [Group]
    var handles: [OpenFile] = []
    var nextHandle: UInt64 = 1
    var mounted = true
    /// When the last sync ran (the clock's seconds), and how long dirty blocks may wait in
    /// the cache while writes go on: a write after that syncs (and a close after writing
    /// always does).
    var lastSync: UInt64 = 0
    public var syncIntervalSeconds: UInt64 = 5
    /// The most entries one listing returns (as the virtio-fs client's bound): a folder of a
    /// hostile image could otherwise hold millions of 12-byte entries, each a heap object
    /// once listed. Beyond it `readDirectory` throws `.tooLarge` with one log line.
    public var maximumListing = 65_536
    /// Where the next block search starts: after the last block allocated.
    var allocationGoal: UInt32 = 0
    let now: () -> UInt64
    /// Handles a mount may hold at once.
    public static let maxHandles = 1024
    static let rootInode: UInt32 = 2

    init(cache: BufferCache, superblock: Ext2Superblock, groups: [Group], readOnly: Bool, clock: @escaping () -> UInt64) {
        self.cache = cache
        self.superblock = superblock
        self.groups = groups
        self.isReadOnly = readOnly
        self.now = clock
    }

    var seconds: UInt32 { UInt32(truncatingIfNeeded: now()) }

    // MARK: Mounting

    /// Mounts the ext2 file system on `device` with a cache of `cacheCapacity` blocks.
    /// `readOnly` mounts change nothing on the disk. Refusals say why in one line (`message`).
    public static func mount(device: any BlockDevice, cacheCapacity: Int, readOnly: Bool,
                             clock: @escaping () -> UInt64 = MemoryFileSystem.wallClockSeconds) throws(Ext2MountError) -> Ext2FileSystem {
        let sector = device.sectorSize
        guard sector > 0, sector <= 1024, 1024 % sector == 0 else { throw .io }
        let diskBytes = device.sectorCount &* UInt64(sector)
        guard diskBytes >= 2048, device.sectorCount < UInt64(1) << 50 else { throw .io }
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 1024, alignment: 16)
        defer { raw.deallocate() }
        do throws(BlockDeviceError) {
            try device.read(sector: UInt64(1024 / sector), into: raw)
        } catch {
            throw .io
        }
        var superblock = try Ext2Superblock.parse(raw, diskBytes: diskBytes)
        if !readOnly {
            let unknown = superblock.readOnlyCompatible & ~Ext2Features.readOnlySupported
            guard unknown == 0 else { throw .readOnlyFeatures(unknown) }
            guard !device.isReadOnly else { throw .readOnlyDevice }
            guard superblock.state & Ext2Superblock.stateValid != 0,
                  superblock.state & Ext2Superblock.stateErrors == 0 else { throw .notClean }
        }
        let cache: BufferCache
        do throws(BufferCache.ConfigurationError) {
            cache = try BufferCache(device: device, blockSize: superblock.blockSize, capacity: cacheCapacity)
        } catch {
            throw .badCacheCapacity
        }
        let groups = try readGroups(cache: cache, superblock: superblock)
        let fs = Ext2FileSystem(cache: cache, superblock: superblock, groups: groups, readOnly: readOnly, clock: clock)
        var rootIsFolder = false
        do throws(FileSystemError) {
            let root = try fs.readInode(rootInode)
            rootIsFolder = root.kind == .directory && root.links > 0
        } catch {
            throw .io
        }
        guard rootIsFolder else { throw .corrupt(reason: "the root inode is not a folder") }
        if !readOnly {
            superblock.state &= ~Ext2Superblock.stateValid
            fs.superblock = superblock
            do throws(FileSystemError) {
                try fs.writeSuperblock(mounting: true)
                try cache.sync()
            } catch {
                throw .io
            }
        }
        return fs
    }

    static func readGroups(cache: BufferCache, superblock sb: Ext2Superblock) throws(Ext2MountError) -> [Group] {
        var groups: [Group] = []
        groups.reserveCapacity(sb.groupCount)
        let tableBlocks = sb.inodeTableBlocks
        for index in 0..<sb.groupCount {
            let block = UInt64(sb.firstDataBlock) + 1 + UInt64(index / sb.descriptorsPerBlock)
            let offset = (index % sb.descriptorsPerBlock) * Ext2Superblock.descriptorSize
            let group: Group
            do throws(FileSystemError) {
                let buffer = try cache.get(block)
                let raw = cache.bytes(buffer).slice(offset, Ext2Superblock.descriptorSize)
                group = Group(blockBitmap: raw.le32(0), inodeBitmap: raw.le32(4), inodeTable: raw.le32(8),
                              freeBlocks: raw.le16(12), freeInodes: raw.le16(14), usedDirectories: raw.le16(16))
                cache.release(buffer)
            } catch {
                throw .io
            }
            func inside(_ block: UInt32, _ count: UInt32) -> Bool {
                block >= sb.firstDataBlock && UInt64(block) + UInt64(count) <= UInt64(sb.blocksCount)
            }
            guard inside(group.blockBitmap, 1), inside(group.inodeBitmap, 1), inside(group.inodeTable, tableBlocks) else {
                throw .corrupt(reason: "group descriptor block numbers")
            }
            guard UInt32(group.freeBlocks) <= sb.blocksIn(group: index), UInt32(group.freeInodes) <= sb.inodesPerGroup,
                  UInt32(group.usedDirectories) <= sb.inodesPerGroup else {
                throw .corrupt(reason: "group descriptor counts")
            }
            groups.append(group)
        }
        return groups
    }

    // MARK: Writing back

    /// Writes the counts into the cache, then writes every dirty block and flushes the disk.
    public func sync() throws(FileSystemError) {
        guard mounted else { throw .io }
        guard !isReadOnly else { return }
        lastSync = now()
        try writeSuperblock(mounting: false)
        try cache.sync()
    }

    /// Syncs when `syncIntervalSeconds` have passed since the last sync: called after each
    /// write, so a long-running writer's data reaches the disk periodically.
    func syncIfDue() throws(FileSystemError) {
        let current = now()
        if current >= lastSync &+ syncIntervalSeconds || current < lastSync { try sync() }
    }

    /// Frees what open-but-unlinked files hold, marks the file system clean and writes
    /// everything out. The file system is unusable afterwards, even when this throws.
    public func unmount() throws(FileSystemError) {
        guard mounted else { throw .io }
        defer { mounted = false }
        guard !isReadOnly else { return }
        let open = handles
        handles = []
        for file in open { try releaseIfOrphan(file.inode) }
        superblock.state |= Ext2Superblock.stateValid
        try writeSuperblock(mounting: false)
        try cache.sync()
    }

    /// The superblock's changed fields and every group descriptor, into the cache.
    func writeSuperblock(mounting: Bool) throws(FileSystemError) {
        let size = superblock.blockSize
        let sbBuffer = try cache.get(UInt64(1024 / size))
        let raw = cache.bytes(sbBuffer).slice(1024 % size, 1024)
        superblock.store(into: raw, now: seconds)
        if mounting {
            raw.setLE32(44, seconds)
            raw.setLE16(52, raw.le16(52) &+ 1)
        }
        cache.markDirty(sbBuffer)
        cache.release(sbBuffer)
        let perBlock = superblock.descriptorsPerBlock
        var index = 0
        while index < groups.count {
            let buffer = try cache.get(UInt64(superblock.firstDataBlock) + 1 + UInt64(index / perBlock))
            let bytes = cache.bytes(buffer)
            var slot = index % perBlock
            while slot < perBlock && index < groups.count {
                let raw = bytes.slice(slot * Ext2Superblock.descriptorSize, Ext2Superblock.descriptorSize)
                raw.setLE16(12, groups[index].freeBlocks)
                raw.setLE16(14, groups[index].freeInodes)
                raw.setLE16(16, groups[index].usedDirectories)
                slot += 1
                index += 1
            }
            cache.markDirty(buffer)
            cache.release(buffer)
        }
    }

    // MARK: Inodes

    /// Where inode `number` lives: its table block and byte offset there.
    func location(of number: UInt32) throws(FileSystemError) -> (block: UInt64, offset: Int) {
        guard number >= 1, number <= superblock.inodesCount else { throw .io }
        let group = Int((number - 1) / superblock.inodesPerGroup)
        let byte = Int((number - 1) % superblock.inodesPerGroup) * superblock.inodeSize
        return (UInt64(groups[group].inodeTable) + UInt64(byte / superblock.blockSize), byte % superblock.blockSize)
    }

    func readInode(_ number: UInt32) throws(FileSystemError) -> Ext2Inode {
        let (block, offset) = try location(of: number)
        let buffer = try cache.get(block)
        defer { cache.release(buffer) }
        return Ext2Inode(decoding: cache.bytes(buffer).slice(offset, 128), revision: superblock.revision)
    }

    /// Stores `inode`'s fields; `fresh` first zeroes the whole on-disk inode (a new one).
    func writeInode(_ number: UInt32, _ inode: Ext2Inode, fresh: Bool = false) throws(FileSystemError) {
        guard !isReadOnly else { throw .readOnly }
        let (block, offset) = try location(of: number)
        let buffer = try cache.get(block)
        defer { cache.release(buffer) }
        let raw = cache.bytes(buffer).slice(offset, superblock.inodeSize)
        if fresh {
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            if superblock.inodeSize > 128 { raw.setLE16(128, superblock.extraInodeSize) }
        }
        inode.encode(into: raw, revision: superblock.revision)
        cache.markDirty(buffer)
    }
}
