// The `FileSystem` a FUSE server provides: virtio-fs on microvm (the host's shared folder).
//
// Paths become node IDs by LOOKUP from the root, one component at a time; every LOOKUP
// (and CREATE, MKDIR) gives the server one reference to the node, which FORGET returns
// (fuse.h: "nlookup"). This layer keeps no cache: an operation looks its path up, acts, and
// forgets what it looked up, except that an open file keeps its own node until `close`.
// The host may change the folder under the guest at any time; without a cache nothing here
// goes stale.
//
// The class holds the state and the `FileSystem` operations; the node walk and open-file
// table are in FUSEFileSystemNodes.swift, directory listings (and their bounds) in
// FUSEFileSystemListing.swift, one request's round trip in FUSEFileSystemRequests.swift,
// value conversions in FUSEConversions.swift.
//
// Rules:
//   * Create with `mount(channel:)`, which negotiates INIT (7.31) and the largest transfer.
//   * Calls from several threads are serialised by a `SleepLock`: one request is in flight
//     at a time, which is what the single-threaded host back-end serves anyway. So
//     `FUSEChannel.exchange` is never entered twice at once from here.
//   * Every reply goes through `FUSEReply` (length, unique, errno, exact body size). A
//     server errno becomes the matching `FileSystemError`; anything malformed is logged
//     and becomes `.io`; nothing traps.
//   * Reads and writes are split to the negotiated maximum; a short READ ends the read
//     (end of file), a short WRITE ends the write (the count is returned).
import Core
import Drivers
import Wire

public final class FUSEFileSystem: FileSystem {
    /// The largest READ or WRITE payload this side asks for (the server may lower WRITE's).
    public static let defaultTransfer: UInt32 = 128 * 1024

    /// Linux open(2) flag values, as FUSE carries them.
    enum LinuxOpen {
        static let readOnly: UInt32 = 0
        static let writeOnly: UInt32 = 1
        static let readWrite: UInt32 = 2
        static let create: UInt32 = 0o100
        static let exclusive: UInt32 = 0o200
        static let truncate: UInt32 = 0o1000
        static let directory: UInt32 = 0o200000
    }

    struct OpenFile {
        /// The `FileHandleID` the caller holds (set by `register`).
        var id: UInt64 = 0
        let node: UInt64
        let fileHandle: UInt64
        let directory: Bool
        let flags: OpenFlags
        /// What LOOKUP (or CREATE) reported when the file was opened.
        var opened: FUSEAttributes? = nil
    }

    /// One looked-up node and the references taken on the way to it (to forget).
    struct Resolved {
        var node: UInt64
        var attributes: FUSEAttributes?
        var held: [UInt64]
    }

    let channel: any FUSEChannel
    let lock = SleepLock()
    /// Request bytes: header, the largest body, two names, or WRITE's data.
    let request: UnsafeMutableRawBufferPointer
    /// Reply bytes: header and the largest READ / READDIR payload or fixed reply.
    let reply: UnsafeMutableRawBufferPointer
    let transfer: UInt32
    public private(set) var maximumWrite: UInt32 = 4096
    var nextUnique: UInt64 = 1
    /// The server's errno for the last request (0 when it succeeded or failed otherwise).
    var lastErrno: Int32 = 0
    /// Open handles in the order they were opened (so by `id`). An array, not a
    /// dictionary: at most `maximumOpenFiles`, and a Dictionary costs the image its
    /// specialised hashing code (about 3 KiB).
    var files: [OpenFile] = []
    var nextHandle: UInt64 = 1
    /// Replies refused as malformed since mount (logged too).
    public internal(set) var malformedReplies = 0
    public let maximumOpenFiles = 1024
    /// The most records one listing may take (`.` and `..` included); beyond it the
    /// listing fails with `.tooLarge` (FUSEFileSystemListing.swift).
    public var maximumDirectoryEntries = FUSEFileSystem.defaultDirectoryEntries

    init(channel: any FUSEChannel, transfer: UInt32) {
        self.channel = channel
        self.transfer = transfer
        request = .allocate(byteCount: FUSE.inHeaderSize + 128 + 2 * (FUSE.nameMaximum + 1) + Int(transfer), alignment: 8)
        reply = .allocate(byteCount: FUSE.outHeaderSize + max(Int(transfer), 4096), alignment: 8)
    }

    deinit {
        request.deallocate()
        reply.deallocate()
    }

    /// Negotiates INIT with the server behind `channel` and returns the mounted file system.
    public static func mount(channel: any FUSEChannel,
                             transfer: UInt32 = FUSEFileSystem.defaultTransfer) throws(FileSystemError) -> FUSEFileSystem {
        let fileSystem = FUSEFileSystem(channel: channel, transfer: max(transfer, 4096))
        let initReply = try fileSystem.call(.initialize(maxReadahead: fileSystem.transfer, flags: 0), node: 0) {
            (reply: FUSEReply) throws(FUSEError) -> FUSEInitReply in
            try reply.initialize(maximumWrite: fileSystem.transfer)
        }
        fileSystem.maximumWrite = initReply.maxWrite
        return fileSystem
    }

    /// Open handles (files and directories), for leak checks.
    public var openCount: Int { lock.withLock { files.count } }

    // MARK: FileSystem

    public func stat(_ path: VFSPath) throws(FileSystemError) -> FileAttributes {
        try lock.withLock { () throws(FileSystemError) -> FileAttributes in
            let resolved = try resolve(path.components[...])
            defer { forget(resolved.held) }
            return FUSEFileSystem.attributes(try attributes(of: resolved))
        }
    }

    public func open(_ path: VFSPath, flags: OpenFlags, mode: UInt32) throws(FileSystemError) -> FileHandleID {
        try lock.withLock { () throws(FileSystemError) -> FileHandleID in
            guard files.count < maximumOpenFiles else { throw .tooManyOpenFiles }
            var access = LinuxOpen.readOnly
            if flags.contains(.write) { access = flags.contains(.read) ? LinuxOpen.readWrite : LinuxOpen.writeOnly }
            if flags.contains(.create), let name = path.name, let parentPath = path.parent {
                // CREATE opens an existing file too (without O_EXCL), so try it first only when
                // LOOKUP says the name is free, to open directories the usual way.
                let parent = try resolve(parentPath.components[...])
                defer { forget(parent.held) }
                let existing = try lookUpOptional(parent.node, name)
                if let existing { forget([existing.nodeID]) }   // the walk below looks it up again
                if existing == nil {
                    var linux = access | LinuxOpen.create
                    if flags.contains(.exclusive) { linux |= LinuxOpen.exclusive }
                    let created = try call(.create(name: name, flags: linux, mode: 0o100000 | (mode & 0o7777), umask: 0),
                                           node: parent.node) { (reply: FUSEReply) throws(FUSEError) in try reply.create() }
                    guard created.entry.nodeID != 0 else { throw .io }
                    return register(OpenFile(node: created.entry.nodeID, fileHandle: created.open.fileHandle,
                                             directory: false, flags: flags, opened: created.entry.attributes))
                }
                if flags.contains(.exclusive) { throw .exists }
            }
            let resolved = try resolve(path.components[...])
            var keep = false
            defer { forget(keep ? Array(resolved.held.dropLast()) : resolved.held) }
            let found = try attributes(of: resolved)
            let kind = FUSEFileSystem.kind(found.mode)
            if kind == .directory {
                guard !flags.contains(.write), !flags.contains(.create) else { throw .isADirectory }
                let opened = try call(.opendir(flags: LinuxOpen.directory), node: resolved.node) {
                    (reply: FUSEReply) throws(FUSEError) in try reply.open()
                }
                keep = true
                return register(OpenFile(node: resolved.node, fileHandle: opened.fileHandle, directory: true, flags: flags,
                                         opened: found))
            }
            guard kind == .file else { throw .permissionDenied }
            var linux = access
            let truncating = flags.contains(.truncate) && flags.contains(.write)
            if truncating { linux |= LinuxOpen.truncate }
            let opened = try call(.open(flags: linux), node: resolved.node) {
                (reply: FUSEReply) throws(FUSEError) in try reply.open()
            }
            keep = true
            let handle = register(OpenFile(node: resolved.node, fileHandle: opened.fileHandle, directory: false, flags: flags,
                                           opened: truncating ? nil : found))
            if truncating {
                // Servers without atomic O_TRUNC ignore it in OPEN (fuse.h FUSE_ATOMIC_O_TRUNC): say it again.
                var change = FUSESetAttributes()
                change.valid = FUSESetAttributes.validSize | FUSESetAttributes.validFileHandle
                change.fileHandle = opened.fileHandle
                do throws(FileSystemError) {
                    _ = try call(.setattr(change), node: resolved.node) { (reply: FUSEReply) throws(FUSEError) in try reply.attributes() }
                } catch {
                    closeLocked(handle.rawValue)
                    throw error
                }
            }
            return handle
        }
    }

    public func read(_ handle: FileHandleID, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        try lock.withLock { () throws(FileSystemError) -> Int in
            guard let file = openFile(handle.rawValue), file.flags.contains(.read) else { throw .badDescriptor }
            guard !file.directory else { throw .isADirectory }
            guard let chunks = FUSEChunks(count: buffer.count, fileOffset: offset, maximum: transfer) else { throw .invalidPath }
            var total = 0
            for chunk in chunks {
                let target = UnsafeMutableRawBufferPointer(rebasing: buffer[chunk.bufferOffset..<(chunk.bufferOffset + Int(chunk.size))])
                let got = try call(.read(fileHandle: file.fileHandle, offset: chunk.fileOffset, size: chunk.size), node: file.node) {
                    (reply: FUSEReply) throws(FUSEError) -> Int in
                    let data = try reply.read(requested: chunk.size)
                    target.copyMemory(from: data)
                    return data.count
                }
                total += got
                if got < Int(chunk.size) { break }
            }
            return total
        }
    }

    public func write(_ handle: FileHandleID, offset: UInt64, from buffer: UnsafeRawBufferPointer) throws(FileSystemError) -> Int {
        try lock.withLock { () throws(FileSystemError) -> Int in
            guard let file = openFile(handle.rawValue), file.flags.contains(.write) else { throw .badDescriptor }
            guard let chunks = FUSEChunks(count: buffer.count, fileOffset: offset, maximum: maximumWrite) else { throw .invalidPath }
            var total = 0
            for chunk in chunks {
                let data = UnsafeRawBufferPointer(rebasing: buffer[chunk.bufferOffset..<(chunk.bufferOffset + Int(chunk.size))])
                let answer = try exchange(node: file.node) { (buffer, header) throws(FUSEError) -> Int in
                    try FUSERequest.encodeWrite(into: buffer, header: header, fileHandle: file.fileHandle,
                                                offset: chunk.fileOffset, data: data)
                }
                let written: UInt32
                do throws(FUSEError) { written = try answer.write(requested: chunk.size) } catch { throw failure(error) }
                total += Int(written)
                if written < chunk.size { break }
            }
            return total
        }
    }

    public func attributes(_ handle: FileHandleID) throws(FileSystemError) -> FileAttributes {
        try lock.withLock { () throws(FileSystemError) -> FileAttributes in
            guard let file = openFile(handle.rawValue) else { throw .badDescriptor }
            if !file.flags.contains(.write), let opened = file.opened { return FUSEFileSystem.attributes(opened) }
            return FUSEFileSystem.attributes(try call(.getattr(fileHandle: file.directory ? nil : file.fileHandle), node: file.node) {
                (reply: FUSEReply) throws(FUSEError) in try reply.attributes()
            }.attributes)
        }
    }

    public func close(_ handle: FileHandleID) throws(FileSystemError) {
        try lock.withLock { () throws(FileSystemError) in
            guard openFile(handle.rawValue) != nil else { throw .badDescriptor }
            if let failure = closeLocked(handle.rawValue) { throw failure }
        }
    }

    public func makeDirectory(_ path: VFSPath, mode: UInt32) throws(FileSystemError) {
        try lock.withLock { () throws(FileSystemError) in
            let (parent, name) = try resolveParent(path)
            defer { forget(parent.held) }
            let entry = try call(.mkdir(name: name, mode: mode & 0o7777, umask: 0), node: parent.node) {
                (reply: FUSEReply) throws(FUSEError) in try reply.entry()
            }
            if entry.nodeID != 0 { forget([entry.nodeID]) }
        }
    }

    public func remove(_ path: VFSPath) throws(FileSystemError) {
        try lock.withLock { () throws(FileSystemError) in
            let (parent, name) = try resolveParent(path)
            defer { forget(parent.held) }
            try call(.unlink(name: name), node: parent.node) { (reply: FUSEReply) throws(FUSEError) in try reply.empty() }
        }
    }

    public func removeDirectory(_ path: VFSPath) throws(FileSystemError) {
        try lock.withLock { () throws(FileSystemError) in
            let (parent, name) = try resolveParent(path)
            defer { forget(parent.held) }
            try call(.rmdir(name: name), node: parent.node) { (reply: FUSEReply) throws(FUSEError) in try reply.empty() }
        }
    }

    public func rename(from: VFSPath, to: VFSPath) throws(FileSystemError) {
        try lock.withLock { () throws(FileSystemError) in
            if from == to {
                // POSIX: renaming a name onto itself succeeds when it exists.
                forget(try resolve(from.components[...]).held)
                return
            }
            guard !to.isWithin(from) else { throw .invalidPath }
            let (source, name) = try resolveParent(from)
            defer { forget(source.held) }
            let (target, newName) = try resolveParent(to)
            defer { forget(target.held) }
            try call(.rename(name: name, newDirectory: target.node, newName: newName), node: source.node) {
                (reply: FUSEReply) throws(FUSEError) in try reply.empty()
            }
        }
    }

    public func truncate(_ path: VFSPath, size: UInt64) throws(FileSystemError) {
        try lock.withLock { () throws(FileSystemError) in
            let resolved = try resolve(path.components[...])
            defer { forget(resolved.held) }
            guard FUSEFileSystem.kind(try attributes(of: resolved).mode) != .directory else { throw .isADirectory }
            var change = FUSESetAttributes()
            change.valid = FUSESetAttributes.validSize
            change.size = size
            _ = try call(.setattr(change), node: resolved.node) { (reply: FUSEReply) throws(FUSEError) in try reply.attributes() }
        }
    }

    public func statFileSystem() throws(FileSystemError) -> FileSystemStatistics {
        try lock.withLock { () throws(FileSystemError) -> FileSystemStatistics in
            let s = try call(.statfs, node: FUSE.rootID) { (reply: FUSEReply) throws(FUSEError) in try reply.statfs() }
            return FileSystemStatistics(blockSize: s.blockSize, totalBlocks: s.blocks, freeBlocks: s.availableBlocks,
                                        totalFiles: s.files, freeFiles: s.freeFiles, maxNameLength: s.nameLength)
        }
    }
}
