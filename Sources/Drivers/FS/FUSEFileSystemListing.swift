// FUSEFileSystem's directory listing: OPENDIR, READDIR from cookie 0 until an empty reply,
// RELEASEDIR. The server decides how many replies a listing takes and what each holds, so
// the listing is bounded here, whatever the server answers (issue 9):
//
//   * Progress. Each record's `off` is the cookie to resume after it (fuse.h). Cookies must
//     strictly increase across the whole listing: above 0 for the first record, above the
//     previous record's for every later one. A cookie that repeats or goes back would make
//     the listing loop forever or report names twice; the listing fails with `.io` and one
//     log line ("READDIR cookies do not increase"). toro-fs numbers records 1, 2, 3...;
//     Linux file systems give telldir positions, which increase along a listing.
//   * Size. At most `maximumDirectoryEntries` records (default 65,536, `.` and `..`
//     included, so a server cannot stall the loop with dots either); one more fails the
//     listing with `.tooLarge` and one log line.
//   * Memory. Before the records of a reply are copied out, their cost (`entryCost` each)
//     is admitted against the memory budget (MemoryBudget); a refusal fails the listing
//     with `.outOfMemory` (the budget logs the refusal).
// Every reply is also checked by `FUSEReply.directory` (no larger than asked, every
// record whole). The directory handle is released whichever way the listing ends.
//
// Rules: called with the file system's lock held (from `readDirectory`).
import Core
import Drivers
import Wire

extension FUSEFileSystem {
    /// The default for `maximumDirectoryEntries`.
    public static let defaultDirectoryEntries = 65_536

    /// What one listed entry is admitted at: the name's bytes plus its array's header and
    /// the entry's slot (with room for the array doubling as it grows).
    static func entryCost(nameLength: Int) -> Int { 64 + nameLength }

    public func readDirectory(_ path: VFSPath) throws(FileSystemError) -> [DirectoryEntry] {
        try lock.withLock { () throws(FileSystemError) -> [DirectoryEntry] in
            let resolved = try resolve(path.components[...])
            defer { forget(resolved.held) }
            let opened = try call(.opendir(flags: LinuxOpen.directory), node: resolved.node) {
                (reply: FUSEReply) throws(FUSEError) in try reply.open()
            }
            defer {
                _ = try? call(.releasedir(fileHandle: opened.fileHandle, flags: 0), node: resolved.node) {
                    (reply: FUSEReply) throws(FUSEError) in try reply.empty()
                }
            }
            return try list(node: resolved.node, fileHandle: opened.fileHandle)
        }
    }

    /// Why a listing stopped early (decided inside a reply's decoder, thrown outside it).
    enum ListingStop {
        case cookieWentBack
        case tooMany
        case outOfMemory
    }

    /// READDIR on an open directory until the server has no more records.
    func list(node: UInt64, fileHandle: UInt64) throws(FileSystemError) -> [DirectoryEntry] {
        var entries: [DirectoryEntry] = []
        var records = 0
        var cookie: UInt64 = 0
        let size = min(transfer, 64 * 1024)
        let limit = maximumDirectoryEntries
        while true {
            var stop: ListingStop? = nil
            let more = try call(.readdir(fileHandle: fileHandle, offset: cookie, size: size), node: node) {
                (reply: FUSEReply) throws(FUSEError) -> Bool in
                let directory = try reply.directory(requested: size, plus: false)
                // Check the whole reply before taking anything from it.
                var cost = 0
                var count = 0
                var previous = cookie
                for record in directory {
                    guard record.offset > previous else { stop = .cookieWentBack; return false }
                    previous = record.offset
                    count += 1
                    cost += FUSEFileSystem.entryCost(nameLength: record.name.count)
                }
                guard count > 0 else { return false }
                guard count <= limit - records else { stop = .tooMany; return false }
                guard MemoryBudget.admit(cost, for: "a folder listing") else { stop = .outOfMemory; return false }
                records += count
                cookie = previous
                for record in directory where !FUSEFileSystem.isDotOrDotDot(record.name) {
                    entries.append(DirectoryEntry(name: Array(record.name), kind: FUSEFileSystem.kind(direntType: record.type)))
                }
                return true
            }
            switch stop {
            case .cookieWentBack?: throw malformed("READDIR cookies do not increase")
            case .tooMany?: throw refused("a folder lists more entries than allowed", limit: limit)
            case .outOfMemory?: throw .outOfMemory
            case nil: break
            }
            if !more { return entries }
        }
    }

    /// One log line for a listing past its bound; the listing fails with `.tooLarge`.
    func refused(_ what: StaticString, limit: Int) -> FileSystemError {
        Log.timestamp()
        Log.write("virtio-fs: ")
        Log.write(what)
        Log.write(" (")
        Log.decimal(limit)
        Log.write("); the listing fails\n")
        return .tooLarge
    }
}
