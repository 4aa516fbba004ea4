// `files`: works the shared folder through the file API, the same steps on every platform
// (virtio-fs on microvm; virtio-blk, the buffer cache and ext2 on legacy), printing one
// line per step with its result, so `./toro compare --service files` compares two storage
// stacks. It writes under `files-out/` (created fresh: an earlier run's copy is moved
// aside first, replacing the one before), leaves `files-out/kept.txt` for the next boot to
// find, and reports what an earlier run left (`earlier run: …`).
//
// Steps: create and write a file, read it back (size, CRC-32), extend it past its end (the
// gap reads as zeros), truncate it, rename it within and across folders, list a folder
// (sorted), remove files and folders, and the errors a caller must see: a missing file,
// a name taken, a folder that is not empty.
import Core
import Wire

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "files",
            summary: "creates, writes, extends, truncates, renames, lists and removes files in the shared folder, one line per step, then exits 0",
            devices: [.files]) { FilesService.run($0) }
}

enum FilesService {
    static func run(_ context: ServiceContext) -> ExitStatus {
        guard let fileSystem = context.fileSystem else {
            Log.write("files: no shared folder (start with --share DIR)\n")
            return .serviceFailed
        }
        let vfs = VFS()
        do throws(FileSystemError) { try vfs.mount(fileSystem) } catch { return fail("mount", error) }
        context.ready()
        let steps = Steps(vfs: vfs)
        steps.run()
        Log.write(steps.failed ? "files: a step failed\n" : "files: every step as expected\n")
        return steps.failed ? .serviceFailed : .success
    }

    static func fail(_ step: StaticString, _ error: FileSystemError) -> ExitStatus {
        Log.write("files: ")
        Log.write(step)
        Log.write(": ")
        Log.write(error.reason)
        Log.put(10)
        return .serviceFailed
    }
}

final class Steps {
    let vfs: VFS
    var failed = false

    init(vfs: VFS) { self.vfs = vfs }

    func line(_ step: StaticString, _ detail: [UInt8] = []) {
        Log.write("files: ")
        Log.write(step)
        if !detail.isEmpty {
            Log.write(": ")
            for byte in detail { Log.put(byte) }
        }
        Log.put(10)
    }

    func check(_ step: StaticString, _ body: () throws(FileSystemError) -> [UInt8]) {
        do throws(FileSystemError) {
            line(step, try body())
        } catch {
            failed = true
            Log.write("files: ")
            Log.write(step)
            Log.write(": failed: ")
            Log.write(error.reason)
            Log.put(10)
        }
    }

    /// `step` must fail with `expected`.
    func refuse(_ step: StaticString, _ expected: FileSystemError, _ body: () throws(FileSystemError) -> Void) {
        do throws(FileSystemError) {
            try body()
            failed = true
            line(step, Array("succeeded, but should not have".utf8))
        } catch {
            if error != expected { failed = true }
            Log.write("files: ")
            Log.write(step)
            Log.write(": refused: ")
            Log.write(error.reason)
            Log.put(10)
        }
    }

    static func decimal(_ value: Int) -> [UInt8] {
        var digits: [UInt8] = []
        var rest = value
        repeat {
            digits.insert(UInt8(ascii: "0") + UInt8(rest % 10), at: 0)
            rest /= 10
        } while rest > 0
        return digits
    }

    func readWhole(_ path: [UInt8]) throws(FileSystemError) -> [UInt8] {
        let fd = try vfs.open(path, flags: .read)
        defer { try? vfs.close(fd) }
        var bytes: [UInt8] = []
        while true {
            let chunk = try vfs.read(fd, count: 4096)
            if chunk.isEmpty { return bytes }
            bytes += chunk
        }
    }

    func write(_ path: [UInt8], _ bytes: [UInt8], flags: OpenFlags = [.write, .create, .truncate]) throws(FileSystemError) {
        let fd = try vfs.open(path, flags: flags)
        defer { try? vfs.close(fd) }
        var done = 0
        while done < bytes.count {
            let n = try vfs.write(fd, Array(bytes[done...]))
            guard n > 0 else { throw .io }
            done += n
        }
    }

    func describe(_ bytes: [UInt8]) -> [UInt8] {
        Steps.decimal(bytes.count) + Array(" bytes, crc32 ".utf8) + hex(CRC32.checksum(bytes))
    }

    func hex(_ value: UInt32) -> [UInt8] {
        let digits = Array("0123456789abcdef".utf8)
        return (0..<8).map { digits[Int((value >> (28 - 4 * UInt32($0))) & 0xF)] }
    }

    func run() {
        let out = Array("/files-out".utf8)
        let old = Array("/files-out.earlier".utf8)
        // An earlier run's folder: reported, then moved aside (replacing the one before).
        check("earlier run") { () throws(FileSystemError) -> [UInt8] in
            guard (try? vfs.stat(out)) != nil else { return Array("none".utf8) }
            let kept = try readWhole(out + Array("/kept.txt".utf8))
            if (try? vfs.stat(old)) != nil { try removeTree(old) }
            try vfs.rename(out, to: old)
            return Array("kept.txt holds ".utf8) + kept.filter { $0 != 10 }
        }
        check("mkdir files-out") { () throws(FileSystemError) -> [UInt8] in try vfs.mkdir(out); return [] }
        let text = (0..<200).flatMap { Array("line ".utf8) + Steps.decimal($0) + Array(" of the first file\n".utf8) }
        let a = out + Array("/a.txt".utf8)
        check("write a.txt") { () throws(FileSystemError) -> [UInt8] in try write(a, text); return describe(text) }
        check("read a.txt") { () throws(FileSystemError) -> [UInt8] in describe(try readWhole(a)) }
        check("extend a.txt past its end") { () throws(FileSystemError) -> [UInt8] in
            let fd = try vfs.open(a, flags: .readWrite)
            defer { try? vfs.close(fd) }
            _ = try vfs.seek(fd, offset: 20000, from: .start)
            _ = try vfs.write(fd, Array("tail".utf8))
            let whole = try readWhole(a)
            let gapIsZero = whole[text.count..<20000].allSatisfy { $0 == 0 }
            return describe(whole) + Array(gapIsZero ? ", the gap reads as zeros".utf8 : ", the gap is NOT zeros".utf8)
        }
        check("truncate a.txt to 1000") { () throws(FileSystemError) -> [UInt8] in
            try vfs.truncate(a, size: 1000)
            return describe(try readWhole(a))
        }
        check("mkdir files-out/sub") { () throws(FileSystemError) -> [UInt8] in try vfs.mkdir(out + Array("/sub".utf8)); return [] }
        let b = out + Array("/b.txt".utf8)
        check("rename a.txt to b.txt") { () throws(FileSystemError) -> [UInt8] in try vfs.rename(a, to: b); return describe(try readWhole(b)) }
        let c = out + Array("/sub/c.txt".utf8)
        check("rename b.txt to sub/c.txt") { () throws(FileSystemError) -> [UInt8] in try vfs.rename(b, to: c); return describe(try readWhole(c)) }
        for i in 0..<12 {
            let name = out + Array("/sub/n".utf8) + Steps.decimal(i) + Array(".txt".utf8)
            do throws(FileSystemError) { try write(name, Array("file ".utf8) + Steps.decimal(i) + [10]) } catch {
                failed = true
                Log.write("files: write sub/nN.txt: failed: ")
                Log.write(error.reason)
                Log.put(10)
            }
        }
        check("list files-out/sub") { () throws(FileSystemError) -> [UInt8] in
            let names = try vfs.readdir(out + Array("/sub".utf8)).map { $0.name }.sorted { $0.lexicographicallyPrecedes($1) }
            return Steps.decimal(names.count) + Array(" entries: ".utf8) + Array(names.joined(separator: Array(" ".utf8)))
        }
        refuse("open a.txt (renamed away)", .notFound) { () throws(FileSystemError) in _ = try vfs.open(a, flags: .read) }
        refuse("mkdir files-out/sub again", .exists) { () throws(FileSystemError) in try vfs.mkdir(out + Array("/sub".utf8)) }
        refuse("rmdir files-out/sub (not empty)", .notEmpty) { () throws(FileSystemError) in try vfs.rmdir(out + Array("/sub".utf8)) }
        check("remove files-out/sub") { () throws(FileSystemError) -> [UInt8] in
            try removeTree(out + Array("/sub".utf8))
            return try vfs.readdir(out).isEmpty ? Array("files-out is empty".utf8) : Array("files-out is NOT empty".utf8)
        }
        check("write kept.txt") { () throws(FileSystemError) -> [UInt8] in
            let kept = Array("written by files\n".utf8)
            try write(out + Array("/kept.txt".utf8), kept)
            return describe(kept)
        }
    }

    /// Removes `path` and everything under it (bounded: 8 levels).
    func removeTree(_ path: [UInt8], depth: Int = 0) throws(FileSystemError) {
        guard depth < 8 else { throw .tooLarge }
        for entry in try vfs.readdir(path) {
            let child = path + [UInt8(ascii: "/")] + entry.name
            if entry.kind == .directory { try removeTree(child, depth: depth + 1) } else { try vfs.unlink(child) }
        }
        try vfs.rmdir(path)
    }
}
