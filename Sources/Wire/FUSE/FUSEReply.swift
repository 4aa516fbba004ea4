// FUSE reply decoding: the out header checked against the request, then the body checked
// against what the opcode's reply must be (fuse.h 7.31; fs/fuse/dev.c applies the same rules).
//
// `FUSEReply(bytes, unique:)` accepts a reply only when
//   * at least the 16-byte out header arrived (`.truncated`),
//   * header `len` is at least 16 and equals the bytes the device reported (`bytes.count`):
//     `.truncated` when fewer bytes arrived than `len` claims, `.badLength` otherwise,
//   * `unique` is the request's (`.wrongUnique`),
//   * `error` is 0, or -511...-1 with no body (`.badErrno`, `.badLength`); an accepted
//     negative error is thrown as `.remote(errno)`.
// The body accessors then demand the exact size each opcode's reply has, or at most the
// requested size for READ data and directory streams.
//
// Rules for callers:
//   * Pass exactly the bytes the device reported used (the used-ring length, already checked
//     against the buffer the driver posted), and the `unique` of the request it answers.
//   * FORGET has no reply; never post a reply buffer for it.
//   * A `FUSEReply` and what it returns (READ data, directory names) point into `bytes`:
//     use them before the buffer is reused.

/// A reply whose header has been checked and whose error was 0; the body is not yet checked.
public struct FUSEReply {
    /// The bytes after the out header.
    public let body: UnsafeRawBufferPointer

    /// Checks the out header (see the file comment); throws `.remote(errno)` for an error reply.
    public init(_ bytes: UnsafeRawBufferPointer, unique: UInt64) throws(FUSEError) {
        guard bytes.count >= FUSE.outHeaderSize else { throw .truncated }
        var r = LittleEndianReader(bytes)
        let length = r.u32()
        let error = r.i32()
        let replyUnique = r.u64()
        guard UInt64(length) >= UInt64(FUSE.outHeaderSize) else { throw .badLength }
        guard UInt64(length) <= UInt64(bytes.count) else { throw .truncated }
        guard UInt64(length) == UInt64(bytes.count) else { throw .badLength }
        guard replyUnique == unique else { throw .wrongUnique(replyUnique) }
        guard error <= 0 && error >= -FUSE.errnoMaximum else { throw .badErrno(error) }
        if error != 0 {
            guard length == UInt32(FUSE.outHeaderSize) else { throw .badLength }
            throw .remote(-error)
        }
        body = UnsafeRawBufferPointer(rebasing: bytes[FUSE.outHeaderSize...])
    }

    private func exactly(_ count: Int) throws(FUSEError) -> LittleEndianReader {
        guard body.count == count else { throw .badLength }
        return LittleEndianReader(body)
    }

    /// UNLINK, RMDIR, RENAME, RENAME2, RELEASE, RELEASEDIR, FLUSH: no body.
    public func empty() throws(FUSEError) {
        _ = try exactly(0)
    }

    /// LOOKUP, MKDIR: `fuse_entry_out`.
    public func entry() throws(FUSEError) -> FUSEEntry {
        var r = try exactly(FUSEEntry.size)
        return FUSEEntry(&r)
    }

    /// GETATTR, SETATTR: `fuse_attr_out`.
    public func attributes() throws(FUSEError) -> FUSEAttributesReply {
        var r = try exactly(FUSEAttributesReply.size)
        return FUSEAttributesReply(&r)
    }

    /// OPEN, OPENDIR: `fuse_open_out`.
    public func open() throws(FUSEError) -> FUSEOpenReply {
        var r = try exactly(FUSEOpenReply.size)
        return FUSEOpenReply(&r)
    }

    /// CREATE: `fuse_entry_out` then `fuse_open_out`.
    public func create() throws(FUSEError) -> (entry: FUSEEntry, open: FUSEOpenReply) {
        var r = try exactly(FUSEEntry.size + FUSEOpenReply.size)
        let entry = FUSEEntry(&r)
        return (entry, FUSEOpenReply(&r))
    }

    /// STATFS: `fuse_statfs_out`.
    public func statfs() throws(FUSEError) -> FUSEStatfs {
        var r = try exactly(FUSEStatfs.size)
        return FUSEStatfs(&r)
    }

    /// WRITE: `fuse_write_out` (le32 size, padding); the count written, at most `requested`.
    public func write(requested: UInt32) throws(FUSEError) -> UInt32 {
        var r = try exactly(8)
        let written = r.u32()
        guard written <= requested else { throw .badLength }
        return written
    }

    /// READ: the data itself, at most `requested` bytes (fewer at end of file).
    public func read(requested: UInt32) throws(FUSEError) -> UnsafeRawBufferPointer {
        guard UInt64(body.count) <= UInt64(requested) else { throw .badLength }
        return body
    }

    /// INIT: `fuse_init_out` of a 7.31-or-later server. The version is checked before the size,
    /// since older minors send shorter structs. `maxWrite` becomes the server's value clamped
    /// to 4096...`maximumWrite` (4096 is Linux's floor too, fs/fuse/inode.c); pass a
    /// `maximumWrite` of at least 4096 (the driver's largest request buffer for data).
    public func initialize(maximumWrite: UInt32) throws(FUSEError) -> FUSEInitReply {
        guard body.count >= 8 else { throw .badLength }
        var version = LittleEndianReader(body)
        let major = version.u32()
        let minor = version.u32()
        guard major == FUSE.major && minor >= FUSE.minor else { throw .protocolVersion(major: major, minor: minor) }
        var r = try exactly(FUSEInitReply.size)
        var reply = FUSEInitReply(&r)
        reply.maxWrite = min(max(reply.maxWrite, 4096), maximumWrite)
        return reply
    }

    /// READDIR (`plus` false) or READDIRPLUS (`plus` true): the record stream, at most
    /// `requested` bytes, every record walked and checked (`FUSEDirectory.validate`).
    public func directory(requested: UInt32, plus: Bool) throws(FUSEError) -> FUSEDirectory {
        guard UInt64(body.count) <= UInt64(requested) else { throw .badLength }
        let directory = FUSEDirectory(body, plus: plus)
        try directory.validate()
        return directory
    }
}
