// The Linux file-system calls the FUSE server makes that Swift's Glibc module does not
// spell out: openat2 (syscall 437, Linux 5.6; `struct open_how` {u64 flags, mode,
// resolve}), renameat2, the O_PATH family of flags, and the /proc/self/fd re-open.
//
// Rules for callers: names are raw bytes from the guest (already checked: 1...1024 bytes,
// no NUL, no '/'); `withCString` adds the NUL. Every fd returned is O_CLOEXEC.
import Glibc

/// An errno a request failed with (positive: 2 = ENOENT).
struct Errno: Error {
    let code: Int32
    init(_ code: Int32) { self.code = code }
    /// The current errno (EIO if it is somehow 0).
    static var current: Errno { Errno(errno == 0 ? EIO : errno) }
}

enum LinuxFS {
    static let pathOnly: Int32 = 0o10000000       // O_PATH
    static let noFollow: Int32 = 0o400000         // O_NOFOLLOW
    static let directory: Int32 = 0o200000        // O_DIRECTORY
    static let closeOnExec: Int32 = 0o2000000     // O_CLOEXEC
    static let emptyPath: Int32 = 0x1000          // AT_EMPTY_PATH
    static let removeDirectory: Int32 = 0x200     // AT_REMOVEDIR
    static let currentDirectory: Int32 = -100     // AT_FDCWD
    static let renameNoReplace: UInt32 = 1        // RENAME_NOREPLACE
    static let resolveNoMagicLinks: UInt64 = 0x02 // RESOLVE_NO_MAGICLINKS
    static let resolveBeneath: UInt64 = 0x08      // RESOLVE_BENEATH
    static let utimeNow = 0x3FFF_FFFF             // UTIME_NOW
    static let utimeOmit = 0x3FFF_FFFE            // UTIME_OMIT

    typealias Syscall4 = @convention(c) (Int, Int32, UnsafePointer<CChar>, UnsafeRawPointer, Int) -> Int
    typealias Renameat2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32

    static let syscall4: Syscall4? = symbol("syscall")
    static let renameat2Call: Renameat2? = symbol("renameat2")

    static func symbol<T>(_ name: String) -> T? {
        guard let pointer = dlsym(dlopen(nil, RTLD_NOW), name) else { return nil }
        return unsafeBitCast(pointer, to: T.self)
    }

    /// openat2(dirFD, path, {flags, 0, resolve}); the fd, or -1 with errno set.
    static func openat2(_ dirFD: Int32, _ path: [UInt8], flags: Int32, resolve: UInt64) -> Int32 {
        guard let call = syscall4 else { errno = ENOSYS; return -1 }
        var how: (UInt64, UInt64, UInt64) = (UInt64(UInt32(bitPattern: flags)), 0, resolve)
        let result = withCString(path) { name in
            withUnsafeBytes(of: &how) { call(437, dirFD, name, $0.baseAddress!, 24) }
        }
        return Int32(truncatingIfNeeded: result)
    }

    static func renameat2(_ oldFD: Int32, _ old: [UInt8], _ newFD: Int32, _ new: [UInt8], flags: UInt32) -> Int32 {
        guard let call = renameat2Call else { errno = ENOSYS; return -1 }
        return withCString(old) { o in withCString(new) { n in call(oldFD, o, newFD, n, flags) } }
    }

    /// Calls `body` with `bytes` as a NUL-terminated C string.
    static func withCString<R>(_ bytes: some Collection<UInt8>, _ body: (UnsafePointer<CChar>) -> R) -> R {
        var chars = bytes.map { CChar(bitPattern: $0) }
        chars.append(0)
        return chars.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// `/proc/self/fd/N`: re-opens (or chmods, utimes) exactly the inode `fd` holds.
    static func procPath(_ fd: Int32) -> [UInt8] { Array("/proc/self/fd/\(fd)".utf8) }

    /// The absolute path the kernel has for `fd` (readlink of /proc/self/fd/N), or nil.
    static func path(of fd: Int32) -> [UInt8]? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = withCString(procPath(fd)) { readlink($0, &buffer, 4096) }
        guard count > 0, count < 4096 else { return nil }
        return buffer[..<count].map { UInt8(bitPattern: $0) }
    }

    static func fstat(_ fd: Int32) throws(Errno) -> stat {
        var status = stat()
        guard Glibc.fstat(fd, &status) == 0 else { throw Errno.current }
        return status
    }

    /// Re-opens the inode behind an O_PATH `fd` for I/O (never creating, never following
    /// anything but the /proc magic link to that very inode).
    static func reopen(_ fd: Int32, flags: Int32) throws(Errno) -> Int32 {
        let opened = withCString(procPath(fd)) { open($0, flags | closeOnExec | O_NOCTTY) }
        guard opened >= 0 else { throw Errno.current }
        return opened
    }
}
