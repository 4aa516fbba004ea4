// One ext2 inode's fields as this back-end uses them (the first 128 bytes of the on-disk
// inode; a larger inode's extra part is left as it is, except that a new inode gets
// `i_extra_isize`). Layout: `struct ext2_inode`, e2fsprogs lib/ext2fs/ext2_fs.h.
//
// `encode` writes only the fields decoded here, so flags, owners, generation and the OS
// fields this back-end does not understand survive a rewrite.

struct Ext2Inode {
    var mode: UInt16 = 0
    /// Bytes: `i_size`, plus `i_size_high` << 32 for regular files (revision 1).
    var size: UInt64 = 0
    var accessTime: UInt32 = 0
    var changeTime: UInt32 = 0
    var modificationTime: UInt32 = 0
    var deletionTime: UInt32 = 0
    var links: UInt16 = 0
    /// `i_blocks`: 512-byte units held, data and indirect blocks (and an xattr block) alike.
    var sectors: UInt32 = 0
    var flags: UInt32 = 0
    /// `i_block`: 12 direct pointers, then single, double and triple indirect.
    var block: [UInt32] = Array(repeating: 0, count: 15)
    /// `i_file_acl`: the extended-attribute block, or 0.
    var attributeBlock: UInt32 = 0

    static let typeMask: UInt16 = 0xF000
    static let typeFile: UInt16 = 0x8000
    static let typeDirectory: UInt16 = 0x4000
    static let typeSymlink: UInt16 = 0xA000
    /// EXT2_INDEX_FL: a hashed (htree) directory; read linearly, cleared when changed.
    static let indexFlag: UInt32 = 0x1000

    init() {}

    init(decoding raw: UnsafeMutableRawBufferPointer, revision: UInt32) {
        mode = raw.le16(0)
        size = UInt64(raw.le32(4))
        accessTime = raw.le32(8)
        changeTime = raw.le32(12)
        modificationTime = raw.le32(16)
        deletionTime = raw.le32(20)
        links = raw.le16(26)
        sectors = raw.le32(28)
        flags = raw.le32(32)
        for index in 0..<15 { block[index] = raw.le32(40 + 4 * index) }
        attributeBlock = raw.le32(104)
        if revision >= 1 && mode & Ext2Inode.typeMask == Ext2Inode.typeFile {
            size |= UInt64(raw.le32(108)) << 32
        }
    }

    func encode(into raw: UnsafeMutableRawBufferPointer, revision: UInt32) {
        raw.setLE16(0, mode)
        raw.setLE32(4, UInt32(truncatingIfNeeded: size))
        raw.setLE32(8, accessTime)
        raw.setLE32(12, changeTime)
        raw.setLE32(16, modificationTime)
        raw.setLE32(20, deletionTime)
        raw.setLE16(26, links)
        raw.setLE32(28, sectors)
        raw.setLE32(32, flags)
        for index in 0..<15 { raw.setLE32(40 + 4 * index, block[index]) }
        raw.setLE32(104, attributeBlock)
        if revision >= 1 && mode & Ext2Inode.typeMask == Ext2Inode.typeFile {
            raw.setLE32(108, UInt32(truncatingIfNeeded: size >> 32))
        }
    }

    var kind: FileKind {
        switch mode & Ext2Inode.typeMask {
        case Ext2Inode.typeFile: return .file
        case Ext2Inode.typeDirectory: return .directory
        case Ext2Inode.typeSymlink: return .symlink
        default: return .other
        }
    }

    /// The directory-entry `file_type` for this inode's kind (filetype feature).
    var directoryEntryType: UInt8 {
        switch mode & Ext2Inode.typeMask {
        case Ext2Inode.typeFile: return 1
        case Ext2Inode.typeDirectory: return 2
        case 0x2000: return 3
        case 0x6000: return 4
        case 0x1000: return 5
        case 0xC000: return 6
        case Ext2Inode.typeSymlink: return 7
        default: return 0
        }
    }

    /// A fast symlink keeps its target in `i_block` and owns no data block: its sectors are
    /// at most its extended-attribute block's (Linux's ext2_inode_is_fast_symlink). The
    /// size is not consulted: a fast link's size of 60 or more is damage, for the reader.
    func isFastSymlink(sectorsPerBlock: UInt32) -> Bool {
        kind == .symlink && sectors <= (attributeBlock != 0 ? sectorsPerBlock : 0)
    }
}
