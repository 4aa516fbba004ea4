// The ext2 superblock (1,024 bytes at byte 1,024 of the disk): parsing, every check made
// before a mount, the feature sets this back-end understands, and the mount errors with
// their one-line messages. Layout: the Linux `struct ext2_super_block` (e2fsprogs
// lib/ext2fs/ext2_fs.h), revisions 0 (GOOD_OLD) and 1 (DYNAMIC).
//
// Features: an incompatible feature we do not know or handle refuses the mount (its name in
// the message); an unknown read-only-compatible feature allows a read-only mount only;
// compatible features are ignored, as their definition allows (a clean ext3 journal too).
// Everything read here is untrusted: each field that sizes a walk is bounded.

/// Why a mount was refused. `message` is the one line a user sees.
public enum Ext2MountError: Error, Sendable {
    /// The disk could not be read (or is too small to hold a superblock).
    case io
    /// No ext2 magic number (0xEF53) at byte 1,080.
    case notExt2
    /// A superblock or group descriptor field is impossible; the reason names it.
    case corrupt(reason: StaticString)
    /// `s_rev_level` above 1.
    case unsupportedRevision(UInt32)
    /// `s_log_block_size` gives a block size other than 1, 2 or 4 KiB.
    case unsupportedBlockSize(UInt32)
    /// Incompatible features present that this back-end does not handle (the bits).
    case incompatibleFeatures(UInt32)
    /// Read-only-compatible features it does not handle (the bits): mount read-only instead.
    case readOnlyFeatures(UInt32)
    /// A read-write mount of a file system not cleanly unmounted (or with errors): run e2fsck.
    case notClean
    /// A read-write mount on a read-only disk.
    case readOnlyDevice
    /// The buffer cache could not be made (`capacity` out of range).
    case badCacheCapacity

    /// One line naming the reason, e.g. `ext2: unsupported features: extent 64bit`, as bytes
    /// (no `String` in the kernel: its comparisons pull in the Unicode tables).
    public var message: [UInt8] {
        switch self {
        case .io: return bytes("ext2: the disk could not be read")
        case .notExt2: return bytes("ext2: no ext2 file system on the disk (bad magic number)")
        case .corrupt(let reason): return bytes("ext2: corrupt superblock or group descriptors: ") + bytes(reason)
        case .unsupportedRevision(let level): return bytes("ext2: unsupported revision ") + decimal(level)
        case .unsupportedBlockSize(let log): return bytes("ext2: unsupported block size, log ") + decimal(log)
        case .incompatibleFeatures(let bits):
            return bytes("ext2: unsupported features:") + Ext2Features.names(bits, Ext2Features.incompatibleNames)
        case .readOnlyFeatures(let bits):
            return bytes("ext2: features allow read-only mounting only:") + Ext2Features.names(bits, Ext2Features.readOnlyNames)
        case .notClean: return bytes("ext2: not cleanly unmounted; run e2fsck, or mount read-only")
        case .readOnlyDevice: return bytes("ext2: the disk is read-only; mount read-only")
        case .badCacheCapacity: return bytes("ext2: buffer cache capacity out of range")
        }
    }

    func bytes(_ text: StaticString) -> [UInt8] { ext2Bytes(text) }

    func decimal(_ value: UInt32) -> [UInt8] {
        var digits: [UInt8] = []
        var rest = value
        repeat { digits.append(UInt8(48 + rest % 10)); rest /= 10 } while rest > 0
        return digits.reversed()
    }
}

/// Feature bits (ext2_fs.h) and which ones this back-end handles.
enum Ext2Features {
    static let incompatibleFileType: UInt32 = 0x2
    static let incompatibleFlexBG: UInt32 = 0x200
    /// Incompatible features handled: `filetype` and `flex_bg` (which only moves bitmaps and
    /// inode tables; the group descriptors still say where).
    static let incompatibleSupported: UInt32 = incompatibleFileType | incompatibleFlexBG
    static let readOnlySparseSuper: UInt32 = 0x1
    static let readOnlyLargeFile: UInt32 = 0x2
    /// Read-only-compatible features a writer handles: `sparse_super`, `large_file`.
    static let readOnlySupported: UInt32 = readOnlySparseSuper | readOnlyLargeFile

    static let incompatibleNames: [(UInt32, StaticString)] = [
        (0x1, "compression"), (0x2, "filetype"), (0x4, "needs_recovery"), (0x8, "journal_dev"),
        (0x10, "meta_bg"), (0x40, "extent"), (0x80, "64bit"), (0x100, "mmp"), (0x200, "flex_bg"),
        (0x400, "ea_inode"), (0x1000, "dirdata"), (0x2000, "metadata_csum_seed"),
        (0x4000, "large_dir"), (0x8000, "inline_data"), (0x10000, "encrypt"), (0x20000, "casefold"),
    ]
    static let readOnlyNames: [(UInt32, StaticString)] = [
        (0x1, "sparse_super"), (0x2, "large_file"), (0x4, "btree_dir"), (0x8, "huge_file"),
        (0x10, "uninit_bg"), (0x20, "dir_nlink"), (0x40, "extra_isize"), (0x100, "quota"),
        (0x200, "bigalloc"), (0x400, "metadata_csum"), (0x800, "replica"), (0x1000, "read-only"),
        (0x2000, "project"), (0x4000, "shared_blocks"), (0x8000, "verity"),
    ]

    /// " name name unknown(0x...)" for the set bits of `bits`.
    static func names(_ bits: UInt32, _ table: [(UInt32, StaticString)]) -> [UInt8] {
        var text: [UInt8] = []
        var rest = bits
        for (bit, name) in table where rest & bit != 0 {
            text.append(0x20)
            text += ext2Bytes(name)
            rest &= ~bit
        }
        if rest != 0 {
            text += ext2Bytes(" unknown(0x")
            var digits: [UInt8] = []
            repeat {
                let nibble = UInt8(rest & 15)
                digits.append(nibble < 10 ? 48 + nibble : 87 + nibble)
                rest >>= 4
            } while rest > 0
            text += digits.reversed()
            text.append(0x29)
        }
        return text
    }
}

/// The superblock fields the back-end uses, checked. Written back: the free counts,
/// times, mount count and state (see `store`).
struct Ext2Superblock {
    var inodesCount: UInt32 = 0
    var blocksCount: UInt32 = 0
    var freeBlocks: UInt32 = 0
    var freeInodes: UInt32 = 0
    var firstDataBlock: UInt32 = 0
    var blockSize: Int = 1024
    var blocksPerGroup: UInt32 = 0
    var inodesPerGroup: UInt32 = 0
    var revision: UInt32 = 0
    var state: UInt16 = 0
    var firstInode: UInt32 = 11
    var inodeSize: Int = 128
    var compatible: UInt32 = 0
    var incompatible: UInt32 = 0
    var readOnlyCompatible: UInt32 = 0
    /// What new inodes get as `i_extra_isize` (0 for 128-byte inodes).
    var extraInodeSize: UInt16 = 0
    var groupCount: Int = 0

    static let magic: UInt16 = 0xEF53
    static let stateValid: UInt16 = 1
    static let stateErrors: UInt16 = 2

    /// Parses and checks the 1,024 superblock bytes against a disk of `diskBytes` bytes.
    static func parse(_ raw: UnsafeMutableRawBufferPointer, diskBytes: UInt64) throws(Ext2MountError) -> Ext2Superblock {
        guard raw.le16(56) == magic else { throw .notExt2 }
        var sb = Ext2Superblock()
        sb.revision = raw.le32(76)
        guard sb.revision <= 1 else { throw .unsupportedRevision(sb.revision) }
        let logBlock = raw.le32(24)
        guard logBlock <= 2 else { throw .unsupportedBlockSize(logBlock) }
        sb.blockSize = 1024 << Int(logBlock)
        sb.inodesCount = raw.le32(0)
        sb.blocksCount = raw.le32(4)
        sb.freeBlocks = raw.le32(12)
        sb.freeInodes = raw.le32(16)
        sb.firstDataBlock = raw.le32(20)
        sb.blocksPerGroup = raw.le32(32)
        sb.inodesPerGroup = raw.le32(40)
        sb.state = raw.le16(58)
        if sb.revision >= 1 {
            sb.firstInode = raw.le32(84)
            sb.inodeSize = Int(raw.le16(88))
            sb.compatible = raw.le32(92)
            sb.incompatible = raw.le32(96)
            sb.readOnlyCompatible = raw.le32(100)
        }
        let unsupported = sb.incompatible & ~Ext2Features.incompatibleSupported
        guard unsupported == 0 else { throw .incompatibleFeatures(unsupported) }

        let bits = UInt32(sb.blockSize * 8)
        guard sb.inodeSize >= 128, sb.inodeSize <= sb.blockSize, sb.inodeSize & (sb.inodeSize - 1) == 0 else {
            throw .corrupt(reason: "inode size")
        }
        guard sb.firstDataBlock == (sb.blockSize == 1024 ? 1 : 0) else { throw .corrupt(reason: "first data block") }
        guard sb.blocksCount > sb.firstDataBlock + 1 else { throw .corrupt(reason: "block count") }
        guard UInt64(sb.blocksCount) * UInt64(sb.blockSize) <= diskBytes else {
            throw .corrupt(reason: "file system larger than the disk")
        }
        guard sb.blocksPerGroup >= 8, sb.blocksPerGroup <= bits, sb.blocksPerGroup % 8 == 0 else {
            throw .corrupt(reason: "blocks per group")
        }
        guard sb.inodesPerGroup >= 1, sb.inodesPerGroup <= bits else { throw .corrupt(reason: "inodes per group") }
        let groups = (UInt64(sb.blocksCount - sb.firstDataBlock) + UInt64(sb.blocksPerGroup) - 1) / UInt64(sb.blocksPerGroup)
        guard UInt64(sb.inodesCount) == groups * UInt64(sb.inodesPerGroup) else { throw .corrupt(reason: "inode count") }
        sb.groupCount = Int(groups)
        guard sb.firstInode > 2, sb.firstInode < sb.inodesCount else { throw .corrupt(reason: "first inode") }
        guard sb.freeBlocks <= sb.blocksCount, sb.freeInodes <= sb.inodesCount else { throw .corrupt(reason: "free counts") }
        if sb.inodeSize > 128 {
            let want = raw.le16(0x15E)
            let room = sb.inodeSize - 128
            sb.extraInodeSize = (want >= 4 && Int(want) <= room && want & 3 == 0) ? want : UInt16(min(32, room))
        }
        return sb
    }

    /// Writes the fields this back-end changes into the superblock bytes; the rest stays.
    func store(into raw: UnsafeMutableRawBufferPointer, now: UInt32) {
        raw.setLE32(12, freeBlocks)
        raw.setLE32(16, freeInodes)
        raw.setLE32(48, now)
        raw.setLE16(58, state)
    }

    /// Group descriptor size: 32 bytes (ext2, no 64bit).
    static let descriptorSize = 32
    var descriptorsPerBlock: Int { blockSize / Ext2Superblock.descriptorSize }
    /// Block pointers per indirect block.
    var pointersPerBlock: Int { blockSize / 4 }
    var inodeTableBlocks: UInt32 { UInt32((Int(inodesPerGroup) * inodeSize + blockSize - 1) / blockSize) }
    /// Blocks in group `group` (the last one may be short).
    func blocksIn(group: Int) -> UInt32 {
        let start = firstDataBlock + UInt32(group) * blocksPerGroup
        return min(blocksPerGroup, blocksCount - start)
    }
}
