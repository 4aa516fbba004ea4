// What no guest request may do to the host, whoever toro-fs runs as (root, on the README's
// path): DESIGN.md "Robustness rules". Each rule is checked before anything changes.
//
//   * No set-user-ID, set-group-ID or sticky bit comes from the guest. CREATE and MKDIR
//     modes are masked to 0o777 (the create succeeds without the bits), and a directory
//     that inherited S_ISGID from its parent has it cleared; SETATTR asking for any of
//     the three is refused with EPERM (a chmod that cannot be honoured fails loudly rather
//     than half-works). Before the guest may write or truncate a file, its set-user-ID and
//     set-group-ID bits are cleared, as the kernel does for an unprivileged writer (root
//     has CAP_FSETID and would keep them): the guest can never rewrite a set-ID program.
//   * No ownership change: SETATTR with a uid or gid other than the file's current one is
//     EPERM; the same uid or gid is a no-op (no chown call, which as root would also clear
//     set-ID bits behind the guest's back).
//   * No FIFO, device or socket is ever opened. Guest names are opened O_PATH|O_NOFOLLOW
//     (which opens nothing) and only regular files and directories become nodes; I/O
//     descriptors are re-opened from a node through /proc/self/fd (exactly the inode
//     checked, never a path walked again) with O_NONBLOCK, and their type is checked with
//     fstat before use. CREATE first tries O_CREAT|O_EXCL; when the name exists it is
//     looked at through O_PATH and re-opened only if it is a regular file, so CREATE of an
//     existing FIFO is EACCES at once instead of an open that blocks for a writer.
import Wire
import Glibc

extension FUSEServer {
    /// The permission bits a guest may ask for: read, write, execute for owner, group, others.
    static let guestModeBits: UInt32 = 0o777
    /// S_ISUID | S_ISGID | S_ISVTX.
    static let specialBits: UInt32 = 0o7000
    /// S_ISUID | S_ISGID: what writing a file clears.
    static let setIDBits: UInt32 = 0o6000

    /// SETATTR's refusals (EPERM), checked against the file as it is now.
    func checkAttributeChange(_ a: FUSESetAttributes, current: stat) throws(Errno) {
        if a.valid & FUSESetAttributes.validMode != 0, a.mode & FUSEServer.specialBits != 0 {
            BackendLog.limited("setid", "refusing a chmod to 0o\(String(a.mode & 0o7777, radix: 8)): no set-ID or sticky bits from the guest")
            throw Errno(EPERM)
        }
        let uidChange = a.valid & FUSESetAttributes.validUID != 0 && a.uid != current.st_uid
        let gidChange = a.valid & FUSESetAttributes.validGID != 0 && a.gid != current.st_gid
        if uidChange || gidChange {
            BackendLog.limited("chown", "refusing a chown to \(a.uid):\(a.gid): the guest never changes ownership")
            throw Errno(EPERM)
        }
    }

    /// Clears S_ISUID, S_ISGID and S_ISVTX from the inode behind `fd` (any descriptor, O_PATH
    /// included) if it has any; `status` is its stat, updated.
    func clearSpecialBits(_ fd: Int32, _ status: inout stat) throws(Errno) {
        guard UInt32(status.st_mode) & FUSEServer.specialBits != 0 else { return }
        let mode = mode_t(UInt32(status.st_mode) & FUSEServer.guestModeBits)
        guard LinuxFS.withCString(LinuxFS.procPath(fd), { chmod($0, mode) }) == 0 else { throw Errno.current }
        status = try LinuxFS.fstat(fd)
    }

    /// Before the guest writes or truncates the regular file open at `fd`: clears its
    /// set-user-ID and set-group-ID bits.
    func clearSetIDBeforeWriting(_ fd: Int32) throws(Errno) {
        let status = try LinuxFS.fstat(fd)
        guard UInt32(status.st_mode) & FUSEServer.setIDBits != 0 else { return }
        guard fchmod(fd, mode_t(UInt32(status.st_mode) & ~FUSEServer.setIDBits & 0o7777)) == 0 else { throw Errno.current }
    }

    /// Whether `flags` (an open's) let the guest change the file's contents.
    static func writes(_ flags: Int32) -> Bool { flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0 }

    /// An I/O descriptor for `node` (re-opened with `flags` | O_NONBLOCK), its type checked.
    func openForIO(_ node: FSNode, flags: Int32) throws(Errno) -> Int32 {
        try openForIO(pathFD: node.fd, directory: node.isDirectory, flags: flags)
    }

    /// An I/O descriptor for the inode behind the O_PATH `pathFD`, which must be a
    /// directory (`directory`) or a regular file.
    func openForIO(pathFD: Int32, directory: Bool, flags: Int32) throws(Errno) -> Int32 {
        let fd = try LinuxFS.reopen(pathFD, flags: flags | O_NONBLOCK)
        let type: mode_t
        do { type = try LinuxFS.fstat(fd).st_mode & S_IFMT } catch { close(fd); throw error }
        guard type == (directory ? S_IFDIR : S_IFREG) else {
            close(fd)
            BackendLog.limited("special-file", "refusing to open an inode that is not a regular file or directory")
            throw Errno(EACCES)
        }
        if !directory && FUSEServer.writes(flags) {
            do { try clearSetIDBeforeWriting(fd) } catch { close(fd); throw error }
        }
        return fd
    }

    /// CREATE's open of `name` in `parent`: a new regular file (mode masked to 0o777), or
    /// the existing regular file when the guest did not ask O_EXCL. Returns the I/O
    /// descriptor, an O_PATH one for the node, and the file's stat.
    func openForCreate(in parent: FSNode, name: [UInt8], flags: Int32, mode: UInt32) throws(Errno) -> (io: Int32, path: Int32, status: stat) {
        let access = flags & FUSEServer.openFlagsKept
        let common = LinuxFS.noFollow | O_NONBLOCK | LinuxFS.closeOnExec | O_NOCTTY
        let created = LinuxFS.withCString(name) {
            openat(parent.fd, $0, access | O_CREAT | O_EXCL | common, mode_t(mode & FUSEServer.guestModeBits))
        }
        if created >= 0 {
            do {
                var status = try LinuxFS.fstat(created)
                try clearSpecialBits(created, &status)
                return (created, try LinuxFS.reopen(created, flags: LinuxFS.pathOnly), status)
            } catch {
                close(created)
                throw error
            }
        }
        guard errno == EEXIST, flags & O_EXCL == 0 else { throw Errno.current }
        // The name exists: look at it without opening it, then open only a regular file.
        let path = LinuxFS.withCString(name) { openat(parent.fd, $0, LinuxFS.pathOnly | LinuxFS.noFollow | LinuxFS.closeOnExec) }
        guard path >= 0 else { throw Errno.current }
        do throws(Errno) {
            let status = try LinuxFS.fstat(path)
            switch status.st_mode & S_IFMT {
            case S_IFREG: break
            case S_IFDIR: throw Errno(EISDIR)
            case S_IFLNK: throw Errno(ELOOP)  // what O_CREAT | O_NOFOLLOW answers
            default:
                BackendLog.limited("special-file", "refusing CREATE of '\(String(decoding: name, as: UTF8.self))': a FIFO, device or socket is there")
                throw Errno(EACCES)
            }
            return (try openForIO(pathFD: path, directory: false, flags: access), path, status)
        } catch {
            close(path)
            throw error
        }
    }
}
