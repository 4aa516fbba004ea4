// What each FUSE request does on the host (fuse.h 7.31 opcodes), for FUSEServer.handle.
// Each returns the reply body's length, written at the start of `body`, or throws the
// errno to answer. Space for a fixed-size body is checked before anything changes.
//
// Files are opened for I/O by re-opening the node's O_PATH descriptor through
// /proc/self/fd/N: exactly the inode LOOKUP approved, never a path walked again. OPEN
// keeps only the access mode, O_APPEND, O_TRUNC and the sync flags; CREATE adds O_EXCL.
// Every I/O open is O_NONBLOCK with its type checked, and the host-safety rules
// (FUSEServerPolicy.swift) and caps (FUSEServerLimits.swift) come before any change.
// Directory listings omit "." and ".." and special files (FUSEServerNodes.swift).
import Wire
import Glibc

extension FUSEServer {
    static let openFlagsKept: Int32 = O_ACCMODE | O_APPEND | O_TRUNC | 0o4010000 /* O_SYNC */ | 0o10000 /* O_DSYNC */

    func perform(_ request: FUSEIncomingRequest, body: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        let id = request.nodeID
        switch request.operation {
        case .initialize(let major, _, let maxReadahead, _):
            guard major == FUSE.major else {
                BackendLog.line("INIT: the guest speaks FUSE \(major).x, this server 7.31")
                throw Errno(EPROTO)
            }
            try FUSEServer.need(FUSEInitReply.size, in: body)
            var out = FUSEInitReply()
            out.major = FUSE.major; out.minor = FUSE.minor; out.maxReadahead = maxReadahead
            out.maxBackground = 16; out.congestionThreshold = 12
            out.maxWrite = FUSEServer.maximumWrite; out.timeGranularity = 1
            out.maxPages = UInt16(FUSEServer.maximumWrite / 4096)
            out.encode(into: body)
            return FUSEInitReply.size
        case .destroy:
            dropAll(keepRoot: true)
            return 0
        case .lookup(let name):
            try FUSEServer.need(FUSEEntry.size, in: body)
            let (node, status) = try lookup(parentFD: try directory(id).fd, name: name)
            FUSEServer.entry(node, status).encode(into: body)
            return FUSEEntry.size
        case .forget, .batchForget:
            return 0 // Handled before (no reply).
        case .getattr(let fh):
            try FUSEServer.need(FUSEAttributesReply.size, in: body)
            let fd: Int32
            if let fh { fd = try handleFD(fh) } else { fd = try node(id).fd }
            return FUSEServer.attributesReply(try LinuxFS.fstat(fd), into: body)
        case .setattr(let attributes):
            try FUSEServer.need(FUSEAttributesReply.size, in: body)
            try mayModify()
            return try setAttributes(try node(id), attributes, into: body)
        case .open(let flags):
            try FUSEServer.need(FUSEOpenReply.size, in: body)
            let node = try node(id)
            guard !node.isDirectory else { throw Errno(EISDIR) }
            let kept = Int32(bitPattern: flags) & FUSEServer.openFlagsKept
            if FUSEServer.writes(kept) { try mayModify() }
            try admitHandle()
            let fd = try openForIO(node, flags: kept)
            return FUSEServer.openReply(addHandle(FSHandle(fd: fd, isDirectory: false)), into: body)
        case .opendir:
            try FUSEServer.need(FUSEOpenReply.size, in: body)
            let parent = try directory(id)
            try admitHandle()
            let fd = try openForIO(parent, flags: O_RDONLY | LinuxFS.directory)
            let handle = FSHandle(fd: fd, isDirectory: true)
            do { handle.entries = try snapshot(fd) } catch { close(fd); throw error }
            return FUSEServer.openReply(addHandle(handle), into: body)
        case .read(let fh, let offset, let size):
            let handle = try handle(fh, directory: false)
            guard offset <= UInt64(Int64.max) else { throw Errno(EINVAL) }
            let count = min(Int(size), body.count, Int(FUSEServer.maximumWrite))
            let n = pread(handle.fd, body.baseAddress, count, off_t(offset))
            guard n >= 0 else { throw Errno.current }
            return n
        case .write(let fh, let offset, let data):
            try FUSEServer.need(8, in: body)
            try mayModify()
            let handle = try handle(fh, directory: false)
            guard offset <= UInt64(Int64.max) - UInt64(data.count) else { throw Errno(EFBIG) }
            var written = 0
            while written < data.count {
                let n = pwrite(handle.fd, data.baseAddress! + written, data.count - written, off_t(offset) + off_t(written))
                if n < 0 { if errno == EINTR { continue }; if written == 0 { throw Errno.current }; break }
                if n == 0 { break }
                written += n
            }
            LittleEndian.store(UInt32(written), into: body, at: 0)
            LittleEndian.store(UInt32(0), into: body, at: 4)
            return 8
        case .flush(let fh):
            _ = try handle(fh, directory: false)
            return 0
        case .fsync(let fh, let flags), .fsyncdir(let fh, let flags):
            let isDirectory: Bool
            if case .fsyncdir = request.operation { isDirectory = true } else { isDirectory = false }
            let fd = try handle(fh, directory: isDirectory).fd
            guard (flags & 1 != 0 ? fdatasync(fd) : fsync(fd)) == 0 else { throw Errno.current }
            return 0
        case .release(let fh, _), .releasedir(let fh, _):
            let isDirectory: Bool
            if case .releasedir = request.operation { isDirectory = true } else { isDirectory = false }
            let handle = try handle(fh, directory: isDirectory)
            close(handle.fd)
            handles[fh] = nil
            return 0
        case .readdir(let fh, let offset, let size), .readdirplus(let fh, let offset, let size):
            var plus = false
            if case .readdirplus = request.operation { plus = true }
            let handle = try handle(fh, directory: true)
            if offset == 0 { handle.entries = try snapshot(handle.fd) }
            let room = UnsafeMutableRawBufferPointer(rebasing: body[..<min(Int(size), body.count)])
            return readDirectory(handle, from: offset, plus: plus, into: room)
        case .statfs:
            try FUSEServer.need(80, in: body)
            var s = statvfs()
            guard fstatvfs(try node(id).fd, &s) == 0 else { throw Errno.current }
            let words: [UInt64] = [UInt64(s.f_blocks), UInt64(s.f_bfree), UInt64(s.f_bavail), UInt64(s.f_files), UInt64(s.f_ffree)]
            for (i, word) in words.enumerated() { LittleEndian.store(word, into: body, at: i * 8) }
            let halves: [UInt32] = [UInt32(truncatingIfNeeded: s.f_bsize), UInt32(truncatingIfNeeded: s.f_namemax),
                                    UInt32(truncatingIfNeeded: s.f_frsize), 0, 0, 0, 0, 0, 0, 0]
            for (i, half) in halves.enumerated() { LittleEndian.store(half, into: body, at: 40 + i * 4) }
            return 80
        case .create(let name, let flags, let mode, let umask):
            try FUSEServer.need(FUSEEntry.size + FUSEOpenReply.size, in: body)
            try mayModify()
            return try create(in: try directory(id), name: name, flags: flags, mode: mode & ~umask & FUSEServer.guestModeBits, into: body)
        case .mkdir(let name, let mode, let umask):
            try FUSEServer.need(FUSEEntry.size, in: body)
            try mayModify()
            let parent = try directory(id)
            let checked = try checkName(name)
            try admitNode()
            let made = LinuxFS.withCString(checked) { mkdirat(parent.fd, $0, mode_t(mode & ~umask & FUSEServer.guestModeBits)) }
            guard made == 0 else { throw Errno.current }
            var (node, status) = try lookup(parentFD: parent.fd, name: name)
            try clearSpecialBits(node.fd, &status)   // S_ISGID inherited from the parent
            FUSEServer.entry(node, status).encode(into: body)
            return FUSEEntry.size
        case .unlink(let name), .rmdir(let name):
            try mayModify()
            let parent = try directory(id)
            let checked = try checkName(name)
            var flags: Int32 = 0
            if case .rmdir = request.operation { flags = LinuxFS.removeDirectory }
            guard LinuxFS.withCString(checked, { unlinkat(parent.fd, $0, flags) }) == 0 else { throw Errno.current }
            return 0
        case .rename(let name, let newDirectory, let newName, let flags):
            try mayModify()
            guard flags & ~LinuxFS.renameNoReplace == 0 else { throw Errno(EINVAL) }
            let from = try directory(id), to = try directory(newDirectory)
            let old = try checkName(name), new = try checkName(newName)
            guard LinuxFS.renameat2(from.fd, old, to.fd, new, flags: flags) == 0 else { throw Errno.current }
            return 0
        case .access(let mask):
            let node = try node(id)
            if mask & UInt32(W_OK) != 0 { try mayModify() }
            let allowed = LinuxFS.withCString(LinuxFS.procPath(node.fd)) { faccessat(LinuxFS.currentDirectory, $0, Int32(mask & 7), 0) }
            guard allowed == 0 else { throw Errno.current }
            return 0
        case .refused(let opcode):
            BackendLog.debug("refusing FUSE opcode \(opcode) (no special files, symlinks or hard links)")
            throw Errno(EPERM)
        case .unknown(let opcode):
            BackendLog.debug("FUSE opcode \(opcode) is not implemented")
            throw Errno(ENOSYS)
        }
    }

    func handleFD(_ fh: UInt64) throws(Errno) -> Int32 {
        guard let handle = handles[fh] else { throw Errno(EBADF) }
        return handle.fd
    }

    static func attributesReply(_ status: stat, into body: UnsafeMutableRawBufferPointer) -> Int {
        var out = FUSEAttributesReply()
        out.attrValid = validity
        out.attributes = attributes(status)
        out.encode(into: body)
        return FUSEAttributesReply.size
    }

    static func openReply(_ fh: UInt64, into body: UnsafeMutableRawBufferPointer) -> Int {
        LittleEndian.store(fh, into: body, at: 0)
        LittleEndian.store(UInt64(0), into: body, at: 8)
        return FUSEOpenReply.size
    }

    /// SETATTR: the refusals first (FUSEServerPolicy: set-ID or sticky bits, another
    /// owner), then size (through the handle with FATTR_FH), mode, times; in that order. An
    /// owner or group equal to the current one is a no-op.
    func setAttributes(_ node: FSNode, _ a: FUSESetAttributes, into body: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        let proc = LinuxFS.procPath(node.fd)
        try checkAttributeChange(a, current: try LinuxFS.fstat(node.fd))
        if a.valid & FUSESetAttributes.validSize != 0 {
            guard !node.isDirectory else { throw Errno(EISDIR) }
            guard a.size <= UInt64(Int64.max) else { throw Errno(EINVAL) }
            if a.valid & FUSESetAttributes.validFileHandle != 0 {
                let fd = try handle(a.fileHandle, directory: false).fd
                try clearSetIDBeforeWriting(fd)
                guard ftruncate(fd, off_t(a.size)) == 0 else { throw Errno.current }
            } else {
                let fd = try openForIO(node, flags: O_WRONLY)
                defer { close(fd) }
                guard ftruncate(fd, off_t(a.size)) == 0 else { throw Errno.current }
            }
        }
        if a.valid & FUSESetAttributes.validMode != 0 {
            let mode = mode_t(a.mode & FUSEServer.guestModeBits)
            guard LinuxFS.withCString(proc, { chmod($0, mode) }) == 0 else { throw Errno.current }
        }
        let timeBits = FUSESetAttributes.validAtime | FUSESetAttributes.validMtime | FUSEServerOpcode.setAtimeNow | FUSEServerOpcode.setMtimeNow
        if a.valid & timeBits != 0 {
            func time(_ set: UInt32, _ now: UInt32, _ seconds: UInt64, _ nanoseconds: UInt32) -> timespec {
                if a.valid & now != 0 { return timespec(tv_sec: 0, tv_nsec: LinuxFS.utimeNow) }
                if a.valid & set != 0 { return timespec(tv_sec: Int(clamping: seconds), tv_nsec: Int(min(nanoseconds, 999_999_999))) }
                return timespec(tv_sec: 0, tv_nsec: LinuxFS.utimeOmit)
            }
            var times = [time(FUSESetAttributes.validAtime, FUSEServerOpcode.setAtimeNow, a.atime, a.atimensec),
                         time(FUSESetAttributes.validMtime, FUSEServerOpcode.setMtimeNow, a.mtime, a.mtimensec)]
            guard LinuxFS.withCString(proc, { utimensat(LinuxFS.currentDirectory, $0, &times, 0) }) == 0 else { throw Errno.current }
        }
        return FUSEServer.attributesReply(try LinuxFS.fstat(node.fd), into: body)
    }

    /// CREATE: a new regular file, or the existing one without O_EXCL (never following a
    /// symlink, never opening anything but a regular file: FUSEServerPolicy.openForCreate);
    /// answers fuse_entry_out + fuse_open_out. Both caps are checked before anything is made.
    func create(in parent: FSNode, name: UnsafeRawBufferPointer, flags: UInt32, mode: UInt32,
                into body: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        let checked = try checkName(name)
        try admitHandle()
        try admitNode()
        let kept = Int32(bitPattern: flags) & (FUSEServer.openFlagsKept | O_EXCL)
        let (fd, pathFD, status) = try openForCreate(in: parent, name: checked, flags: kept, mode: mode)
        let node: FSNode
        do {
            node = try adopt(fd: pathFD, status: status, name: checked)
        } catch {
            close(fd)
            throw error
        }
        FUSEServer.entry(node, status).encode(into: body)
        let fh = addHandle(FSHandle(fd: fd, isDirectory: false))
        return FUSEEntry.size + FUSEServer.openReply(fh, into: UnsafeMutableRawBufferPointer(rebasing: body[FUSEEntry.size...]))
    }

    /// READDIR(PLUS) from snapshot index `offset`; each record's `off` is the next index.
    /// READDIRPLUS takes a lookup only for a record that fits (fuse.h: each entry with a
    /// non-zero node id counts as a LOOKUP); an entry LOOKUP refuses gets node id 0.
    func readDirectory(_ handle: FSHandle, from offset: UInt64, plus: Bool, into room: UnsafeMutableRawBufferPointer) -> Int {
        var writer = FUSEDirectoryWriter(room)
        var index = Int(min(offset, UInt64(handle.entries.count)))
        while index < handle.entries.count {
            let item = handle.entries[index]
            let fixed = plus ? FUSEDirectory.direntPlusSize : FUSEDirectory.direntSize
            guard (fixed + item.name.count + 7) & ~7 <= room.count - writer.count else { break }
            var type = item.type
            var entry: FUSEEntry?
            if plus {
                var e = FUSEEntry()
                e.attributes.ino = item.inode
                e.attributes.mode = type << 12
                if let (node, status) = lookupForListing(parentFD: handle.fd, name: item.name) {
                    e = FUSEServer.entry(node, status)
                    type = (e.attributes.mode >> 12) & 0xF
                }
                entry = e
            }
            let appended = item.name.withUnsafeBytes {
                writer.append(ino: item.inode, offset: UInt64(index + 1), type: type, name: $0, entry: entry)
            }
            if !appended { break }
            index += 1
        }
        return writer.count
    }

    /// LOOKUP for a READDIRPLUS record; nil when it is refused.
    func lookupForListing(parentFD: Int32, name: [UInt8]) -> (FSNode, stat)? {
        var copy = name
        return copy.withUnsafeMutableBytes { raw -> (FSNode, stat)? in
            do throws(Errno) {
                return try lookup(parentFD: parentFD, name: UnsafeRawBufferPointer(raw))
            } catch {
                return nil
            }
        }
    }
}
