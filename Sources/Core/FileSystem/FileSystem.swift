// The contract between the VFS and a file-system back-end (MemoryFileSystem here; the
// virtio-fs driver; later ext2). One class-bound protocol, used as `any FileSystem`, so the
// Embedded build specialises nothing per back-end.
//
// Rules for implementers:
//   * Paths arrive as `VFSPath`, already normalised and relative to the mount: do not re-parse.
//   * Every failure is a `FileSystemError`; a malformed answer from a device, host or disk
//     image is `.io`, never a trap (STYLE principle 7).
//   * A handle stays valid until `close`, even when its file is unlinked or renamed
//     meanwhile (POSIX semantics; virtio-fs keeps the FUSE fh, ext2 the inode).
//   * `read` past the end of file returns 0; `write` past it extends the file and the gap
//     reads as zeros.
//   * Access checks belong to the handle: `write` on a handle opened without `.write` is
//     `badDescriptor`; anything that modifies a read-only mount is `readOnly`.
// Rules for callers: not thread-safe; serialise calls (the VFS does, by being per owner).

/// What a directory entry is.
public enum FileKind: UInt8, Equatable, Sendable {
    case file
    case directory
    case symlink
    /// Devices, FIFOs, sockets: listed, but the VFS neither reads nor writes them.
    case other
}

/// A file's metadata, as `stat` reports it. Written by the back-end.
public struct FileAttributes: Equatable, Sendable {
    /// Size in bytes (for a directory, whatever the back-end reports).
    public var size: UInt64
    public var kind: FileKind
    /// Permission bits (the low 12 bits of `st_mode`).
    public var mode: UInt32
    /// Last modification, in seconds since the Unix epoch (0 when there is no wall clock).
    public var modificationTime: UInt64

    public init(size: UInt64, kind: FileKind, mode: UInt32, modificationTime: UInt64) {
        self.size = size
        self.kind = kind
        self.mode = mode
        self.modificationTime = modificationTime
    }
}

/// How `open` treats the file, as in POSIX `open(2)`.
public struct OpenFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Reads are allowed through the handle.
    public static let read = OpenFlags(rawValue: 1 << 0)
    /// Writes are allowed through the handle; a directory cannot be opened so.
    public static let write = OpenFlags(rawValue: 1 << 1)
    /// Create the file when it does not exist (its parent must).
    public static let create = OpenFlags(rawValue: 1 << 2)
    /// Cut the file to zero bytes on open; needs `.write`.
    public static let truncate = OpenFlags(rawValue: 1 << 3)
    /// With `.create`: fail with `exists` when the file is already there.
    public static let exclusive = OpenFlags(rawValue: 1 << 4)

    public static let readWrite: OpenFlags = [.read, .write]
}

/// A back-end's name for an open file; meaningful only to the back-end that issued it.
public struct FileHandleID: Hashable, Sendable {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
}

/// One entry of `readDirectory`; `.` and `..` are never listed.
public struct DirectoryEntry: Equatable, Sendable {
    public var name: [UInt8]
    public var kind: FileKind

    public init(name: [UInt8], kind: FileKind) {
        self.name = name
        self.kind = kind
    }
}

/// Capacity figures, as `statfs` reports them.
public struct FileSystemStatistics: Equatable, Sendable {
    public var blockSize: UInt32
    public var totalBlocks: UInt64
    public var freeBlocks: UInt64
    public var totalFiles: UInt64
    public var freeFiles: UInt64
    /// Longest name accepted, in bytes.
    public var maxNameLength: UInt32

    public init(blockSize: UInt32, totalBlocks: UInt64, freeBlocks: UInt64,
                totalFiles: UInt64, freeFiles: UInt64, maxNameLength: UInt32) {
        self.blockSize = blockSize
        self.totalBlocks = totalBlocks
        self.freeBlocks = freeBlocks
        self.totalFiles = totalFiles
        self.freeFiles = freeFiles
        self.maxNameLength = maxNameLength
    }
}

public protocol FileSystem: AnyObject {
    /// Metadata of `path` (lookup without opening).
    func stat(_ path: VFSPath) throws(FileSystemError) -> FileAttributes
    /// Opens (and with `.create`, creates with permission bits `mode`) the file or
    /// directory at `path`. Directories open read-only.
    func open(_ path: VFSPath, flags: OpenFlags, mode: UInt32) throws(FileSystemError) -> FileHandleID
    /// Copies up to `buffer.count` bytes from `offset`; returns how many (0 at or past EOF).
    func read(_ handle: FileHandleID, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int
    /// Writes `buffer` at `offset`, zero-filling any gap past EOF; returns the bytes written.
    func write(_ handle: FileHandleID, offset: UInt64, from buffer: UnsafeRawBufferPointer) throws(FileSystemError) -> Int
    /// Metadata of the open file or directory (fstat). A handle opened read-only may report
    /// what the file was when it was opened (virtio-fs answers from the LOOKUP that found
    /// it, saving a round trip); one opened for writing reports the current figures.
    func attributes(_ handle: FileHandleID) throws(FileSystemError) -> FileAttributes
    /// Releases the handle; it is invalid afterwards, even when this throws.
    func close(_ handle: FileHandleID) throws(FileSystemError)
    /// The entries of the directory at `path`, in back-end order.
    func readDirectory(_ path: VFSPath) throws(FileSystemError) -> [DirectoryEntry]
    /// Creates an empty directory; `exists` when the name is taken.
    func makeDirectory(_ path: VFSPath, mode: UInt32) throws(FileSystemError)
    /// Unlinks a non-directory; `isADirectory` for a directory.
    func remove(_ path: VFSPath) throws(FileSystemError)
    /// Removes an empty directory; `notEmpty`, or `notADirectory` for a file.
    func removeDirectory(_ path: VFSPath) throws(FileSystemError)
    /// Moves `from` to `to`, replacing a file (or an empty directory, by a directory) there;
    /// moving a directory under itself is `invalidPath`.
    func rename(from: VFSPath, to: VFSPath) throws(FileSystemError)
    /// Sets the file's size, cutting or zero-extending it.
    func truncate(_ path: VFSPath, size: UInt64) throws(FileSystemError)
    /// Capacity figures; back-ends without them keep the default, which throws `io`.
    func statFileSystem() throws(FileSystemError) -> FileSystemStatistics
    /// Makes every completed change durable (fsync of the whole file system): a back-end
    /// with a cache writes it out and flushes the disk. The default does nothing.
    func sync() throws(FileSystemError)
}

extension FileSystem {
    public func statFileSystem() throws(FileSystemError) -> FileSystemStatistics {
        throw .io
    }

    public func sync() throws(FileSystemError) {}
}
