// The ext2 image behind `toro run --platform legacy --share DIR[:ro]`: built from DIR before
// the guest boots, checked after it exits, and written back into DIR when it is clean.
//
// 1. `build` scans DIR (FolderTree: what a guest may see), makes a private folder
//    (`toro-disk-XXXXXX` under the temporary folder, mode 0700) and runs
//    `mke2fs -t ext2 -I 256 -d SOURCE IMG SIZE` there. SOURCE is DIR itself when every entry
//    may go in, else a staging copy without what is left out (symlinks leading out of DIR,
//    devices, FIFOs, sockets, a top-level lost+found), because `mke2fs -d` copies symlinks
//    and special files as they are. SIZE is max(64 MiB, 2 × the content + 16 MiB); the inode
//    count is at least twice the entries + 1024 and one per 8 KiB; the block size is
//    mke2fs's choice (1 KiB under 512 MiB) unless a caller asks; no blocks are reserved.
// 2. QEMU gets it as virtio-blk-pci (QEMUCommand.disk), read-only for `:ro`.
// 3. `finish`, after the guest has exited whatever its status: for `:ro` the folder is
//    removed and nothing is written. Otherwise `e2fsck -fn IMG` must exit 0 *and* print no
//    "Fix?" nor any other "? no" answer (it exits 0 after only printing "Free blocks count
//    wrong ... Fix? no");
//    then `debugfs -R 'rdump / OUT' IMG` extracts the tree next to the image and
//    FolderSync makes DIR match it. An image that is not clean, or a write-back that
//    fails, leaves the private folder (and the image) in place and says where in one line.
//
// Rules for callers: e2fsprogs must be installed (`Installer.e2fsprogs`; the tools are
// called by full path, found on PATH or in /usr/sbin and /sbin). Call `finish` exactly once
// per built image, after QEMU has exited. The image's bytes come from the guest and are
// distrusted: nothing is extracted before e2fsck has passed it, and FolderSync never writes
// through a link in DIR.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// An image built from a shared folder for one run.
public struct ShareDisk: Sendable {
    public var share: SharedFolder
    /// The private folder holding the image (and, after `finish`, the extracted tree).
    public var directory: String
    /// What DIR held when the image was built: the entries the guest may change.
    public var tree: FolderTree
    public var imagePath: String { directory + "/" + DiskImage.imageName }
}

public enum DiskImage {
    public static let imageName = "share.ext2"
    /// Where `--print-command` says the image would be (the real one is in a private folder).
    public static let printedImage = "/tmp/toro-" + imageName

    /// The image size for `tree`, in bytes (a whole number of MiB).
    public static func size(for tree: FolderTree) -> Int64 {
        let mib: Int64 = 1 << 20
        let wanted = max(64 * mib, 2 * tree.footprint + 16 * mib)
        return (wanted + mib - 1) / mib * mib
    }

    /// The inode count for `tree` in an image of `size` bytes.
    public static func inodes(for tree: FolderTree, size: Int64) -> Int {
        max(2 * tree.entries.count + 1024, Int(size / 8192))
    }

    /// mke2fs's arguments (after the program) building `image` from `source`, sized for `tree`.
    public static func mke2fsArguments(source: String, image: String, tree: FolderTree, blockSize: Int? = nil) -> [String] {
        let size = size(for: tree)
        var arguments = ["-q", "-F", "-t", "ext2", "-I", "256", "-m", "0", "-N", "\(inodes(for: tree, size: size))"]
        if let blockSize { arguments += ["-b", "\(blockSize)"] }
        return arguments + ["-d", source, image, "\(size / 1024)k"]
    }

    /// The full path of an e2fsprogs tool.
    static func tool(_ name: String) throws(ToolFailure) -> String {
        guard let path = Installer.which(name) else {
            throw ToolFailure(.missingTool, "\(name) missing; install the package e2fsprogs (\(Installer.installCommand(for: [Installer.mke2fs], sudo: geteuid() != 0)))")
        }
        return path
    }

    /// Builds the image for `share` in a new private folder. `blockSize` (1024, 2048 or
    /// 4096) overrides mke2fs's choice.
    public static func build(_ share: SharedFolder, blockSize: Int? = nil) throws(ToolFailure) -> ShareDisk {
        let mke2fs = try tool("mke2fs")
        let tree = try FolderTree.scan(share.path)
        let directory = try makePrivateFolder()
        let disk = ShareDisk(share: share, directory: directory, tree: tree)
        var source = share.path
        if !tree.leftOut.isEmpty {
            source = directory + "/stage"
            do throws(ToolFailure) {
                guard mkdir(source, 0o700) == 0 else { throw ToolFailure(.qemuFailed, "cannot create \(source): \(errnoText())") }
                try tree.stage(from: share.path, into: source)
            } catch {
                discard(directory)
                throw error
            }
        }
        var process = Subprocess([mke2fs] + mke2fsArguments(source: source, image: disk.imagePath, tree: tree, blockSize: blockSize))
        process.mergeStderr = true
        let result = process.run()
        if source != share.path { try? FileManager.default.removeItem(atPath: source) }
        guard result.exitCode == 0 else {
            discard(directory)
            let last = result.output.split(separator: "\n").last.map(String.init) ?? "\(result.termination)"
            throw ToolFailure(.qemuFailed, "mke2fs could not build the image of \(share.path): \(last)")
        }
        return disk
    }

    /// What `e2fsck -fn` made of an image.
    public enum Check: Sendable, Equatable {
        case clean
        /// Not clean; the text is e2fsck's first complaint (or its status).
        case unclean(String)
    }

    /// Runs `e2fsck -fn` (check everything, change nothing) on `image`.
    public static func check(_ image: String) throws(ToolFailure) -> Check {
        var process = Subprocess([try tool("e2fsck"), "-fn", image])
        process.mergeStderr = true
        let result = process.run()
        let lines = result.output.split(separator: "\n").map { String($0) }
        // With -n every question is answered "no": "Fix? no", and also "Clear? no",
        // "Salvage? no", "Connect to /lost+found? no". Any of them means not clean.
        if let fix = lines.first(where: { $0.contains("Fix?") || $0.hasSuffix("? no") }) {
            // Name the problem, which e2fsck prints on the line before its question.
            let index = lines.firstIndex(of: fix)!
            let problem = index > 0 && !lines[index - 1].isEmpty && !lines[index - 1].hasPrefix("Pass ") ? lines[index - 1] + " " : ""
            return .unclean(problem + fix)
        }
        guard result.exitCode == 0 else {
            // 4: errors left uncorrected; 8: operational error (a bad superblock, say).
            let reason = lines.first { !$0.hasPrefix("e2fsck ") && !$0.hasPrefix("Pass ") && !$0.isEmpty } ?? ""
            return .unclean("e2fsck exit status \(result.exitCode.map(String.init) ?? "\(result.termination)")\(reason.isEmpty ? "" : ": " + reason)")
        }
        return .clean
    }

    /// Extracts the tree of `image` into `folder`, which must not exist.
    public static func extract(_ image: String, into folder: String) throws(ToolFailure) {
        guard mkdir(folder, 0o700) == 0 else { throw ToolFailure(.qemuFailed, "cannot create \(folder): \(errnoText())") }
        var process = Subprocess([try tool("debugfs"), "-R", "rdump / \"\(folder)\"", image])
        process.mergeStderr = true
        let result = process.run()
        // debugfs exits 0 even when a request fails: anything beyond its banner is a failure.
        let complaints = result.output.split(separator: "\n").filter { !$0.hasPrefix("debugfs ") && !$0.isEmpty }
        guard result.exitCode == 0, complaints.isEmpty else {
            throw ToolFailure(.qemuFailed, "debugfs could not extract the image: \(complaints.first.map(String.init) ?? "\(result.termination)")")
        }
    }

    /// How a run's image ended.
    public enum Outcome: Sendable, Equatable {
        /// `:ro`: nothing written, the image removed.
        case readOnly
        /// The guest's changes are in DIR; the image removed.
        case written(FolderSync.Summary)
        /// DIR untouched; the image kept at the path.
        case unclean(reason: String, keptAt: String)
        /// The write-back stopped (DIR may be partly written); the image kept at the path.
        case failed(reason: String, keptAt: String)

        /// The line for the user, and whether it is an error.
        public var report: (line: String, isError: Bool) {
            switch self {
            case .readOnly:
                return ("the shared folder was read-only: nothing written back", false)
            case .written(let s):
                return ("wrote the guest's changes back: \(s.created) created, \(s.updated) changed, \(s.removed) removed"
                        + (s.skipped > 0 ? ", \(s.skipped) not written (links leading out, or names the host took meanwhile)" : ""), false)
            case .unclean(let reason, let path):
                return ("the guest left its disk not clean (\(reason)); the shared folder is untouched; the image is kept at \(path)", true)
            case .failed(let reason, let path):
                return ("writing the guest's changes back stopped: \(reason); the image is kept at \(path)", true)
            }
        }
    }

    /// After the guest has exited: checks the image and writes it back into DIR when clean.
    public static func finish(_ disk: ShareDisk) -> Outcome {
        if disk.share.readOnly {
            discard(disk.directory)
            return .readOnly
        }
        do throws(ToolFailure) {
            if case .unclean(let reason) = try check(disk.imagePath) {
                return .unclean(reason: reason, keptAt: disk.imagePath)
            }
            let extracted = disk.directory + "/extracted"
            try extract(disk.imagePath, into: extracted)
            let summary = try FolderSync.apply(from: extracted, to: disk.share.path, before: disk.tree)
            discard(disk.directory)
            return .written(summary)
        } catch {
            try? FileManager.default.removeItem(atPath: disk.directory + "/extracted")
            return .failed(reason: error.message, keptAt: disk.imagePath)
        }
    }

    /// A new folder only this user can enter, under the temporary folder.
    static func makePrivateFolder(prefix: String = "toro-disk-") throws(ToolFailure) -> String {
        var template = Array((NSTemporaryDirectory() + prefix + "XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ToolFailure(.qemuFailed, "cannot create a private folder for the disk image: \(errnoText())")
        }
        return String(cString: made)
    }

    static func discard(_ directory: String) {
        try? FileManager.default.removeItem(atPath: directory)
    }
}
