// The ext2 image of a shared folder against the real e2fsprogs (DiskImage.swift,
// FolderTree.swift, FolderSync.swift): an image is built from a temporary folder, changed
// with `debugfs -w` as a guest would change it (a new file, a removal, a folder made, a
// rename across folders, a rewrite, a folder removed), checked and written back, and the
// folder compared with the tree expected. A corrupted image leaves the folder untouched;
// symlinks leading out never reach the image nor get written through.
//
// These tests need e2fsprogs; without it they fail naming the package (never skip).

import XCTest
@testable import ToroTool

final class DiskImageTests: XCTestCase {
    override func setUpWithError() throws {
        let missing = Installer.e2fsprogs.filter { Installer.which($0.command) == nil }.map(\.command)
        if !missing.isEmpty {
            // A thrown error fails the test (with this line); it is not a skip.
            throw ToolFailure(.missingTool, "\(missing.joined(separator: ", ")) missing: install the Debian package e2fsprogs (apt-get install e2fsprogs)")
        }
    }

    /// A new empty folder removed after the test.
    func makeFolder() throws -> String {
        var template = Array((NSTemporaryDirectory() + "toro-disk-test-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let path = String(cString: try XCTUnwrap(made))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func write(_ text: String, _ path: String) {
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)), path)
    }

    func mkdirs(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// The folder as "path: contents" lines (folders end in "/", links show their target).
    func snapshot(_ root: String) -> [String] {
        var lines: [String] = []
        var pending = [""]
        while let folder = pending.popLast() {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: join(root, folder))) ?? []
            for name in names {
                let path = folder.isEmpty ? name : folder + "/" + name
                var info = stat()
                lstat(join(root, path), &info)
                switch info.st_mode & S_IFMT {
                case S_IFDIR: lines.append(path + "/"); pending.append(path)
                case S_IFLNK: lines.append(path + " -> " + (readLink(join(root, path)) ?? "?"))
                case S_IFREG: lines.append(path + ": " + ((try? String(contentsOfFile: join(root, path), encoding: .utf8)) ?? "?"))
                default: lines.append(path + " (special)")
                }
            }
        }
        return lines.sorted()
    }

    /// Runs debugfs requests on `image` (`-w` to change it); returns what it printed.
    @discardableResult
    func debugfs(_ image: String, _ requests: [String], writable: Bool = false) throws -> String {
        let folder = try makeFolder()
        let script = folder + "/requests"
        write(requests.joined(separator: "\n") + "\n", script)
        var process = Subprocess([try DiskImage.tool("debugfs")] + (writable ? ["-w"] : []) + ["-f", script, image])
        process.mergeStderr = true
        let result = process.run()
        XCTAssertEqual(result.exitCode, 0, result.output)
        return result.output
    }

    func lsNames(_ image: String, _ folder: String) throws -> [String] {
        let output = try debugfs(image, ["ls -p \(folder)"])
        // `ls -p` lines: /inode/mode/uid/gid/name/size/
        return output.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "/", omittingEmptySubsequences: false)
            return fields.count >= 6 ? String(fields[5]) : nil
        }.filter { $0 != "." && $0 != ".." }.sorted()
    }

    /// DIR as the tests start it, with a symlink leading out and one staying inside.
    func makeShare() throws -> String {
        let share = try makeFolder()
        write("hello\n", share + "/a.txt")
        write("unchanged\n", share + "/keep.txt")
        write("old\n", share + "/change.txt")
        try mkdirs(share + "/sub/deep")
        write("b\n", share + "/sub/b.txt")
        try mkdirs(share + "/gone")
        write("x\n", share + "/gone/x.txt")
        XCTAssertEqual(symlink("/etc", share + "/out"), 0)
        XCTAssertEqual(symlink("a.txt", share + "/inlink"), 0)
        return share
    }

    func testBuildChangeAndWriteBack() throws {
        let share = try makeShare()
        var keepBefore = stat()
        stat(share + "/keep.txt", &keepBefore)
        let disk = try DiskImage.build(SharedFolder(path: share, readOnly: false))
        XCTAssertEqual(disk.tree.leftOut, ["out"])
        XCTAssertEqual(try DiskImage.check(disk.imagePath), .clean)
        let stats = try debugfs(disk.imagePath, ["stats"])
        XCTAssertTrue(stats.contains("Inode size:\t          256"), stats)
        XCTAssertTrue(stats.contains("Filesystem revision #:    1"), stats)

        // What a guest does: every change the write-back must carry.
        let host = try makeFolder()
        write("new file\n", host + "/new")
        write("inner\n", host + "/inner")
        write("new contents\n", host + "/change")
        try debugfs(disk.imagePath, [
            "write \(host)/new new.txt",
            "rm a.txt",
            "mkdir made",
            "write \(host)/inner made/inner.txt",
            "ln sub/b.txt made/b-renamed.txt",   // a rename across folders: link, then unlink
            "unlink sub/b.txt",
            "rm change.txt",
            "write \(host)/change change.txt",
            "rm gone/x.txt",
            "rmdir gone",
        ], writable: true)
        XCTAssertEqual(try DiskImage.check(disk.imagePath), .clean)

        let outcome = DiskImage.finish(disk)
        guard case .written(let summary) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(snapshot(share), [
            "change.txt: new contents\n",
            "inlink -> a.txt",
            "keep.txt: unchanged\n",
            "made/",
            "made/b-renamed.txt: b\n",
            "made/inner.txt: inner\n",
            "new.txt: new file\n",
            "out -> /etc",                 // never in the image, left as it was
            "sub/",
            "sub/deep/",
        ])
        XCTAssertEqual(summary, FolderSync.Summary(created: 4, updated: 1, removed: 3, skipped: 0))
        var keepAfter = stat()
        stat(share + "/keep.txt", &keepAfter)
        XCTAssertEqual(keepAfter.st_ino, keepBefore.st_ino)
        XCTAssertEqual(keepAfter.st_mtim.tv_sec, keepBefore.st_mtim.tv_sec, "an unchanged file is not rewritten")
        XCTAssertFalse(FileManager.default.fileExists(atPath: disk.directory), "the private folder is removed")
        XCTAssertFalse(outcome.report.line.contains("\n"))
    }

    func testUncleanImageLeavesTheFolderUntouched() throws {
        for corruption in ["bitmap", "magic", "free count"] {
            let share = try makeShare()
            let before = snapshot(share)
            let disk = try DiskImage.build(SharedFolder(path: share, readOnly: false))
            try debugfs(disk.imagePath, ["rm a.txt", "write /dev/null new.txt"], writable: true)
            if corruption == "bitmap" {
                // keep.txt's inode marked free: e2fsck wants to fix the inode bitmap.
                try debugfs(disk.imagePath, ["freei keep.txt"], writable: true)
            } else if corruption == "free count" {
                // Only the superblock's free block count wrong: e2fsck -fn exits 0 and prints
                // "Free blocks count wrong ... Fix? no", which is still not clean.
                try debugfs(disk.imagePath, ["ssv free_blocks_count 100"], writable: true)
                var process = Subprocess([try DiskImage.tool("e2fsck"), "-fn", disk.imagePath])
                process.mergeStderr = true
                XCTAssertEqual(process.run().exitCode, 0, "e2fsck exits 0 for a wrong free count alone")
            } else {
                // The superblock's magic (offset 1024 + 56) zeroed.
                let handle = try XCTUnwrap(FileHandle(forWritingAtPath: disk.imagePath))
                try handle.seek(toOffset: 1024 + 56)
                handle.write(Data([0, 0]))
                try handle.close()
            }
            let outcome = DiskImage.finish(disk)
            guard case .unclean(let reason, let kept) = outcome else { XCTFail("\(corruption): \(outcome)"); continue }
            XCTAssertEqual(kept, disk.imagePath)
            XCTAssertTrue(FileManager.default.fileExists(atPath: kept), "the image is kept")
            XCTAssertEqual(snapshot(share), before, "\(corruption): the folder is untouched")
            if corruption == "bitmap" { XCTAssertTrue(reason.hasPrefix("Inode bitmap differences:"), reason) }
            if corruption == "free count" { XCTAssertEqual(reason, "Free blocks count wrong (100, counted=\(reason.split(separator: "=").last!)") }
            let report = outcome.report
            XCTAssertTrue(report.isError)
            XCTAssertFalse(report.line.contains("\n"))
            XCTAssertTrue(report.line.contains("the shared folder is untouched; the image is kept at \(kept)"), report.line)
            try? FileManager.default.removeItem(atPath: disk.directory)
        }
    }

    func testReadOnlyWritesNothingBack() throws {
        let share = try makeShare()
        let before = snapshot(share)
        let disk = try DiskImage.build(SharedFolder(path: share, readOnly: true))
        try debugfs(disk.imagePath, ["rm a.txt", "mkdir made"], writable: true)
        XCTAssertEqual(DiskImage.finish(disk), .readOnly)
        XCTAssertEqual(snapshot(share), before)
        XCTAssertFalse(FileManager.default.fileExists(atPath: disk.directory))
    }

    func testSymlinksLeadingOutAreNotInTheImage() throws {
        let share = try makeFolder()
        write("a\n", share + "/a.txt")
        try mkdirs(share + "/sub")
        XCTAssertEqual(symlink("/etc", share + "/absolute"), 0)
        XCTAssertEqual(symlink(share + "/a.txt", share + "/absolute-inside"), 0)   // absolute: the guest's / differs
        XCTAssertEqual(symlink("../x", share + "/up"), 0)
        XCTAssertEqual(symlink("sub/../../x", share + "/climb"), 0)
        XCTAssertEqual(symlink("a.txt", share + "/in"), 0)
        XCTAssertEqual(symlink("../a.txt", share + "/sub/up-in"), 0)
        XCTAssertEqual(mkfifo(share + "/fifo", 0o600), 0)
        // A name that is not UTF-8 cannot be named back: left out rather than copied blind.
        let odd = Array((share + "/odd-").utf8CString.dropLast()) + [CChar(bitPattern: 0xff), 0]
        let fd = open(odd, O_CREAT | O_WRONLY, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        close(fd)
        let disk = try DiskImage.build(SharedFolder(path: share, readOnly: true))
        defer { _ = DiskImage.finish(disk) }
        XCTAssertEqual(disk.tree.leftOut.filter { !$0.hasPrefix("odd-") }, ["absolute", "absolute-inside", "climb", "fifo", "up"])
        XCTAssertEqual(disk.tree.leftOut.count, 6, "\(disk.tree.leftOut)")
        XCTAssertTrue(disk.tree.leftOutSummary.hasPrefix("absolute, absolute-inside, climb, fifo, "), disk.tree.leftOutSummary)
        XCTAssertTrue(disk.tree.leftOutSummary.hasSuffix(" and 1 more"), disk.tree.leftOutSummary)
        XCTAssertEqual(try lsNames(disk.imagePath, "/"), ["a.txt", "in", "lost+found", "sub"])
        XCTAssertEqual(try lsNames(disk.imagePath, "/sub"), ["up-in"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: disk.directory + "/stage"), "the staging copy is removed")
        // The user's folder keeps everything.
        XCTAssertEqual(snapshot(share).count, 10)
    }

    func testSymlinkRule() {
        XCTAssertTrue(FolderTree.symlinkStaysInside("a", folder: ""))
        XCTAssertTrue(FolderTree.symlinkStaysInside("./b/../a", folder: ""))
        XCTAssertTrue(FolderTree.symlinkStaysInside("../a", folder: "sub"))
        XCTAssertFalse(FolderTree.symlinkStaysInside("../a", folder: ""))
        XCTAssertFalse(FolderTree.symlinkStaysInside("../../a", folder: "sub"))
        XCTAssertFalse(FolderTree.symlinkStaysInside("/etc", folder: "sub"))
        XCTAssertFalse(FolderTree.symlinkStaysInside("", folder: ""))
    }

    func testWriteBackNeverFollowsALink() throws {
        let share = try makeFolder()
        let outside = try makeFolder()
        try mkdirs(share + "/sub")
        XCTAssertEqual(symlink("sub", share + "/link"), 0)          // inside: in the image as a link
        XCTAssertEqual(symlink(outside, share + "/out"), 0)         // leading out: not in the image
        let disk = try DiskImage.build(SharedFolder(path: share, readOnly: false))
        let host = try makeFolder()
        write("payload\n", host + "/payload")
        // The guest turns both names into folders holding a file.
        try debugfs(disk.imagePath, [
            "rm link", "mkdir link", "write \(host)/payload link/x",
            "mkdir out", "write \(host)/payload out/x",
        ], writable: true)
        guard case .written(let summary) = DiskImage.finish(disk) else { return XCTFail("not written back") }
        XCTAssertEqual(snapshot(share), ["link/", "link/x: payload\n", "out -> \(outside)", "sub/"])
        XCTAssertEqual(snapshot(outside), [], "nothing written through the link leading out")
        XCTAssertEqual(summary.skipped, 1, "the host's own entry wins")
    }

    func testKindsChangeAndFoldersGoWithWhatTheyHold() throws {
        let share = try makeFolder()
        try mkdirs(share + "/tree/a/b")
        write("c\n", share + "/tree/a/b/c.txt")
        write("t\n", share + "/tree/t.txt")
        try mkdirs(share + "/was-folder")
        write("f\n", share + "/was-file")
        let disk = try DiskImage.build(SharedFolder(path: share, readOnly: false))
        let host = try makeFolder()
        write("now a file\n", host + "/file")
        try debugfs(disk.imagePath, [
            "rm tree/a/b/c.txt", "rmdir tree/a/b", "rmdir tree/a", "rm tree/t.txt", "rmdir tree",
            "rmdir was-folder", "write \(host)/file was-folder",
            "rm was-file", "mkdir was-file",
            "mkdir locked", "write \(host)/file locked/inside", "sif locked mode 040555",
        ], writable: true)
        guard case .written = DiskImage.finish(disk) else { return XCTFail("not written back") }
        XCTAssertEqual(snapshot(share), ["locked/", "locked/inside: now a file\n", "was-file/", "was-folder: now a file\n"])
        var info = stat()
        stat(share + "/locked", &info)
        XCTAssertEqual(info.st_mode & 0o7777, 0o555, "the guest's folder mode, set after the folder was filled")
        chmod(share + "/locked", 0o755)
    }

    func testFourKiBBlocks() throws {
        let share = try makeShare()
        let disk = try DiskImage.build(SharedFolder(path: share, readOnly: true), blockSize: 4096)
        defer { _ = DiskImage.finish(disk) }
        XCTAssertTrue(try debugfs(disk.imagePath, ["stats"]).contains("Block size:               4096"))
        XCTAssertEqual(try DiskImage.check(disk.imagePath), .clean)
    }
}

/// `compare --share`: one copy of the folder per platform, compared afterwards.
final class CompareSharesTests: XCTestCase {
    func testEachPlatformGetsItsOwnCopy() throws {
        var template = Array((NSTemporaryDirectory() + "toro-compare-test-XXXXXX").utf8CString)
        let share = String(cString: try XCTUnwrap(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }))
        defer { try? FileManager.default.removeItem(atPath: share) }
        try FileManager.default.createDirectory(atPath: share + "/sub", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: share + "/sub/a.txt", contents: Data("a\n".utf8))
        XCTAssertEqual(symlink("/etc", share + "/out"), 0)
        let shares = try CompareShares.prepare(SharedFolder(path: share, readOnly: false))
        for platform in GuestPlatform.allCases {
            XCTAssertEqual(try String(contentsOfFile: shares.copy(platform) + "/sub/a.txt", encoding: .utf8), "a\n")
            XCTAssertNil(readLink(shares.copy(platform) + "/out"), "links leading out are not copied")
        }
        XCTAssertEqual(CompareShares.differences(shares.copy(.microvm), shares.copy(.legacy)), [])

        // What two guests might leave: a file only one made, a file changed on one.
        FileManager.default.createFile(atPath: shares.copy(.microvm) + "/new", contents: Data())
        FileManager.default.createFile(atPath: shares.copy(.legacy) + "/sub/a.txt", contents: Data("b\n".utf8))
        XCTAssertEqual(CompareShares.differences(shares.copy(.microvm), shares.copy(.legacy)),
                       ["new: only on microvm", "sub/a.txt: contents differ"])
        let differ = shares.compareCopies()
        XCTAssertFalse(differ.matches)
        XCTAssertEqual(differ.report.first, "DIFFER: the shared folder's copies differ afterwards (kept in \(shares.directory)):")
        XCTAssertTrue(FileManager.default.fileExists(atPath: shares.directory), "kept when they differ")

        try FileManager.default.removeItem(atPath: shares.copy(.microvm) + "/new")
        FileManager.default.createFile(atPath: shares.copy(.legacy) + "/sub/a.txt", contents: Data("a\n".utf8))
        XCTAssertTrue(shares.compareCopies().matches)
        XCTAssertFalse(FileManager.default.fileExists(atPath: shares.directory), "removed when they match")
        XCTAssertEqual(readLink(share + "/out"), "/etc", "the user's folder is never changed")
    }
}
