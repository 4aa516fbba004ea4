// Makes a shared folder match what a guest left: the write-back half of `--share` on legacy.
//
// `FolderSync.apply(from: extracted, to: folder, before: tree)` compares `extracted` (the
// image's tree, as `debugfs rdump` wrote it into a private folder) with `folder` (the
// user's DIR) and changes `folder`: files and folders the guest created are created, files
// whose bytes or permission bits changed are rewritten in place (the inode, and so its owner
// and hard links, stays), entries the guest deleted are removed (folders with what they
// hold), and an entry whose kind changed is replaced. A rename is a deletion plus a creation.
//
// What is never done:
// - follow a symlink in `folder`: every folder is opened component by component with
//   O_NOFOLLOW from DIR's own descriptor, and entries are created, opened and removed with
//   the *at() calls relative to it, so a link planted in DIR (by the guest's previous run,
//   or by anyone while this runs) is removed or left, never written through;
// - touch an entry the image never held, except inside a folder the guest removed (`before`, the tree the image was built from: a
//   symlink leading out, a device, a file the user created on the host while the guest
//   ran): when the guest made something of the same name, the host's entry wins and the
//   conflict is counted;
// - create a symlink leading out of DIR, a set-ID file, or the top-level `lost+found`;
// - change an owner.
//
// Rules for callers: `extracted` must be a private folder of this process's (rdump's output);
// the walk is iterative, so the depth of the guest's folders costs no stack. The first
// failure stops the write-back and is returned as one line; what was written so far stays.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

public enum FolderSync {
    /// What a write-back changed.
    public struct Summary: Sendable, Equatable {
        public var created = 0
        public var updated = 0
        public var removed = 0
        /// Guest entries not written: symlinks leading out, names the host took meanwhile.
        public var skipped = 0
    }

    public static func apply(from extracted: String, to folder: String, before tree: FolderTree) throws(ToolFailure) -> Summary {
        let root = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw ToolFailure(.qemuFailed, "cannot open \(folder): \(errnoText())") }
        defer { close(root) }
        var summary = Summary()
        // Folder modes are set last, so a folder the guest made read-only is filled first.
        var folderModes: [(parent: String, name: String, mode: mode_t)] = []
        var pending: [String] = [""]
        while let relative = pending.popLast() {
            guard let directory = openFolder(root, relative) else {
                throw ToolFailure(.qemuFailed, "cannot open \(join(folder, relative)) without following a link: \(errnoText())")
            }
            defer { close(directory) }
            let wanted = ((try? FileManager.default.contentsOfDirectory(atPath: join(extracted, relative))) ?? [])
                .filter { !(relative.isEmpty && $0 == "lost+found") }.sorted()
            let present = Set(names(in: directory))
            for name in wanted {
                let path = relative.isEmpty ? name : relative + "/" + name
                var source = stat()
                guard lstat(join(extracted, path), &source) == 0 else { continue }
                var target = stat()
                let exists = fstatat(directory, name, &target, AT_SYMLINK_NOFOLLOW) == 0
                let mine = tree.contains(path)
                if exists && !mine { summary.skipped += 1; continue }   // the host's entry wins
                let kind = source.st_mode & S_IFMT
                let mode = source.st_mode & 0o777
                switch kind {
                case S_IFDIR:
                    if exists && target.st_mode & S_IFMT == S_IFDIR {
                        if target.st_mode & 0o777 != mode { folderModes.append((relative, name, mode)); summary.updated += 1 }
                    } else {
                        if exists { try remove(name, in: directory, shownAs: join(folder, path)); summary.removed += 1 }
                        // Owner-writable while it is filled; the guest's mode at the end.
                        guard mkdirat(directory, name, 0o700) == 0 else {
                            throw ToolFailure(.qemuFailed, "cannot create \(join(folder, path)): \(errnoText())")
                        }
                        folderModes.append((relative, name, mode))
                        summary.created += 1
                    }
                    pending.append(path)
                case S_IFREG:
                    if exists && target.st_mode & S_IFMT == S_IFREG {
                        if try !sameContents(join(extracted, path), directory, name) {
                            try writeFile(from: join(extracted, path), into: directory, name, create: false, mode: mode, shownAs: join(folder, path))
                            summary.updated += 1
                        } else if target.st_mode & 0o777 != mode {
                            _ = fchmodat(directory, name, mode, 0)
                            summary.updated += 1
                        }
                    } else {
                        if exists { try remove(name, in: directory, shownAs: join(folder, path)); summary.removed += 1 }
                        try writeFile(from: join(extracted, path), into: directory, name, create: true, mode: mode, shownAs: join(folder, path))
                        summary.created += 1
                    }
                case S_IFLNK:
                    let linkTarget = readLink(join(extracted, path)) ?? ""
                    guard FolderTree.symlinkStaysInside(linkTarget, folder: relative) else { summary.skipped += 1; continue }
                    if exists && target.st_mode & S_IFMT == S_IFLNK && readLinkAt(directory, name) == linkTarget { continue }
                    if exists { try remove(name, in: directory, shownAs: join(folder, path)); summary.removed += 1 }
                    guard symlinkat(linkTarget, directory, name) == 0 else {
                        throw ToolFailure(.qemuFailed, "cannot create \(join(folder, path)): \(errnoText())")
                    }
                    summary.created += 1
                default:
                    summary.skipped += 1   // rdump writes no devices or FIFOs; never create one
                }
            }
            let wantedSet = Set(wanted)
            for name in present.sorted() where !wantedSet.contains(name) {
                let path = relative.isEmpty ? name : relative + "/" + name
                guard tree.contains(path) else { continue }   // not the guest's to delete
                try remove(name, in: directory, shownAs: join(folder, path))
                summary.removed += 1
            }
        }
        for (parent, name, mode) in folderModes.reversed() {
            guard let directory = openFolder(root, parent) else { continue }
            _ = fchmodat(directory, name, mode, 0)
            close(directory)
        }
        return summary
    }

    /// Opens the folder `relative` under `root`, every component without following a link.
    static func openFolder(_ root: Int32, _ relative: String) -> Int32? {
        var current = dup(root)
        guard current >= 0 else { return nil }
        for component in relative.split(separator: "/") {
            let next = openat(current, String(component), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(current)
            guard next >= 0 else { return nil }
            current = next
        }
        return current
    }

    /// The names in the folder open as `directory` (without `.` and `..`).
    static func names(in directory: Int32) -> [String] {
        let copy = dup(directory)
        guard copy >= 0, let stream = fdopendir(copy) else { return [] }
        defer { closedir(stream) }
        var result: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { result.append(name) }
        }
        return result
    }

    static func readLinkAt(_ directory: Int32, _ name: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlinkat(directory, name, &buffer, buffer.count - 1)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether the file at `source` and the entry `name` in `directory` hold the same bytes.
    static func sameContents(_ source: String, _ directory: Int32, _ name: String) throws(ToolFailure) -> Bool {
        let a = open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard a >= 0 else { throw ToolFailure(.qemuFailed, "cannot read \(source): \(errnoText())") }
        defer { close(a) }
        let b = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard b >= 0 else { return false }
        defer { close(b) }
        var infoA = stat(), infoB = stat()
        guard fstat(a, &infoA) == 0, fstat(b, &infoB) == 0, infoA.st_size == infoB.st_size else { return false }
        var bufferA = [UInt8](repeating: 0, count: 1 << 16), bufferB = bufferA
        while true {
            let countA = readFull(a, &bufferA), countB = readFull(b, &bufferB)
            if countA != countB || countA < 0 { return false }
            if countA == 0 { return true }
            if bufferA[0..<countA] != bufferB[0..<countB] { return false }
        }
    }

    /// Reads until `buffer` is full or the file ends; -1 on error.
    static func readFull(_ fd: Int32, _ buffer: inout [UInt8]) -> Int {
        var total = 0
        while total < buffer.count {
            let count = buffer[total...].withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 { if errno == EINTR { continue }; return -1 }
            if count == 0 { break }
            total += count
        }
        return total
    }

    /// Writes the bytes of `source` into the entry `name` of `directory`: a new file
    /// (`create`) or the existing one truncated, never through a link.
    static func writeFile(from source: String, into directory: Int32, _ name: String, create: Bool,
                          mode: mode_t, shownAs shown: String) throws(ToolFailure) {
        let input = open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else { throw ToolFailure(.qemuFailed, "cannot read \(source): \(errnoText())") }
        defer { close(input) }
        let flags = O_WRONLY | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT | O_EXCL : O_TRUNC)
        let output = openat(directory, name, flags, mode)
        guard output >= 0 else { throw ToolFailure(.qemuFailed, "cannot write \(shown): \(errnoText())") }
        defer { close(output) }
        var info = stat()
        guard fstat(output, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw ToolFailure(.qemuFailed, "\(shown) is not a regular file; not written")
        }
        guard copyContents(from: input, to: output) else { throw ToolFailure(.qemuFailed, "writing \(shown) failed: \(errnoText())") }
        if info.st_mode & 0o7777 != mode { _ = fchmod(output, mode) }
    }

    /// Removes the entry `name` of `directory`; a folder with everything under it, found
    /// iteratively and never through a link.
    static func remove(_ name: String, in directory: Int32, shownAs shown: String) throws(ToolFailure) {
        if unlinkat(directory, name, 0) == 0 { return }
        guard errno == EISDIR || errno == EPERM else { throw ToolFailure(.qemuFailed, "cannot remove \(shown): \(errnoText())") }
        // A folder: collect its folders top-down, unlink everything else, then remove the
        // folders bottom-up.
        var folders: [String] = [name]
        var index = 0
        while index < folders.count {
            let relative = folders[index]
            index += 1
            guard let fd = openFolder(directory, relative) else {
                throw ToolFailure(.qemuFailed, "cannot open \(shown) without following a link: \(errnoText())")
            }
            defer { close(fd) }
            for child in names(in: fd) {
                var info = stat()
                guard fstatat(fd, child, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                if info.st_mode & S_IFMT == S_IFDIR {
                    folders.append(relative + "/" + child)
                } else if unlinkat(fd, child, 0) != 0 {
                    throw ToolFailure(.qemuFailed, "cannot remove \(shown)/…/\(child): \(errnoText())")
                }
            }
        }
        for relative in folders.reversed() {
            let parent = relative.split(separator: "/").dropLast().joined(separator: "/")
            let last = String(relative.split(separator: "/").last!)
            guard let fd = openFolder(directory, parent) else {
                throw ToolFailure(.qemuFailed, "cannot open \(shown) without following a link: \(errnoText())")
            }
            defer { close(fd) }
            guard unlinkat(fd, last, AT_REMOVEDIR) == 0 else {
                throw ToolFailure(.qemuFailed, "cannot remove \(shown): \(errnoText())")
            }
        }
    }
}
