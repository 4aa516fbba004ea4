// READDIR and READDIRPLUS reply streams (fuse.h 7.31): back-to-back records, each padded
// to 8 bytes (FUSE_DIRENT_ALIGN), filling at most the size the request asked for.
//
//   fuse_dirent      (24 + namelen, padded): le64 ino, le64 off, le32 namelen, le32 type, name
//   fuse_direntplus  (152 + namelen, padded): fuse_entry_out (128), then a fuse_dirent
//
// `off` is the cookie to pass as the next READDIR's offset to continue after this record;
// `type` is the DT_* file type (mode >> 12). The name is not NUL-terminated.
//
// A stream is accepted only if every record's fixed part, name and padding lie inside the
// body, every namelen is 1...1024 (FUSE_NAME_MAX), every name is free of NUL and '/', every
// type is below 16, and no bytes are left after the last record (fs/fuse/readdir.c refuses the
// same). Anything else is `.malformedDirectory`; nothing is handed out from a bad stream.

/// One directory record. `name` points into the reply buffer.
public struct FUSEDirectoryEntry {
    public var ino: UInt64
    /// Offset cookie of the next record (pass to READDIR to resume after this one).
    public var offset: UInt64
    /// DT_* type (0 unknown, 4 directory, 8 regular file, 10 symlink, ...).
    public var type: UInt32
    public var name: UnsafeRawBufferPointer
    /// READDIRPLUS only: the entry as LOOKUP would return it (node id 0: no lookup taken).
    public var entry: FUSEEntry?
}

/// A checked READDIR/READDIRPLUS stream; iterate it for the records.
public struct FUSEDirectory: Sequence {
    /// The raw stream (the reply body).
    public let bytes: UnsafeRawBufferPointer
    /// Records are `fuse_direntplus` rather than `fuse_dirent`.
    public let plus: Bool

    /// sizeof(fuse_dirent) without its name.
    public static let direntSize = 24
    /// sizeof(fuse_direntplus) without its name.
    public static let direntPlusSize = FUSEEntry.size + direntSize

    /// Wraps a stream without checking it; `FUSEReply.directory` is the checked way in.
    public init(_ bytes: UnsafeRawBufferPointer, plus: Bool) {
        self.bytes = bytes
        self.plus = plus
    }

    /// Walks every record; throws `.malformedDirectory` at the first bad one.
    public func validate() throws(FUSEError) {
        var offset = 0
        while offset < bytes.count {
            offset = try record(at: offset).next
        }
    }

    /// The number of records (0 for a malformed stream).
    public var count: Int {
        var count = 0
        for _ in self { count += 1 }
        return count
    }

    /// Decodes the record at `offset`, checking it fits; returns it and the next record's offset.
    func record(at offset: Int) throws(FUSEError) -> (entry: FUSEDirectoryEntry, next: Int) {
        let fixed = plus ? FUSEDirectory.direntPlusSize : FUSEDirectory.direntSize
        guard offset >= 0 && offset <= bytes.count else { throw .malformedDirectory }
        let remaining = bytes.count - offset
        guard remaining >= fixed else { throw .malformedDirectory }
        var r = LittleEndianReader(bytes, offset: offset)
        let entry: FUSEEntry? = plus ? FUSEEntry(&r) : nil
        let ino = r.u64()
        let cookie = r.u64()
        let nameLength = r.u32()
        let type = r.u32()
        guard nameLength >= 1 && nameLength <= UInt32(FUSE.nameMaximum) else { throw .malformedDirectory }
        guard type < 16 else { throw .malformedDirectory }
        let recordSize = (fixed + Int(nameLength) + 7) & ~7
        guard recordSize <= remaining else { throw .malformedDirectory }
        let nameStart = offset + fixed
        let name = UnsafeRawBufferPointer(rebasing: bytes[nameStart ..< nameStart + Int(nameLength)])
        guard FUSE.isValidName(name) else { throw .malformedDirectory }
        return (FUSEDirectoryEntry(ino: ino, offset: cookie, type: type, name: name, entry: entry), offset + recordSize)
    }

    public struct Iterator: IteratorProtocol {
        let directory: FUSEDirectory
        var offset = 0

        /// The next record, or nil at the end (or at a malformed record, for an unchecked stream).
        public mutating func next() -> FUSEDirectoryEntry? {
            guard offset < directory.bytes.count else { return nil }
            do throws(FUSEError) {
                let (entry, next) = try directory.record(at: offset)
                offset = next
                return entry
            } catch {
                offset = directory.bytes.count
                return nil
            }
        }
    }

    public func makeIterator() -> Iterator { Iterator(directory: self) }
}

/// Builds directory streams: a server's READDIR/READDIRPLUS reply body, and test input.
public struct FUSEDirectoryWriter {
    public let buffer: UnsafeMutableRawBufferPointer
    /// Bytes written so far.
    public private(set) var count = 0

    public init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    /// Appends one record (a `fuse_direntplus` when `entry` is given), zero-padded to 8 bytes.
    /// Returns false, writing nothing, if it does not fit or the name is invalid.
    public mutating func append(ino: UInt64, offset: UInt64, type: UInt32, name: UnsafeRawBufferPointer,
                                entry: FUSEEntry? = nil) -> Bool {
        guard FUSE.isValidName(name) else { return false }
        let fixed = entry == nil ? FUSEDirectory.direntSize : FUSEDirectory.direntPlusSize
        let recordSize = (fixed + name.count + 7) & ~7
        guard buffer.count - count >= recordSize else { return false }
        var w = LittleEndianWriter(buffer)
        w.offset = count
        entry?.encode(&w)
        w.u64(ino); w.u64(offset); w.u32(UInt32(name.count)); w.u32(type)
        w.bytes(name)
        w.zeros(recordSize - fixed - name.count)
        count = w.offset
        return true
    }
}
