// The file API services use: POSIX-style descriptors over the `FileSystem` mounted at `/`.
//
// The VFS parses every path (`VFSPath`: absolute, normalised, bounded), keeps a bounded
// open-file table (lowest free descriptor first, as POSIX `open` does) with a per-descriptor
// offset, and forwards the rest to the back-end. Every call throws `FileSystemError`.
//
// Rules for callers:
//   * One VFS per owner (a service, or one per CPU): it is not thread-safe and takes no lock.
//   * With nothing mounted, every path names nothing: `notFound`.
//   * Closing always frees the descriptor, even when the back-end's close fails.
//   * `unmount` closes every descriptor; afterwards they are all `badDescriptor`.
//   * A descriptor remembers its path for `seek(.end)` and `fstat`; `rename` through this VFS
//     updates it. Once its file is unlinked or replaced through this VFS those two report
//     `notFound`, while reads and writes continue (POSIX keeps an unlinked file open).
//   * Writing past end of file zero-fills the gap (the back-end's rule); reading at or past
//     it returns 0 bytes.

public final class VFS {
    /// Where `seek` measures from (`SEEK_SET`, `SEEK_CUR`, `SEEK_END`).
    public enum SeekOrigin: Sendable {
        case start
        case current
        case end
    }

    /// One open file; written by `open`, `read`, `write`, `seek` and `rename`.
    struct Descriptor {
        let handle: FileHandleID
        let flags: OpenFlags
        /// Where the file is now; nil once unlinked or replaced through this VFS.
        var path: VFSPath?
        var offset: UInt64
    }

    /// Default size of the open-file table.
    public static let defaultCapacity = 256

    /// Most descriptors open at once.
    public let capacity: Int
    var table: [Descriptor?]
    var mounted: (any FileSystem)?

    public init(capacity: Int = VFS.defaultCapacity) {
        precondition(capacity > 0 && capacity <= Int(Int32.max), "VFS: table capacity out of range")
        self.capacity = capacity
        table = Array(repeating: nil, count: capacity)
    }

    /// Descriptors currently open.
    public var openCount: Int { table.reduce(0) { $1 == nil ? $0 : $0 + 1 } }

    /// The mounted back-end, if any.
    public var fileSystem: (any FileSystem)? { mounted }

    // MARK: Mounting

    /// Mounts `fileSystem` at `/`; `exists` when something is already mounted.
    public func mount(_ fileSystem: any FileSystem) throws(FileSystemError) {
        guard mounted == nil else { throw .exists }
        mounted = fileSystem
    }

    /// Closes every descriptor (ignoring back-end errors: the device may be gone) and
    /// detaches the back-end, which it returns.
    @discardableResult
    public func unmount() -> (any FileSystem)? {
        guard let fileSystem = mounted else { return nil }
        for index in table.indices {
            guard let descriptor = table[index] else { continue }
            table[index] = nil
            try? fileSystem.close(descriptor.handle)
        }
        mounted = nil
        return fileSystem
    }

    // MARK: Descriptors

    /// Opens `path` and returns the lowest free descriptor, positioned at offset 0.
    public func open(_ path: [UInt8], flags: OpenFlags, mode: UInt32 = 0o644) throws(FileSystemError) -> Int32 {
        let fileSystem = try mountedFileSystem()
        let parsed = try VFSPath(parsing: path)
        guard let slot = table.firstIndex(where: { $0 == nil }) else { throw .tooManyOpenFiles }
        let handle = try fileSystem.open(parsed, flags: flags, mode: mode)
        table[slot] = Descriptor(handle: handle, flags: flags, path: parsed, offset: 0)
        return Int32(slot)
    }

    /// Reads up to `buffer.count` bytes at the descriptor's offset and advances it.
    public func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        let (slot, descriptor) = try lookUp(fd)
        guard descriptor.flags.contains(.read) else { throw .badDescriptor }
        let count = try mountedFileSystem().read(descriptor.handle, offset: descriptor.offset, into: buffer)
        guard count >= 0 && count <= buffer.count else { throw .io }  // distrust the back-end
        table[slot]?.offset = descriptor.offset + UInt64(count)
        return count
    }

    /// Reads up to `count` bytes into a new array (shorter at end of file). The array is
    /// admitted against the memory budget first (a count often comes from a file's size):
    /// `.outOfMemory` when it would not fit.
    public func read(_ fd: Int32, count: Int) throws(FileSystemError) -> [UInt8] {
        guard MemoryBudget.admit(count, for: "a file read") else { throw .outOfMemory }
        var bytes = [UInt8](repeating: 0, count: max(0, count))
        var result: Result<Int, FileSystemError> = .success(0)
        bytes.withUnsafeMutableBytes { buffer in
            do throws(FileSystemError) { result = .success(try read(fd, into: buffer)) } catch { result = .failure(error) }
        }
        let got = try result.get()
        bytes.removeLast(bytes.count - got)
        return bytes
    }

    /// Writes `buffer` at the descriptor's offset and advances it past the bytes written.
    public func write(_ fd: Int32, from buffer: UnsafeRawBufferPointer) throws(FileSystemError) -> Int {
        let (slot, descriptor) = try lookUp(fd)
        guard descriptor.flags.contains(.write) else { throw .badDescriptor }
        guard descriptor.offset <= UInt64.max - UInt64(buffer.count) else { throw .noSpace }
        let count = try mountedFileSystem().write(descriptor.handle, offset: descriptor.offset, from: buffer)
        guard count >= 0 && count <= buffer.count else { throw .io }
        table[slot]?.offset = descriptor.offset + UInt64(count)
        return count
    }

    /// Writes `bytes`; see `write(_:from:)`.
    public func write(_ fd: Int32, _ bytes: [UInt8]) throws(FileSystemError) -> Int {
        var result: Result<Int, FileSystemError> = .success(0)
        bytes.withUnsafeBytes { buffer in
            do throws(FileSystemError) { result = .success(try write(fd, from: buffer)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    /// Moves the offset and returns it. A position before 0 (or past `Int64.max`) is
    /// `invalidPath`, the closed set's EINVAL; past end of file is allowed.
    public func seek(_ fd: Int32, offset: Int64, from origin: SeekOrigin) throws(FileSystemError) -> UInt64 {
        let (slot, descriptor) = try lookUp(fd)
        let base: UInt64
        switch origin {
        case .start: base = 0
        case .current: base = descriptor.offset
        case .end: base = try mountedFileSystem().stat(currentPath(descriptor)).size
        }
        guard base <= UInt64(Int64.max) else { throw .invalidPath }
        let (position, overflow) = Int64(base).addingReportingOverflow(offset)
        guard !overflow, position >= 0 else { throw .invalidPath }
        table[slot]?.offset = UInt64(position)
        return UInt64(position)
    }

    /// Frees the descriptor, then closes the back-end's handle.
    public func close(_ fd: Int32) throws(FileSystemError) {
        let (slot, descriptor) = try lookUp(fd)
        table[slot] = nil
        try mountedFileSystem().close(descriptor.handle)
    }

    /// Metadata of the file the descriptor was opened on (by its current path).
    public func fstat(_ fd: Int32) throws(FileSystemError) -> FileAttributes {
        let (_, descriptor) = try lookUp(fd)
        return try mountedFileSystem().stat(currentPath(descriptor))
    }

    // MARK: Paths

    public func stat(_ path: [UInt8]) throws(FileSystemError) -> FileAttributes {
        try mountedFileSystem().stat(VFSPath(parsing: path))
    }

    public func readdir(_ path: [UInt8]) throws(FileSystemError) -> [DirectoryEntry] {
        try mountedFileSystem().readDirectory(VFSPath(parsing: path))
    }

    public func mkdir(_ path: [UInt8], mode: UInt32 = 0o755) throws(FileSystemError) {
        try mountedFileSystem().makeDirectory(VFSPath(parsing: path), mode: mode)
    }

    /// Removes a file; open descriptors on it stay usable for reading and writing.
    public func unlink(_ path: [UInt8]) throws(FileSystemError) {
        let parsed = try VFSPath(parsing: path)
        try mountedFileSystem().remove(parsed)
        for index in table.indices where table[index]?.path == parsed { table[index]?.path = nil }
    }

    public func rmdir(_ path: [UInt8]) throws(FileSystemError) {
        try mountedFileSystem().removeDirectory(VFSPath(parsing: path))
    }

    /// Renames, then forgets the paths of descriptors on a replaced `to` and repoints those
    /// opened at or under `from`.
    public func rename(_ from: [UInt8], to: [UInt8]) throws(FileSystemError) {
        let fileSystem = try mountedFileSystem()
        let source = try VFSPath(parsing: from)
        let target = try VFSPath(parsing: to)
        try fileSystem.rename(from: source, to: target)
        for index in table.indices {
            guard let path = table[index]?.path else { continue }
            if path.isWithin(source) {
                table[index]?.path = path.replacingPrefix(source, with: target)
            } else if path.isWithin(target) {
                table[index]?.path = nil
            }
        }
    }

    public func truncate(_ path: [UInt8], size: UInt64) throws(FileSystemError) {
        try mountedFileSystem().truncate(VFSPath(parsing: path), size: size)
    }

    public func statfs() throws(FileSystemError) -> FileSystemStatistics {
        try mountedFileSystem().statFileSystem()
    }

    /// Makes every completed change durable (`sync(2)`; also what `fsync` does, as the
    /// back-ends keep one cache for the whole file system).
    public func sync() throws(FileSystemError) {
        try mountedFileSystem().sync()
    }

    // MARK: Helpers

    func mountedFileSystem() throws(FileSystemError) -> any FileSystem {
        guard let fileSystem = mounted else { throw .notFound }
        return fileSystem
    }

    func currentPath(_ descriptor: Descriptor) throws(FileSystemError) -> VFSPath {
        guard let path = descriptor.path else { throw .notFound }
        return path
    }

    func lookUp(_ fd: Int32) throws(FileSystemError) -> (Int, Descriptor) {
        guard fd >= 0, Int(fd) < capacity, let descriptor = table[Int(fd)] else { throw .badDescriptor }
        return (Int(fd), descriptor)
    }
}
