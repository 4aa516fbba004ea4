// FUSE request encoding (fuse.h 7.31): the in header, the opcode's fixed body, then any
// names, each NUL-terminated, written into a caller buffer.
//
// Bodies by opcode (sizes in bytes):
//   LOOKUP, UNLINK, RMDIR   name\0
//   FORGET                  fuse_forget_in (8: le64 nlookup) -- the server never replies
//   GETATTR                 fuse_getattr_in (16: le32 getattr_flags, dummy; le64 fh)
//   SETATTR                 fuse_setattr_in (88, see `FUSESetAttributes`)
//   MKDIR                   fuse_mkdir_in (8: le32 mode, umask) + name\0
//   RENAME                  fuse_rename_in (8: le64 newdir) + old\0 + new\0
//   RENAME2                 fuse_rename2_in (16: le64 newdir; le32 flags, padding) + old\0 + new\0
//   OPEN, OPENDIR           fuse_open_in (8: le32 flags, unused)
//   READ, READDIR(PLUS)     fuse_read_in (40: le64 fh, offset; le32 size, read_flags;
//                           le64 lock_owner; le32 flags, padding)
//   WRITE                   fuse_write_in (40, same layout as read_in) + `size` data bytes
//   STATFS                  nothing
//   RELEASE, RELEASEDIR     fuse_release_in (24: le64 fh; le32 flags, release_flags; le64 lock_owner)
//   FLUSH                   fuse_flush_in (24: le64 fh; le32 unused, padding; le64 lock_owner)
//   INIT                    fuse_init_in (16 at 7.31: le32 major, minor, max_readahead, flags)
//   CREATE                  fuse_create_in (16: le32 flags, mode, umask, padding) + name\0
//
// Rules for callers:
//   * `encode` writes exactly `encodedSize` bytes and returns that count. For WRITE the header's
//     `len` also counts the `size` data bytes, which the caller places right after (same
//     buffer or next descriptor); `encodeWrite(..., data:)` copies them in instead.
//   * Names are refused (`.invalidName`) unless 1...1024 bytes with no NUL and no '/'.

/// `struct fuse_setattr_in`: which attributes to change (`valid`, FATTR_* bits) and their values.
public struct FUSESetAttributes: Equatable, Sendable {
    public static let size = 88
    /// FATTR_MODE, FATTR_UID, FATTR_GID, FATTR_SIZE, FATTR_ATIME, FATTR_MTIME, FATTR_FH.
    public static let validMode: UInt32 = 1 << 0
    public static let validUID: UInt32 = 1 << 1
    public static let validGID: UInt32 = 1 << 2
    public static let validSize: UInt32 = 1 << 3
    public static let validAtime: UInt32 = 1 << 4
    public static let validMtime: UInt32 = 1 << 5
    public static let validFileHandle: UInt32 = 1 << 6

    /// FATTR_* bits naming the fields below that apply.
    public var valid: UInt32 = 0
    public var fileHandle: UInt64 = 0
    public var size: UInt64 = 0
    public var lockOwner: UInt64 = 0
    public var atime: UInt64 = 0
    public var mtime: UInt64 = 0
    public var ctime: UInt64 = 0
    public var atimensec: UInt32 = 0
    public var mtimensec: UInt32 = 0
    public var ctimensec: UInt32 = 0
    public var mode: UInt32 = 0
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0

    public init() {}

    func encode(_ w: inout LittleEndianWriter) {
        w.u32(valid); w.u32(0)
        w.u64(fileHandle); w.u64(size); w.u64(lockOwner)
        w.u64(atime); w.u64(mtime); w.u64(ctime)
        w.u32(atimensec); w.u32(mtimensec); w.u32(ctimensec)
        w.u32(mode); w.u32(0); w.u32(uid); w.u32(gid); w.u32(0)
    }
}

/// One FUSE request: the opcode and its arguments. The node it acts on and `unique` are in
/// the `FUSERequestHeader` passed to `encode`.
public enum FUSERequest: Equatable, Sendable {
    case lookup(name: [UInt8])
    case forget(lookups: UInt64)
    /// GETATTR; with a handle, FUSE_GETATTR_FH is set.
    case getattr(fileHandle: UInt64?)
    case setattr(FUSESetAttributes)
    case mkdir(name: [UInt8], mode: UInt32, umask: UInt32)
    case unlink(name: [UInt8])
    case rmdir(name: [UInt8])
    /// RENAME: `name` in the header's node to `newName` in `newDirectory`.
    case rename(name: [UInt8], newDirectory: UInt64, newName: [UInt8])
    case rename2(name: [UInt8], newDirectory: UInt64, newName: [UInt8], flags: UInt32)
    case open(flags: UInt32)
    case read(fileHandle: UInt64, offset: UInt64, size: UInt32)
    /// WRITE header and fuse_write_in; the `size` data bytes follow (see the file comment).
    case write(fileHandle: UInt64, offset: UInt64, size: UInt32)
    case statfs
    case release(fileHandle: UInt64, flags: UInt32)
    case flush(fileHandle: UInt64, lockOwner: UInt64)
    /// INIT announcing 7.31.
    case initialize(maxReadahead: UInt32, flags: UInt32)
    case opendir(flags: UInt32)
    case readdir(fileHandle: UInt64, offset: UInt64, size: UInt32)
    case releasedir(fileHandle: UInt64, flags: UInt32)
    case create(name: [UInt8], flags: UInt32, mode: UInt32, umask: UInt32)
    case readdirplus(fileHandle: UInt64, offset: UInt64, size: UInt32)

    public var opcode: FUSEOpcode {
        switch self {
        case .lookup: return .lookup
        case .forget: return .forget
        case .getattr: return .getattr
        case .setattr: return .setattr
        case .mkdir: return .mkdir
        case .unlink: return .unlink
        case .rmdir: return .rmdir
        case .rename: return .rename
        case .rename2: return .rename2
        case .open: return .open
        case .read: return .read
        case .write: return .write
        case .statfs: return .statfs
        case .release: return .release
        case .flush: return .flush
        case .initialize: return .initialize
        case .opendir: return .opendir
        case .readdir: return .readdir
        case .releasedir: return .releasedir
        case .create: return .create
        case .readdirplus: return .readdirplus
        }
    }

    /// Size of the fixed body (after the in header, before any names).
    var bodySize: Int {
        switch self {
        case .lookup, .unlink, .rmdir, .statfs: return 0
        case .forget, .mkdir, .rename, .open, .opendir: return 8
        case .getattr, .rename2, .initialize, .create: return 16
        case .release, .releasedir, .flush: return 24
        case .read, .write, .readdir, .readdirplus: return 40
        case .setattr: return FUSESetAttributes.size
        }
    }

    /// The names that follow the body, in order (each sent with a NUL).
    var names: (first: [UInt8]?, second: [UInt8]?) {
        switch self {
        case .lookup(let name), .unlink(let name), .rmdir(let name): return (name, nil)
        case .mkdir(let name, _, _), .create(let name, _, _, _): return (name, nil)
        case .rename(let name, _, let newName), .rename2(let name, _, let newName, _): return (name, newName)
        default: return (nil, nil)
        }
    }

    /// Bytes `encode` writes: header, body, names with their NULs (not WRITE's data).
    public var encodedSize: Int {
        let (first, second) = names
        return FUSE.inHeaderSize + bodySize + (first.map { $0.count + 1 } ?? 0) + (second.map { $0.count + 1 } ?? 0)
    }

    /// Writes the request at the start of `buffer`; returns the bytes written (`encodedSize`).
    public func encode(into buffer: UnsafeMutableRawBufferPointer,
                       header: FUSERequestHeader) throws(FUSEError) -> Int {
        let (first, second) = names
        for name in [first, second] {
            guard let name else { continue }
            guard name.withUnsafeBytes({ FUSE.isValidName($0) }) else { throw .invalidName }
        }
        let count = encodedSize
        guard buffer.count >= count else { throw .bufferTooSmall }
        var messageLength = count
        if case .write(_, _, let size) = self { messageLength += Int(size) }
        guard messageLength <= Int(UInt32.max) else { throw .bufferTooSmall }

        var w = LittleEndianWriter(buffer)
        w.u32(UInt32(messageLength)); w.u32(opcode.rawValue); w.u64(header.unique); w.u64(header.nodeID)
        w.u32(header.uid); w.u32(header.gid); w.u32(header.pid); w.u16(0); w.u16(0)
        encodeBody(&w)
        if let first { first.withUnsafeBytes { w.name($0) } }
        if let second { second.withUnsafeBytes { w.name($0) } }
        return w.offset
    }

    /// WRITE with its data copied after the header: `size` is `data.count`.
    public static func encodeWrite(into buffer: UnsafeMutableRawBufferPointer, header: FUSERequestHeader,
                                   fileHandle: UInt64, offset: UInt64,
                                   data: UnsafeRawBufferPointer) throws(FUSEError) -> Int {
        guard data.count <= Int(UInt32.max) - FUSE.inHeaderSize - 40 else { throw .bufferTooSmall }
        let request = FUSERequest.write(fileHandle: fileHandle, offset: offset, size: UInt32(data.count))
        guard buffer.count - request.encodedSize >= data.count else { throw .bufferTooSmall }
        let written = try request.encode(into: buffer, header: header)
        var w = LittleEndianWriter(buffer)
        w.offset = written
        w.bytes(data)
        return w.offset
    }

    private func encodeBody(_ w: inout LittleEndianWriter) {
        switch self {
        case .lookup, .unlink, .rmdir, .statfs:
            break
        case .forget(let lookups):
            w.u64(lookups)
        case .getattr(let fileHandle):
            w.u32(fileHandle == nil ? 0 : 1); w.u32(0); w.u64(fileHandle ?? 0)
        case .setattr(let attributes):
            attributes.encode(&w)
        case .mkdir(_, let mode, let umask):
            w.u32(mode); w.u32(umask)
        case .rename(_, let newDirectory, _):
            w.u64(newDirectory)
        case .rename2(_, let newDirectory, _, let flags):
            w.u64(newDirectory); w.u32(flags); w.u32(0)
        case .open(let flags), .opendir(let flags):
            w.u32(flags); w.u32(0)
        case .read(let fh, let offset, let size), .write(let fh, let offset, let size),
             .readdir(let fh, let offset, let size), .readdirplus(let fh, let offset, let size):
            w.u64(fh); w.u64(offset); w.u32(size); w.u32(0); w.u64(0); w.u32(0); w.u32(0)
        case .release(let fh, let flags), .releasedir(let fh, let flags):
            w.u64(fh); w.u32(flags); w.u32(0); w.u64(0)
        case .flush(let fh, let lockOwner):
            w.u64(fh); w.u32(0); w.u32(0); w.u64(lockOwner)
        case .initialize(let maxReadahead, let flags):
            w.u32(FUSE.major); w.u32(FUSE.minor); w.u32(maxReadahead); w.u32(flags)
        case .create(_, let flags, let mode, let umask):
            w.u32(flags); w.u32(mode); w.u32(umask); w.u32(0)
        }
    }
}
