// FUSE reply structures (fuse.h, 7.31), decoded from replies `FUSEReply` has already
// length-checked, and encoded by a server (and by tests that play one).
//
//   fuse_attr        (88): le64 ino, size, blocks, atime, mtime, ctime;
//                          le32 atimensec, mtimensec, ctimensec, mode, nlink, uid, gid,
//                          rdev, blksize, flags
//   fuse_entry_out  (128): le64 nodeid, generation, entry_valid, attr_valid;
//                          le32 entry_valid_nsec, attr_valid_nsec; fuse_attr
//   fuse_attr_out   (104): le64 attr_valid; le32 attr_valid_nsec, dummy; fuse_attr
//   fuse_open_out    (16): le64 fh; le32 open_flags, padding
//   fuse_kstatfs     (80): le64 blocks, bfree, bavail, files, ffree;
//                          le32 bsize, namelen, frsize, padding, spare[6]
//   fuse_init_out    (64): le32 major, minor, max_readahead, flags; le16 max_background,
//                          congestion_threshold; le32 max_write, time_gran;
//                          le16 max_pages, map_alignment; le32 unused[8]
//
// Fields are written by the server; the values are carried, not interpreted, here.

/// `struct fuse_attr`: an inode's attributes.
public struct FUSEAttributes: Equatable, Sendable {
    public static let size = 88
    public var ino: UInt64 = 0
    public var size: UInt64 = 0
    public var blocks: UInt64 = 0
    public var atime: UInt64 = 0
    public var mtime: UInt64 = 0
    public var ctime: UInt64 = 0
    public var atimensec: UInt32 = 0
    public var mtimensec: UInt32 = 0
    public var ctimensec: UInt32 = 0
    /// st_mode: file type (S_IFMT bits) and permissions.
    public var mode: UInt32 = 0
    public var nlink: UInt32 = 0
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var rdev: UInt32 = 0
    public var blksize: UInt32 = 0
    public var flags: UInt32 = 0

    public init() {}

    init(_ r: inout LittleEndianReader) {
        ino = r.u64(); size = r.u64(); blocks = r.u64()
        atime = r.u64(); mtime = r.u64(); ctime = r.u64()
        atimensec = r.u32(); mtimensec = r.u32(); ctimensec = r.u32()
        mode = r.u32(); nlink = r.u32(); uid = r.u32(); gid = r.u32()
        rdev = r.u32(); blksize = r.u32(); flags = r.u32()
    }

    func encode(_ w: inout LittleEndianWriter) {
        w.u64(ino); w.u64(size); w.u64(blocks)
        w.u64(atime); w.u64(mtime); w.u64(ctime)
        w.u32(atimensec); w.u32(mtimensec); w.u32(ctimensec)
        w.u32(mode); w.u32(nlink); w.u32(uid); w.u32(gid)
        w.u32(rdev); w.u32(blksize); w.u32(flags)
    }
}

/// `struct fuse_entry_out`: the answer to LOOKUP, MKDIR, CREATE; one per READDIRPLUS record.
/// A `nodeID` of 0 is a negative entry (cacheable "no such name"), not an inode.
public struct FUSEEntry: Equatable, Sendable {
    public static let size = 128
    public var nodeID: UInt64 = 0
    public var generation: UInt64 = 0
    public var entryValid: UInt64 = 0
    public var attrValid: UInt64 = 0
    public var entryValidNsec: UInt32 = 0
    public var attrValidNsec: UInt32 = 0
    public var attributes = FUSEAttributes()

    public init() {}

    init(_ r: inout LittleEndianReader) {
        nodeID = r.u64(); generation = r.u64(); entryValid = r.u64(); attrValid = r.u64()
        entryValidNsec = r.u32(); attrValidNsec = r.u32()
        attributes = FUSEAttributes(&r)
    }

    func encode(_ w: inout LittleEndianWriter) {
        w.u64(nodeID); w.u64(generation); w.u64(entryValid); w.u64(attrValid)
        w.u32(entryValidNsec); w.u32(attrValidNsec)
        attributes.encode(&w)
    }

    /// Writes the 128 bytes at the start of `buffer` (a server's reply body).
    public func encode(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= FUSEEntry.size, "fuse_entry_out buffer too small")
        var w = LittleEndianWriter(buffer)
        encode(&w)
    }
}

/// `struct fuse_attr_out`: the answer to GETATTR and SETATTR.
public struct FUSEAttributesReply: Equatable, Sendable {
    public static let size = 104
    public var attrValid: UInt64 = 0
    public var attrValidNsec: UInt32 = 0
    public var attributes = FUSEAttributes()

    public init() {}

    init(_ r: inout LittleEndianReader) {
        attrValid = r.u64(); attrValidNsec = r.u32(); r.skip(4)
        attributes = FUSEAttributes(&r)
    }

    /// Writes the 104 bytes at the start of `buffer` (a server's reply body).
    public func encode(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= FUSEAttributesReply.size, "fuse_attr_out buffer too small")
        var w = LittleEndianWriter(buffer)
        w.u64(attrValid); w.u32(attrValidNsec); w.u32(0)
        attributes.encode(&w)
    }
}

/// `struct fuse_open_out`: the answer to OPEN, OPENDIR, and the tail of CREATE's.
public struct FUSEOpenReply: Equatable, Sendable {
    public static let size = 16
    /// The server's file handle, passed back in READ/WRITE/FLUSH/RELEASE.
    public var fileHandle: UInt64 = 0
    /// FOPEN_* flags (direct I/O, keep cache, ...).
    public var openFlags: UInt32 = 0

    public init(fileHandle: UInt64 = 0, openFlags: UInt32 = 0) {
        self.fileHandle = fileHandle
        self.openFlags = openFlags
    }

    init(_ r: inout LittleEndianReader) {
        fileHandle = r.u64(); openFlags = r.u32(); r.skip(4)
    }
}

/// `struct fuse_statfs_out` (a `fuse_kstatfs`): the answer to STATFS.
public struct FUSEStatfs: Equatable, Sendable {
    public static let size = 80
    public var blocks: UInt64 = 0
    public var freeBlocks: UInt64 = 0
    public var availableBlocks: UInt64 = 0
    public var files: UInt64 = 0
    public var freeFiles: UInt64 = 0
    public var blockSize: UInt32 = 0
    public var nameLength: UInt32 = 0
    public var fragmentSize: UInt32 = 0

    public init() {}

    init(_ r: inout LittleEndianReader) {
        blocks = r.u64(); freeBlocks = r.u64(); availableBlocks = r.u64()
        files = r.u64(); freeFiles = r.u64()
        blockSize = r.u32(); nameLength = r.u32(); fragmentSize = r.u32()
        r.skip(4 + 24)
    }
}

/// `struct fuse_init_out`, with `maxWrite` already clamped by `FUSEReply.initialize`.
public struct FUSEInitReply: Equatable, Sendable {
    public static let size = 64
    public var major: UInt32 = 0
    public var minor: UInt32 = 0
    public var maxReadahead: UInt32 = 0
    /// FUSE_* capability flags the server accepted.
    public var flags: UInt32 = 0
    public var maxBackground: UInt16 = 0
    public var congestionThreshold: UInt16 = 0
    /// Largest WRITE payload: the server's value clamped to 4096...caller's cap.
    public var maxWrite: UInt32 = 0
    public var timeGranularity: UInt32 = 0
    public var maxPages: UInt16 = 0
    public var mapAlignment: UInt16 = 0

    public init() {}

    init(_ r: inout LittleEndianReader) {
        major = r.u32(); minor = r.u32(); maxReadahead = r.u32(); flags = r.u32()
        maxBackground = r.u16(); congestionThreshold = r.u16()
        maxWrite = r.u32(); timeGranularity = r.u32()
        maxPages = r.u16(); mapAlignment = r.u16()
        r.skip(32)
    }

    /// Writes the 64 bytes at the start of `buffer` (a server's reply body).
    public func encode(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= FUSEInitReply.size, "fuse_init_out buffer too small")
        var w = LittleEndianWriter(buffer)
        w.u32(major); w.u32(minor); w.u32(maxReadahead); w.u32(flags)
        w.u16(maxBackground); w.u16(congestionThreshold)
        w.u32(maxWrite); w.u32(timeGranularity)
        w.u16(maxPages); w.u16(mapAlignment)
        w.zeros(32)
    }
}
