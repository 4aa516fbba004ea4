// The FUSEServer fuzz target's folders: a top folder made once per process (removed at
// exit) holding `outside` (a secret the guest must never reach) and, per input, a fresh
// `share`: files, a folder, a FIFO, and symlinks inside, absolute-out and climbing-out.
// `checkAndRemoveShare` checks what the session left (main.swift's invariants) while it
// removes the share iteratively (a guest can nest folders as deep as its input allows).
import FuzzSupport
import Glibc
@testable import VhostUser
@testable import Wire

enum Tree {
    nonisolated(unsafe) static var top = ""
    static var share: String { top + "/share" }
    static var outside: String { top + "/outside" }
    static let secret = Array("secret".utf8)

    static func createTop() {
        var template = Array("/tmp/fuzz-fuseserver.XXXXXX".utf8CString)
        top = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        mkdir(outside, 0o755)
        write(outside + "/secret", secret, mode: 0o600)
        atexit {
            _ = Tree.removeShare()
            unlink(Tree.outside + "/secret")
            rmdir(Tree.outside)
            rmdir(Tree.top)
        }
    }

    static func write(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        precondition(fd >= 0, "fuzz setup: create \(path)")
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    static func read(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 64)
        let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return n > 0 ? Array(bytes[..<n]) : []
    }

    static func createShare() {
        mkdir(share, 0o755)
        write(share + "/file", (0..<64).map { UInt8($0) })
        mkdir(share + "/dir", 0o755)
        write(share + "/dir/inner", Array("inner file bytes".utf8))
        mkfifo(share + "/fifo", 0o666)
        symlink("file", share + "/link-in")
        symlink(outside + "/secret", share + "/link-abs")
        symlink("../outside/secret", share + "/link-climb")
        symlink("dir", share + "/link-dir")
        symlink("../../outside", share + "/dir/link-up")
    }

    /// The names in `path` but "." and "..", as the bytes they are (a guest name need not
    /// be UTF-8).
    static func names(_ path: [UInt8]) -> [[UInt8]] {
        guard let dir = withPath(path, { opendir($0) }) else { return [] }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if name != [0x2E] && name != [0x2E, 0x2E] { names.append(name) }
        }
        return names
    }

    static func names(_ path: String) -> [String] { names(Array(path.utf8)).map { String(decoding: $0, as: UTF8.self) } }

    static func withPath<R>(_ path: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
        var chars = path.map { CChar(bitPattern: $0) }
        chars.append(0)
        return chars.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// Checks the invariants on the host (main.swift), then removes the share.
    static func checkAndRemoveShare() {
        precondition(names(top).sorted() == ["outside", "share"], "something appeared beside the share: \(names(top))")
        precondition(names(outside) == ["secret"], "something appeared outside the share: \(names(outside))")
        var status = stat()
        precondition(lstat(outside + "/secret", &status) == 0 && status.st_mode == S_IFREG | 0o600, "the secret's mode changed")
        precondition(read(outside + "/secret") == secret, "the secret's bytes changed")
        let (fifos, symlinks) = removeShare()
        precondition(fifos <= 1, "a FIFO appeared in the share")
        precondition(symlinks <= 5, "a symlink appeared in the share")
    }

    /// Removes the share, checking each entry's bits and owner; the FIFOs and symlinks seen.
    @discardableResult
    static func removeShare() -> (fifos: Int, symlinks: Int) {
        var directories = [Array(share.utf8)]
        var fifos = 0, symlinks = 0
        var index = 0
        while index < directories.count {
            let directory = directories[index]
            index += 1
            var status = stat()
            guard withPath(directory, { lstat($0, &status) }) == 0 else { continue }
            checkBitsAndOwner(status, directory)
            _ = withPath(directory) { chmod($0, 0o700) }   // the guest may have taken its own permissions away
            for name in names(directory) {
                let path = directory + [0x2F] + name
                guard withPath(path, { lstat($0, &status) }) == 0 else { continue }
                checkBitsAndOwner(status, path)
                switch status.st_mode & S_IFMT {
                case S_IFDIR: directories.append(path); continue
                case S_IFREG: break
                case S_IFIFO: fifos += 1
                case S_IFLNK: symlinks += 1
                default: preconditionFailure("a device or socket appeared in the share")
                }
                precondition(withPath(path, { unlink($0) }) == 0, "fuzz cleanup: unlink")
            }
        }
        for directory in directories.reversed() { _ = withPath(directory) { rmdir($0) } }
        precondition(!names(top).contains("share"), "fuzz cleanup: the share is still there")
        return (fifos, symlinks)
    }

    static func checkBitsAndOwner(_ status: stat, _ path: [UInt8]) {
        precondition(status.st_mode & 0o7000 == 0, "set-ID or sticky bit in the share")
        precondition(status.st_uid == geteuid() && status.st_gid == getegid(), "a file in the share changed owner")
    }
}
