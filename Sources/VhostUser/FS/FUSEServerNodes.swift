// The FUSE server's node and handle tables, and the confinement rule every name goes
// through (the one place a guest name becomes a host file).
//
// Lifetimes follow FUSE (fuse.h "Lookup count"): LOOKUP, CREATE, MKDIR and each
// READDIRPLUS entry add one to a node's count; FORGET/BATCH_FORGET subtract nlookup; at 0
// the node's O_PATH descriptor is closed and its id forgotten. Node 1 (the share's root)
// is permanent. The same host inode, keyed by (st_dev, st_ino), always has the same id.
// Handles (OPEN, CREATE, OPENDIR) hold their own descriptor until RELEASE/RELEASEDIR.
//
// Confinement: a name is one component (no '/', not "." or ".."), opened with
// openat(parent, name, O_PATH|O_NOFOLLOW). A symlink is followed only through
// openat2(root, path-below-root, RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS), which the kernel
// refuses (EXDEV) for an absolute target or one climbing out; the guest gets EACCES. Only
// directories and regular files become nodes: devices, FIFOs and sockets are EACCES.
// A new node past `limits.maxNodes` is ENFILE (FUSEServerLimits.swift).
import Wire
import Glibc

struct FileKey: Hashable {
    let device: UInt64
    let inode: UInt64
}

/// One inode the guest knows by id. `fd` is O_PATH on the inode itself (symlinks resolved).
final class FSNode {
    let id: UInt64
    let fd: Int32
    let key: FileKey
    let isDirectory: Bool
    var lookups: UInt64

    init(id: UInt64, fd: Int32, key: FileKey, isDirectory: Bool, lookups: UInt64) {
        self.id = id
        self.fd = fd
        self.key = key
        self.isDirectory = isDirectory
        self.lookups = lookups
    }
}

/// One directory entry as OPENDIR's snapshot holds it.
struct FSDirectoryEntry {
    let name: [UInt8]
    let inode: UInt64
    /// DT_* type; symlinks are listed as 0 (unknown): the guest sees the target at LOOKUP.
    let type: UInt32
}

/// An open file or directory. `fd` is a real (not O_PATH) descriptor.
final class FSHandle {
    let fd: Int32
    let isDirectory: Bool
    /// READDIR's snapshot, taken at OPENDIR and again at each READDIR from offset 0.
    var entries: [FSDirectoryEntry] = []

    init(fd: Int32, isDirectory: Bool) {
        self.fd = fd
        self.isDirectory = isDirectory
    }
}

extension FUSEServer {
    static func isDotOrDotDot(_ name: UnsafeRawBufferPointer) -> Bool {
        (name.count == 1 && name[0] == 0x2E) || (name.count == 2 && name[0] == 0x2E && name[1] == 0x2E)
    }

    /// The node `id`, or ENOENT.
    func node(_ id: UInt64) throws(Errno) -> FSNode {
        guard let node = nodes[id] else { throw Errno(ENOENT) }
        return node
    }

    /// The directory node `id`: ENOENT if unknown, ENOTDIR if not a directory.
    func directory(_ id: UInt64) throws(Errno) -> FSNode {
        let node = try node(id)
        guard node.isDirectory else { throw Errno(ENOTDIR) }
        return node
    }

    func handle(_ fh: UInt64, directory: Bool) throws(Errno) -> FSHandle {
        guard let handle = handles[fh], handle.isDirectory == directory else { throw Errno(EBADF) }
        return handle
    }

    func addHandle(_ handle: FSHandle) -> UInt64 {
        let fh = nextHandle
        nextHandle += 1
        handles[fh] = handle
        return fh
    }

    /// Checks a guest name for use in `parent`: one component, not "." or "..".
    func checkName(_ name: UnsafeRawBufferPointer) throws(Errno) -> [UInt8] {
        guard FUSE.isValidName(name), !FUSEServer.isDotOrDotDot(name) else {
            BackendLog.limited("bad-name", "refusing the name '\(String(decoding: name, as: UTF8.self))': not one path component")
            throw Errno(EINVAL)
        }
        return Array(name)
    }

    /// LOOKUP `name` in the directory open at `parentFD` (an O_PATH node or an OPENDIR
    /// handle): the node, its lookup count raised by one, and its stat.
    func lookup(parentFD: Int32, name: UnsafeRawBufferPointer) throws(Errno) -> (FSNode, stat) {
        let name = try checkName(name)
        var fd = LinuxFS.withCString(name) { openat(parentFD, $0, LinuxFS.pathOnly | LinuxFS.noFollow | LinuxFS.closeOnExec) }
        guard fd >= 0 else { throw Errno.current }
        var status: stat
        do {
            status = try LinuxFS.fstat(fd)
            if status.st_mode & S_IFMT == S_IFLNK {
                let target = try resolveBeneathRoot(parentFD: parentFD, name: name)
                close(fd)
                fd = target
                status = try LinuxFS.fstat(fd)
            }
        } catch {
            close(fd)
            throw error
        }
        return (try adopt(fd: fd, status: status, name: name), status)
    }

    /// Takes ownership of an O_PATH `fd`: the existing node of that inode (fd closed) or
    /// a new one; either way its lookup count goes up by one.
    func adopt(fd: Int32, status: stat, name: [UInt8]) throws(Errno) -> FSNode {
        let type = status.st_mode & S_IFMT
        guard type == S_IFDIR || type == S_IFREG else {
            close(fd)
            BackendLog.limited("special-file", "refusing '\(String(decoding: name, as: UTF8.self))': not a regular file or directory")
            throw Errno(EACCES)
        }
        let key = FileKey(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
        if let id = nodeByKey[key], let node = nodes[id] {
            close(fd)
            if node.id != FUSE.rootID { node.lookups += 1 }
            return node
        }
        do { try admitNode() } catch { close(fd); throw error }
        let node = FSNode(id: nextNode, fd: fd, key: key, isDirectory: type == S_IFDIR, lookups: 1)
        nextNode += 1
        nodes[node.id] = node
        nodeByKey[key] = node.id
        return node
    }

    /// Follows the symlink `name` in `parentFD` only if it resolves below the root.
    func resolveBeneathRoot(parentFD: Int32, name: [UInt8]) throws(Errno) -> Int32 {
        let display = String(decoding: name, as: UTF8.self)
        guard let parentPath = LinuxFS.path(of: parentFD), let below = pathBelowRoot(parentPath) else {
            BackendLog.limited("symlink-outside", "refusing the symlink '\(display)': its folder is not inside the share")
            throw Errno(EACCES)
        }
        let path = below.isEmpty ? name : below + [0x2F] + name
        let fd = LinuxFS.openat2(rootFD, path, flags: LinuxFS.pathOnly | LinuxFS.closeOnExec,
                                 resolve: LinuxFS.resolveBeneath | LinuxFS.resolveNoMagicLinks)
        guard fd >= 0 else {
            let code = errno
            // A missing target, or a shortage of descriptors or memory, is what it is.
            if code == ENOENT || code == EMFILE || code == ENFILE || code == ENOMEM { throw Errno(code) }
            BackendLog.limited("symlink-outside", "refusing the symlink '\(display)': it leads outside the share (\(String(cString: strerror(code))))")
            throw Errno(EACCES)
        }
        return fd
    }

    /// `absolute` relative to the root ([] for the root itself), or nil if outside it.
    func pathBelowRoot(_ absolute: [UInt8]) -> [UInt8]? {
        if absolute == rootPath { return [] }
        let prefix = rootPath == [0x2F] ? rootPath : rootPath + [0x2F]
        guard absolute.count > prefix.count, Array(absolute[..<prefix.count]) == prefix else { return nil }
        return Array(absolute[prefix.count...])
    }

    /// FORGET: drops `lookups` from node `id`; at 0 the node goes. The root stays.
    func forget(_ id: UInt64, lookups: UInt64) {
        guard id != FUSE.rootID else { return }
        guard let node = nodes[id] else {
            BackendLog.debug("FORGET of unknown node \(id)")
            return
        }
        node.lookups -= min(node.lookups, lookups)
        guard node.lookups == 0 else { return }
        close(node.fd)
        nodes[id] = nil
        nodeByKey[node.key] = nil
    }

    /// DESTROY (and deinit): every handle closed, every node but the root dropped.
    func dropAll(keepRoot: Bool) {
        for handle in handles.values { close(handle.fd) }
        handles.removeAll()
        for node in nodes.values where !(keepRoot && node.id == FUSE.rootID) {
            close(node.fd)
            nodes[node.id] = nil
            nodeByKey[node.key] = nil
        }
    }

    /// The entries of the directory open at `fd`, without ".", ".." and special files.
    func snapshot(_ fd: Int32) throws(Errno) -> [FSDirectoryEntry] {
        let listing = openat(fd, ".", O_RDONLY | LinuxFS.directory | LinuxFS.closeOnExec)
        guard listing >= 0 else { throw Errno.current }
        guard let stream = fdopendir(listing) else { let e = Errno.current; close(listing); throw e }
        defer { closedir(stream) }
        var entries: [FSDirectoryEntry] = []
        while let entry = readdir(stream) {
            let name: [UInt8] = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 })
            }
            if name == [0x2E] || name == [0x2E, 0x2E] || name.isEmpty { continue }
            var type = UInt32(entry.pointee.d_type)
            switch Int(type) {
            case Int(DT_FIFO), Int(DT_CHR), Int(DT_BLK), Int(DT_SOCK): continue
            case Int(DT_LNK): type = 0
            default: break
            }
            entries.append(FSDirectoryEntry(name: name, inode: UInt64(entry.pointee.d_ino), type: type))
        }
        return entries
    }
}
