// FUSE request decoding for a server (fuse.h 7.31): the in header checked against the bytes
// received, then the opcode's fixed body and NUL-terminated names, each bounds-checked.
//
// `FUSEIncomingRequest(bytes)` accepts a request only when
//   * at least the 40-byte in header arrived (`.truncated`),
//   * header `len` is at least 40 and no more than the bytes received (`.truncated`); bytes
//     after `len` are ignored (a device-readable part may be padded);
//   * the opcode's fixed body fits inside `len` (`.truncated`), WRITE's `size` data bytes
//     too, and each name is 1...1024 bytes with no '/' before its NUL (`.invalidName`).
// Opcodes this file does not know decode to `.unknown(opcode)` (the server answers ENOSYS).
//
// Bodies beyond FUSERequest.swift's list (sizes in bytes):
//   FSYNC, FSYNCDIR   fuse_fsync_in (16: le64 fh; le32 fsync_flags, padding)
//   ACCESS            fuse_access_in (8: le32 mask, padding)
//   BATCH_FORGET      fuse_batch_forget_in (8: le32 count, dummy) + count * fuse_forget_one
//                     (16: le64 nodeid, nlookup)
//   DESTROY           nothing;  MKNOD, SYMLINK, LINK: not decoded (`.refused`)
//
// Rules for callers: the decoded request points into `bytes` (names, WRITE data): use it
// before the buffer is reused. "." and ".." pass `FUSE.isValidName`; refusing them is the
// server's policy.

/// Opcodes a server sees beyond `FUSEOpcode` (fuse.h `enum fuse_opcode`).
public enum FUSEServerOpcode {
    public static let symlink: UInt32 = 6
    public static let mknod: UInt32 = 8
    public static let link: UInt32 = 13
    public static let fsync: UInt32 = 20
    public static let fsyncdir: UInt32 = 30
    public static let access: UInt32 = 34
    public static let destroy: UInt32 = 38
    public static let batchForget: UInt32 = 42
    /// fuse_getattr_in.getattr_flags: `fh` is valid.
    public static let getattrFileHandle: UInt32 = 1
    /// FATTR_ATIME_NOW / FATTR_MTIME_NOW: set the time to the server's clock.
    public static let setAtimeNow: UInt32 = 1 << 7
    public static let setMtimeNow: UInt32 = 1 << 8
}

/// What one request asks, its fields decoded.
public enum FUSEOperation {
    case initialize(major: UInt32, minor: UInt32, maxReadahead: UInt32, flags: UInt32)
    case destroy
    case lookup(name: UnsafeRawBufferPointer)
    case forget(lookups: UInt64)
    /// `count` (node id, nlookup) pairs, read with `FUSEIncomingRequest.forgetEntry`.
    case batchForget(entries: UnsafeRawBufferPointer, count: Int)
    case getattr(fileHandle: UInt64?)
    case setattr(FUSESetAttributes)
    case open(flags: UInt32)
    case opendir(flags: UInt32)
    case read(fileHandle: UInt64, offset: UInt64, size: UInt32)
    case readdir(fileHandle: UInt64, offset: UInt64, size: UInt32)
    case readdirplus(fileHandle: UInt64, offset: UInt64, size: UInt32)
    case write(fileHandle: UInt64, offset: UInt64, data: UnsafeRawBufferPointer)
    case flush(fileHandle: UInt64)
    case fsync(fileHandle: UInt64, flags: UInt32)
    case fsyncdir(fileHandle: UInt64, flags: UInt32)
    case release(fileHandle: UInt64, flags: UInt32)
    case releasedir(fileHandle: UInt64, flags: UInt32)
    case statfs
    case create(name: UnsafeRawBufferPointer, flags: UInt32, mode: UInt32, umask: UInt32)
    case mkdir(name: UnsafeRawBufferPointer, mode: UInt32, umask: UInt32)
    case unlink(name: UnsafeRawBufferPointer)
    case rmdir(name: UnsafeRawBufferPointer)
    case rename(name: UnsafeRawBufferPointer, newDirectory: UInt64, newName: UnsafeRawBufferPointer, flags: UInt32)
    case access(mask: UInt32)
    /// MKNOD, SYMLINK, LINK: known, never carried out.
    case refused(opcode: UInt32)
    case unknown(opcode: UInt32)
}

/// A checked request: its header fields and decoded operation.
public struct FUSEIncomingRequest {
    public let opcode: UInt32
    public let unique: UInt64
    public let nodeID: UInt64
    public let uid: UInt32
    public let gid: UInt32
    public let pid: UInt32
    public let operation: FUSEOperation

    /// The `unique` of a request at least 16 bytes long, even one that fails to decode, so
    /// the server can still answer it with an error. Nil when no header is there.
    public static func peekUnique(_ bytes: UnsafeRawBufferPointer) -> (unique: UInt64, opcode: UInt32)? {
        guard bytes.count >= 16 else { return nil }
        var r = LittleEndianReader(bytes, offset: 4)
        let opcode = r.u32()
        return (r.u64(), opcode)
    }

    /// Decodes `bytes` (see the file comment for what is refused).
    public init(_ bytes: UnsafeRawBufferPointer) throws(FUSEError) {
        guard bytes.count >= FUSE.inHeaderSize else { throw .truncated }
        var h = LittleEndianReader(bytes)
        let length = Int(h.u32())
        opcode = h.u32(); unique = h.u64(); nodeID = h.u64()
        uid = h.u32(); gid = h.u32(); pid = h.u32()
        guard length >= FUSE.inHeaderSize, length <= bytes.count else { throw .truncated }
        let body = UnsafeRawBufferPointer(rebasing: bytes[FUSE.inHeaderSize ..< length])
        operation = try FUSEIncomingRequest.decodeBody(opcode, body)
    }

    /// Node id and nlookup of BATCH_FORGET entry `index` (< count).
    public static func forgetEntry(_ entries: UnsafeRawBufferPointer, _ index: Int) -> (nodeID: UInt64, lookups: UInt64) {
        var r = LittleEndianReader(entries, offset: index * 16)
        let node = r.u64()
        return (node, r.u64())
    }

    static func decodeBody(_ opcode: UInt32, _ body: UnsafeRawBufferPointer) throws(FUSEError) -> FUSEOperation {
        var r = LittleEndianReader(body)
        func need(_ count: Int) throws(FUSEError) { guard body.count >= count else { throw .truncated } }
        switch opcode {
        case FUSEOpcode.initialize.rawValue:
            try need(16)
            return .initialize(major: r.u32(), minor: r.u32(), maxReadahead: r.u32(), flags: r.u32())
        case FUSEServerOpcode.destroy: return .destroy
        case FUSEOpcode.statfs.rawValue: return .statfs
        case FUSEOpcode.lookup.rawValue: return .lookup(name: try name(body, at: 0).name)
        case FUSEOpcode.unlink.rawValue: return .unlink(name: try name(body, at: 0).name)
        case FUSEOpcode.rmdir.rawValue: return .rmdir(name: try name(body, at: 0).name)
        case FUSEOpcode.forget.rawValue:
            try need(8)
            return .forget(lookups: r.u64())
        case FUSEServerOpcode.batchForget:
            try need(8)
            let count = Int(r.u32())
            guard count <= (body.count - 8) / 16 else { throw .truncated }
            return .batchForget(entries: UnsafeRawBufferPointer(rebasing: body[8 ..< 8 + count * 16]), count: count)
        case FUSEOpcode.getattr.rawValue:
            try need(16)
            let flags = r.u32(); r.skip(4)
            let handle = r.u64()
            return .getattr(fileHandle: flags & FUSEServerOpcode.getattrFileHandle != 0 ? handle : nil)
        case FUSEOpcode.setattr.rawValue:
            try need(FUSESetAttributes.size)
            var a = FUSESetAttributes()
            a.valid = r.u32(); r.skip(4)
            a.fileHandle = r.u64(); a.size = r.u64(); a.lockOwner = r.u64()
            a.atime = r.u64(); a.mtime = r.u64(); a.ctime = r.u64()
            a.atimensec = r.u32(); a.mtimensec = r.u32(); a.ctimensec = r.u32()
            a.mode = r.u32(); r.skip(4); a.uid = r.u32(); a.gid = r.u32()
            return .setattr(a)
        case FUSEOpcode.open.rawValue, FUSEOpcode.opendir.rawValue:
            try need(8)
            let flags = r.u32()
            return opcode == FUSEOpcode.open.rawValue ? .open(flags: flags) : .opendir(flags: flags)
        case FUSEOpcode.read.rawValue, FUSEOpcode.readdir.rawValue, FUSEOpcode.readdirplus.rawValue:
            try need(40)
            let fh = r.u64(), offset = r.u64(), size = r.u32()
            if opcode == FUSEOpcode.read.rawValue { return .read(fileHandle: fh, offset: offset, size: size) }
            if opcode == FUSEOpcode.readdir.rawValue { return .readdir(fileHandle: fh, offset: offset, size: size) }
            return .readdirplus(fileHandle: fh, offset: offset, size: size)
        case FUSEOpcode.write.rawValue:
            try need(40)
            let fh = r.u64(), offset = r.u64(), size = Int(r.u32())
            guard size <= body.count - 40 else { throw .truncated }
            return .write(fileHandle: fh, offset: offset, data: UnsafeRawBufferPointer(rebasing: body[40 ..< 40 + size]))
        case FUSEOpcode.flush.rawValue:
            try need(24)
            return .flush(fileHandle: r.u64())
        case FUSEServerOpcode.fsync, FUSEServerOpcode.fsyncdir:
            try need(16)
            let fh = r.u64(), flags = r.u32()
            return opcode == FUSEServerOpcode.fsync ? .fsync(fileHandle: fh, flags: flags) : .fsyncdir(fileHandle: fh, flags: flags)
        case FUSEOpcode.release.rawValue, FUSEOpcode.releasedir.rawValue:
            try need(24)
            let fh = r.u64(), flags = r.u32()
            return opcode == FUSEOpcode.release.rawValue ? .release(fileHandle: fh, flags: flags)
                : .releasedir(fileHandle: fh, flags: flags)
        case FUSEOpcode.create.rawValue:
            try need(16)
            let flags = r.u32(), mode = r.u32(), umask = r.u32()
            return .create(name: try name(body, at: 16).name, flags: flags, mode: mode, umask: umask)
        case FUSEOpcode.mkdir.rawValue:
            try need(8)
            let mode = r.u32(), umask = r.u32()
            return .mkdir(name: try name(body, at: 8).name, mode: mode, umask: umask)
        case FUSEOpcode.rename.rawValue, FUSEOpcode.rename2.rawValue:
            let fixed = opcode == FUSEOpcode.rename.rawValue ? 8 : 16
            try need(fixed)
            let newDirectory = r.u64()
            let flags = fixed == 16 ? r.u32() : 0
            let old = try name(body, at: fixed)
            let new = try name(body, at: old.next)
            return .rename(name: old.name, newDirectory: newDirectory, newName: new.name, flags: flags)
        case FUSEServerOpcode.access:
            try need(8)
            return .access(mask: r.u32())
        case FUSEServerOpcode.mknod, FUSEServerOpcode.symlink, FUSEServerOpcode.link:
            return .refused(opcode: opcode)
        default:
            return .unknown(opcode: opcode)
        }
    }

    /// The NUL-terminated name starting at `offset`, and the offset after its NUL.
    static func name(_ body: UnsafeRawBufferPointer, at offset: Int) throws(FUSEError) -> (name: UnsafeRawBufferPointer, next: Int) {
        guard offset <= body.count else { throw .truncated }
        var end = offset
        while end < body.count && body[end] != 0 { end += 1 }
        guard end < body.count else { throw .truncated }
        let name = UnsafeRawBufferPointer(rebasing: body[offset ..< end])
        guard FUSE.isValidName(name) else { throw .invalidName }
        return (name, end + 1)
    }
}
