// A FUSE 7.31 server confined to one host folder: the file system `toro-fs` serves to the
// guest's virtio-fs driver. In-process and transport-free: `handle` takes one request's
// bytes and writes its reply; FSDevice moves the bytes to and from the rings.
//
// Replies follow fuse.h 7.31 (Wire's FUSEStructures): the out header's `len` is the whole
// reply, `unique` is the request's, `error` is 0 or -errno with no body. Requests are
// decoded by Wire's FUSEIncomingRequest; the guest is hostile (STYLE principle 7): a
// request that does not decode is logged and answered EINVAL (or not at all when no
// header or no reply space is there); unknown node ids are ENOENT, unknown handles EBADF.
//
// Rules for callers:
//   * `reply` must not overlap `request`. A nil result means "no reply": FORGET,
//     BATCH_FORGET, or a request without room for even an out header.
//   * Everything that must fit fits in `reply`: READ and READDIR sizes are capped by it;
//     a fixed-size reply that cannot fit is ERANGE, checked before anything changes.
//   * Read-only (`readOnly`): every request that would change the host is EROFS.
//   * Not thread-safe: one caller at a time (the device's single poll loop).
// Node and handle lifetimes and the confinement rule: FUSEServerNodes.swift. The
// operations: FUSEServerOperations.swift. What no request may do to the host (set-ID bits,
// ownership, FIFOs and devices): FUSEServerPolicy.swift. Caps on what one guest holds:
// FUSEServerLimits.swift. Log lines a guest can provoke are rate-limited (BackendLog.limited).
import Wire
import Glibc

public final class FUSEServer {
    /// The largest WRITE accepted (fuse_init_out.max_write) and READ answered.
    public static let maximumWrite: UInt32 = 1 << 20
    /// Entry and attribute cache validity given to the guest, in seconds.
    static let validity: UInt64 = 1

    public let readOnly: Bool
    public let limits: FUSEServerLimits
    let rootFD: Int32
    /// The root's absolute path as the kernel reports it (readlink /proc/self/fd/N).
    let rootPath: [UInt8]
    var nodes: [UInt64: FSNode] = [:]
    var nodeByKey: [FileKey: UInt64] = [:]
    var handles: [UInt64: FSHandle] = [:]
    var nextNode: UInt64 = 2
    var nextHandle: UInt64 = 1

    /// Serves the directory at `root`. Throws when it cannot be opened as a directory or
    /// the kernel lacks openat2 (confinement depends on it).
    public init(root: String, readOnly: Bool, limits: FUSEServerLimits = FUSEServerLimits()) throws(SystemError) {
        self.readOnly = readOnly
        self.limits = limits
        let fd = open(root, LinuxFS.pathOnly | LinuxFS.directory | LinuxFS.closeOnExec)
        guard fd >= 0 else { throw SystemError("open \(root)") }
        guard let path = LinuxFS.path(of: fd), let status = try? LinuxFS.fstat(fd) else {
            let code = errno
            close(fd)
            throw SystemError("readlink /proc/self/fd for \(root)", code)
        }
        let probe = LinuxFS.openat2(fd, [0x2E], flags: LinuxFS.pathOnly | LinuxFS.closeOnExec, resolve: LinuxFS.resolveBeneath)
        guard probe >= 0 else {
            let code = errno
            close(fd)
            throw SystemError("openat2 (Linux 5.6 or later is needed to confine the share)", code)
        }
        close(probe)
        rootFD = fd
        rootPath = path
        let key = FileKey(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
        nodes[FUSE.rootID] = FSNode(id: FUSE.rootID, fd: fd, key: key, isDirectory: true, lookups: 1)
        nodeByKey[key] = FUSE.rootID
    }

    deinit { dropAll(keepRoot: false) }

    /// Descriptors held: the root, one per node, one per open handle.
    public var openDescriptorCount: Int { nodes.count + handles.count }
    /// Nodes the guest may name, the root included.
    public var nodeCount: Int { nodes.count }
    /// Open file and directory handles.
    public var handleCount: Int { handles.count }

    /// Handles one request; the reply's length, or nil when there is none (see above).
    public func handle(_ request: UnsafeRawBufferPointer, reply: UnsafeMutableRawBufferPointer) -> Int? {
        let decoded: FUSEIncomingRequest
        do {
            decoded = try FUSEIncomingRequest(request)
        } catch {
            guard let (unique, opcode) = FUSEIncomingRequest.peekUnique(request) else {
                BackendLog.limited("fuse-no-header", "dropping a FUSE request of \(request.count) bytes: no header")
                return nil
            }
            BackendLog.limited("fuse-malformed", "malformed FUSE request (opcode \(opcode), unique \(unique)): \(error)")
            guard opcode != FUSEOpcode.forget.rawValue, opcode != FUSEServerOpcode.batchForget,
                  reply.count >= FUSE.outHeaderSize else { return nil }
            return FUSEServer.finish(reply, unique: unique, result: .failure(Errno(EINVAL)))
        }
        switch decoded.operation {
        case .forget(let lookups):
            forget(decoded.nodeID, lookups: lookups)
            return nil
        case .batchForget(let entries, let count):
            for index in 0..<count {
                let (id, lookups) = FUSEIncomingRequest.forgetEntry(entries, index)
                forget(id, lookups: lookups)
            }
            return nil
        default:
            break
        }
        guard reply.count >= FUSE.outHeaderSize else {
            BackendLog.limited("fuse-no-room", "FUSE request \(decoded.unique) (opcode \(decoded.opcode)) has no room for a reply; dropped")
            return nil
        }
        let body = UnsafeMutableRawBufferPointer(rebasing: reply[FUSE.outHeaderSize...])
        let result: Result<Int, Errno>
        do throws(Errno) {
            result = .success(try perform(decoded, body: body))
        } catch {
            result = .failure(error)
        }
        return FUSEServer.finish(reply, unique: decoded.unique, result: result)
    }

    /// Writes the out header for a body of `result` bytes (or an error); the reply length.
    static func finish(_ reply: UnsafeMutableRawBufferPointer, unique: UInt64, result: Result<Int, Errno>) -> Int {
        var length = FUSE.outHeaderSize
        var error: Int32 = 0
        switch result {
        case .success(let count): length += count
        case .failure(let failure): error = -min(max(failure.code, 1), FUSE.errnoMaximum)
        }
        LittleEndian.store(UInt32(length), into: reply, at: 0)
        LittleEndian.store(error, into: reply, at: 4)
        LittleEndian.store(unique, into: reply, at: 8)
        return length
    }

    /// Fails with ERANGE unless `body` holds `count` bytes.
    static func need(_ count: Int, in body: UnsafeMutableRawBufferPointer) throws(Errno) {
        guard body.count >= count else { throw Errno(ERANGE) }
    }

    /// Fails with EROFS on a read-only share.
    func mayModify() throws(Errno) {
        if readOnly { throw Errno(EROFS) }
    }

    /// `fuse_attr` from a stat.
    static func attributes(_ s: stat) -> FUSEAttributes {
        var a = FUSEAttributes()
        a.ino = UInt64(s.st_ino); a.size = UInt64(max(s.st_size, 0)); a.blocks = UInt64(max(s.st_blocks, 0))
        a.atime = UInt64(max(s.st_atim.tv_sec, 0)); a.atimensec = UInt32(s.st_atim.tv_nsec)
        a.mtime = UInt64(max(s.st_mtim.tv_sec, 0)); a.mtimensec = UInt32(s.st_mtim.tv_nsec)
        a.ctime = UInt64(max(s.st_ctim.tv_sec, 0)); a.ctimensec = UInt32(s.st_ctim.tv_nsec)
        a.mode = UInt32(s.st_mode); a.nlink = UInt32(truncatingIfNeeded: s.st_nlink)
        a.uid = s.st_uid; a.gid = s.st_gid; a.rdev = UInt32(truncatingIfNeeded: s.st_rdev)
        a.blksize = UInt32(truncatingIfNeeded: s.st_blksize)
        return a
    }

    /// `fuse_entry_out` for a node just looked up.
    static func entry(_ node: FSNode, _ s: stat) -> FUSEEntry {
        var e = FUSEEntry()
        e.nodeID = node.id
        e.entryValid = validity
        e.attrValid = validity
        e.attributes = attributes(s)
        return e
    }
}
