// What a shared folder holds, read without following a symlink, and a staging copy of it
// that holds only what a guest may see.
//
// `FolderTree.scan` walks DIR with lstat (never descending into a symlink) and records every
// entry by its path relative to DIR. What a guest may see is regular files, folders, and
// symlinks that stay inside DIR; left out are symlinks leading out of DIR (absolute targets,
// or relative ones whose `..` climbs above DIR, resolved lexically from the link's folder),
// devices, FIFOs and sockets, names that are not UTF-8, and DIR's own top-level
// `lost+found` (the file system's).
//
// `FolderTree.stage` copies what the scan kept into an empty folder: folders made, files
// hard-linked when the two folders share a file system, else copied, symlinks re-made.
// Set-ID and sticky bits are dropped everywhere.
//
// Rules for callers: the walk is iterative (no recursion whose depth the folder decides) and
// reads only; a file that cannot be read fails the whole scan or copy with one line naming it.
// The tree is a snapshot: a folder changed during the run is compared against it afterwards.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

public struct FolderTree: Sendable, Equatable {
    /// An entry's kind as the tree records it.
    public enum Kind: Sendable, Equatable {
        case file(size: Int64)
        case folder
        case symlink(target: String)
    }

    /// Every entry a guest may see, by path relative to the root ("sub/a.txt").
    public var entries: [String: Kind] = [:]
    /// Entries left out (symlinks leading out, devices, FIFOs, sockets, the top-level
    /// lost+found), by relative path.
    public var leftOut: [String] = []

    /// The entries left out, for one line: the first five by name and how many more.
    public var leftOutSummary: String {
        leftOut.prefix(5).joined(separator: ", ") + (leftOut.count > 5 ? " and \(leftOut.count - 5) more" : "")
    }

    /// Whether `path` (relative) was in the tree.
    public func contains(_ path: String) -> Bool { entries[path] != nil }

    /// The bytes the entries take on a file system with 4 KiB blocks, roughly.
    public var footprint: Int64 {
        var total: Int64 = 4096
        for kind in entries.values {
            switch kind {
            case .file(let size): total += (size + 4095) / 4096 * 4096 + 256
            case .folder: total += 4096 + 256
            case .symlink: total += 256
            }
        }
        return total
    }

    /// Walks `root` (a folder) without following a symlink.
    public static func scan(_ root: String) throws(ToolFailure) -> FolderTree {
        var tree = FolderTree()
        var pending: [String] = [""]
        while let folder = pending.popLast() {
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: join(root, folder))
            } catch {
                throw ToolFailure(.badArgument, "--share: cannot read the folder '\(join(root, folder))'")
            }
            for name in names.sorted() {
                let relative = folder.isEmpty ? name : folder + "/" + name
                if relative == "lost+found" { tree.leftOut.append(relative); continue }
                var info = stat()
                // Gone meanwhile, or a name that is not UTF-8 (read back differently): left out.
                guard lstat(join(root, relative), &info) == 0 else { tree.leftOut.append(relative); continue }
                switch info.st_mode & S_IFMT {
                case S_IFREG:
                    tree.entries[relative] = .file(size: Int64(info.st_size))
                case S_IFDIR:
                    tree.entries[relative] = .folder
                    pending.append(relative)
                case S_IFLNK:
                    let target = readLink(join(root, relative)) ?? ""
                    if symlinkStaysInside(target, folder: folder) {
                        tree.entries[relative] = .symlink(target: target)
                    } else {
                        tree.leftOut.append(relative)
                    }
                default:
                    tree.leftOut.append(relative)
                }
            }
        }
        tree.leftOut.sort()
        return tree
    }

    /// Whether a symlink in `folder` (relative to the root, "" for the root) pointing at
    /// `target` resolves, lexically, to a path inside the root.
    public static func symlinkStaysInside(_ target: String, folder: String) -> Bool {
        guard !target.isEmpty, !target.hasPrefix("/") else { return false }
        var depth = folder.isEmpty ? 0 : folder.split(separator: "/").count
        for component in target.split(separator: "/") {
            if component == "." { continue }
            if component == ".." {
                depth -= 1
                if depth < 0 { return false }
            } else {
                depth += 1
            }
        }
        return true
    }

    /// Copies the tree's entries from `root` into `destination`, an existing empty folder.
    public func stage(from root: String, into destination: String) throws(ToolFailure) {
        let device = deviceOf(root)
        let sameFileSystem = device != nil && device == deviceOf(destination)
        // Sorted paths put each folder before what it holds.
        for path in entries.keys.sorted() {
            let source = join(root, path), target = join(destination, path)
            switch entries[path]! {
            case .folder:
                guard mkdir(target, 0o700) == 0 else {
                    throw ToolFailure(.qemuFailed, "cannot create \(target): \(errnoText())")
                }
            case .symlink(let linkTarget):
                guard symlink(linkTarget, target) == 0 else {
                    throw ToolFailure(.qemuFailed, "cannot create \(target): \(errnoText())")
                }
            case .file:
                var info = stat()
                guard lstat(source, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
                    throw ToolFailure(.badArgument, "--share: '\(source)' changed while it was being copied")
                }
                // A hard link shares the inode, so set-ID bits would come along: copy those.
                let plain = info.st_mode & (S_ISUID | S_ISGID) == 0
                if sameFileSystem && plain && link(source, target) == 0 { continue }
                try copyFile(source, to: target, mode: info.st_mode & 0o777)
            }
        }
        // Folder modes last, so a read-only folder could be filled first.
        for path in entries.keys.sorted() where entries[path] == .folder {
            var info = stat()
            if lstat(join(root, path), &info) == 0 { chmod(join(destination, path), info.st_mode & 0o777) }
        }
    }
}

/// `root` joined with a relative `path` ("" is the root itself).
func join(_ root: String, _ path: String) -> String {
    path.isEmpty ? root : (root.hasSuffix("/") ? root + path : root + "/" + path)
}

/// A symlink's target, or nil.
func readLink(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let count = readlink(path, &buffer, buffer.count - 1)
    guard count >= 0 else { return nil }
    return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func deviceOf(_ path: String) -> UInt? {
    var info = stat()
    return stat(path, &info) == 0 ? UInt(info.st_dev) : nil
}

/// Copies the regular file `source` to the new file `target` (which must not exist).
func copyFile(_ source: String, to target: String, mode: mode_t) throws(ToolFailure) {
    let input = open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
    guard input >= 0 else { throw ToolFailure(.badArgument, "--share: cannot read '\(source)': \(errnoText())") }
    defer { close(input) }
    let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
    guard output >= 0 else { throw ToolFailure(.qemuFailed, "cannot create \(target): \(errnoText())") }
    defer { close(output) }
    guard copyContents(from: input, to: output) else {
        throw ToolFailure(.qemuFailed, "copying \(source) to \(target) failed: \(errnoText())")
    }
}

/// Copies everything readable from `input` to `output`; false on a read or write error.
func copyContents(from input: Int32, to output: Int32) -> Bool {
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = read(input, &buffer, buffer.count)
        if count < 0 { if errno == EINTR { continue }; return false }
        if count == 0 { return true }
        var offset = 0
        while offset < count {
            let written = buffer[offset..<count].withUnsafeBytes { write(output, $0.baseAddress, $0.count) }
            if written < 0 { if errno == EINTR { continue }; return false }
            offset += written
        }
    }
}
