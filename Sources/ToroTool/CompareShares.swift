// `toro compare --share DIR[:ro]`: each platform gets its own copy of DIR, so neither sees
// what the other wrote and the user's DIR is never changed; afterwards the two copies are
// compared as well as the transcripts.
//
// The copies live in one private folder (`toro-compare-XXXXXX` under the temporary folder,
// 0700), `microvm/` and `legacy/`, made with FolderTree.stage (so without symlinks leading
// out, devices and FIFOs). microvm serves its copy through toro-fs (virtio-fs), legacy gets an
// ext2 image of its copy written back into it after the guest exits (DiskImage.swift), both
// read-only with `:ro`. The folder is removed when the copies end identical and kept (and
// named in the report) when they differ.
//
// Rules for callers: `prepare` once, then `attach` before each boot and call the returned
// `finish` after it (it stops the back-end or writes the image back); `compareCopies` last.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

public struct CompareShares: Sendable {
    public var share: SharedFolder
    /// The private folder holding one copy per platform.
    public var directory: String

    public func copy(_ platform: GuestPlatform) -> String { directory + "/" + platform.rawValue }

    /// Copies `share` once per platform into a new private folder.
    public static func prepare(_ share: SharedFolder) throws(ToolFailure) -> CompareShares {
        let tree = try FolderTree.scan(share.path)
        let directory = try DiskImage.makePrivateFolder(prefix: "toro-compare-")
        let shares = CompareShares(share: share, directory: directory)
        do throws(ToolFailure) {
            for platform in GuestPlatform.allCases {
                guard mkdir(shares.copy(platform), 0o755) == 0 else {
                    throw ToolFailure(.qemuFailed, "cannot create \(shares.copy(platform)): \(errnoText())")
                }
                try tree.stage(from: share.path, into: shares.copy(platform))
            }
        } catch {
            DiskImage.discard(directory)
            throw error
        }
        return shares
    }

    /// Gives `command` the platform's copy: toro-fs on microvm, an ext2 image on legacy.
    /// The closure returned ends it after the boot and returns the line to report.
    public func attach(_ platform: GuestPlatform, to command: inout QEMUCommand, paths: Paths)
        throws(ToolFailure) -> @Sendable () -> String? {
        let folder = SharedFolder(path: copy(platform), readOnly: share.readOnly)
        switch platform {
        case .microvm:
            let backend = try FSBackend.start(paths: paths, share: folder)
            command.fsSocket = backend.socketPath
            return { backend.stop(); return nil }
        case .legacy:
            let disk = try DiskImage.build(folder)
            command.disk = DiskAttachment(path: disk.imagePath, readOnly: share.readOnly)
            return { DiskImage.finish(disk).report.line }
        }
    }

    /// The two copies compared: report lines and whether they match. The private folder
    /// is removed when they do.
    public func compareCopies() -> (matches: Bool, report: [String]) {
        let differences = Self.differences(copy(.microvm), copy(.legacy))
        if differences.isEmpty {
            DiskImage.discard(directory)
            return (true, ["match: the shared folder's microvm and legacy copies are identical afterwards"])
        }
        let shown = differences.prefix(20).map { "    " + $0 }
        let more = differences.count > 20 ? ["    … and \(differences.count - 20) more"] : []
        return (false, ["DIFFER: the shared folder's copies differ afterwards (kept in \(directory)):"] + shown + more)
    }

    /// What differs between two folders, one line per path, sorted.
    public static func differences(_ a: String, _ b: String) -> [String] {
        guard let left = try? FolderTree.scan(a), let right = try? FolderTree.scan(b) else {
            return ["a copy could not be read"]
        }
        var lines: [String] = []
        for path in Set(left.entries.keys).union(right.entries.keys).sorted() {
            switch (left.entries[path], right.entries[path]) {
            case (nil, _): lines.append("\(path): only on legacy")
            case (_, nil): lines.append("\(path): only on microvm")
            case (.file?, .file?):
                if !sameBytes(join(a, path), join(b, path)) { lines.append("\(path): contents differ") }
            case (let l?, let r?):
                if l != r { lines.append("\(path): \(describe(l)) on microvm, \(describe(r)) on legacy") }
            }
        }
        return lines
    }

    static func describe(_ kind: FolderTree.Kind) -> String {
        switch kind {
        case .file: "a file"
        case .folder: "a folder"
        case .symlink(let target): "a link to \(target)"
        }
    }

    static func sameBytes(_ a: String, _ b: String) -> Bool {
        let folder = open((b as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard folder >= 0 else { return false }
        defer { close(folder) }
        return (try? FolderSync.sameContents(a, folder, (b as NSString).lastPathComponent)) ?? false
    }
}
