// `fs-manifest`: walks the shared folder (`--share DIR`) and prints what it holds, so a test
// can compare it byte for byte with the host's own walk of DIR. Output, after
// `ready: fs-manifest`:
//
//   <path> <size> <crc32>        one line per regular file, sorted bytewise by path
//   fs-manifest: <N> files       then the service exits 0
//
//   * <path> is relative to the share, components joined by "/", no leading "/"
//     (`dir/a b.txt`). Its bytes are printed as they are (UTF-8 stays UTF-8, spaces stay
//     spaces), except bytes below 0x20, 0x7F and "\", which are printed as `\xHH`
//     (lowercase hex), so every entry stays on one line. Sorting is on the raw bytes.
//   * <size> is decimal: the bytes read to end of file; <crc32> is CRC-32 (IEEE, zlib's
//     crc32) of those bytes, as 8 lowercase hex digits.
//   * Folders get no line of their own; the walk descends into every folder.
//   * Symlinks: the back-end presents a symlink inside the share as its target. An entry
//     the listing reports as a symlink or with an unknown type (toro-fs lists symlinks as
//     DT_UNKNOWN) is looked up: one that resolves to a regular file is listed like a file
//     (under the symlink's name); one to a folder is not followed (no cycles); one the
//     back-end refuses (it points out of the share) or that dangles is left out. Devices,
//     FIFOs and sockets are left out (toro-fs does not list them either).
// Errors (one line, then the service fails with status 1, `serviceFailed`):
//   * a folder that cannot be listed or a file that cannot be read:
//     `fs-manifest: cannot read <path>: <reason>`;
//   * a tree deeper than the depth bound: `fs-manifest: <path> is more than <D> folders deep; no manifest`;
//   * more entries than the entry bound: `fs-manifest: more than <N> entries (stopped in <path>); no manifest`;
//   * memory the budget will not give (MemoryBudget): `fs-manifest: not enough memory (stopped at <path>); no manifest`.
// Without a share: `fs-manifest: no shared folder (on microvm, start with --share DIR)`, status 1.
// A malformed bound on the command line: one line, status 2 (`badCommandLine`).
//
// Bounds (issue 9: no recursion, no table, no allocation that the share alone can grow):
//   * The walk is iterative: an explicit stack of folders still to list, never the thread
//     stack (a 32 KiB kernel stack overflows a recursive walk a few hundred folders down).
//   * `manifest-depth=D` (1-2048, default 256): folders nested deeper than D are refused.
//     (A path is at most 4096 bytes anyway, so no tree goes past 2048.)
//   * `manifest-entries=N` (1-10,000,000, default 100,000): every entry listed (files,
//     folders, others) counts; beyond N the walk stops.
//   * Each file kept and each folder queued is admitted against the memory budget first;
//     a single listing is bounded and admitted by the file system (FUSEFileSystem).
import Core
import Wire

public enum FSManifest {
    /// One regular file of the manifest.
    public struct Entry: Equatable, Sendable {
        /// Relative path, "/"-separated, raw bytes.
        public var path: [UInt8]
        public var size: UInt64
        public var crc: UInt32

        public init(path: [UInt8], size: UInt64, crc: UInt32) {
            self.path = path
            self.size = size
            self.crc = crc
        }
    }

    /// How far the walk may go.
    public struct Limits: Equatable, Sendable {
        public static let defaultDepth = 256
        public static let defaultEntries = 100_000
        /// The most folders nested below the share (the share's own entries are depth 1).
        public var depth: Int
        /// The most entries listed in all (files, folders and others).
        public var entries: Int

        public init(depth: Int = Limits.defaultDepth, entries: Int = Limits.defaultEntries) {
            self.depth = depth
            self.entries = entries
        }

        /// `manifest-depth=` and `manifest-entries=`, or the defaults.
        public init(commandLine: KernelCommandLine) throws(KernelArgumentError) {
            depth = try commandLine.number("manifest-depth", minimum: 1, maximum: 2048) ?? Limits.defaultDepth
            entries = try commandLine.number("manifest-entries", minimum: 1, maximum: 10_000_000) ?? Limits.defaultEntries
        }
    }

    /// Why the walk stopped, and where (a path relative to the share, raw bytes).
    public struct WalkError: Error, Equatable, Sendable {
        public enum Cause: Equatable, Sendable {
            /// The back-end failed to list a folder or read a file.
            case unreadable(FileSystemError)
            /// A folder lies deeper than `Limits.depth`.
            case tooDeep(limit: Int)
            /// The share holds more entries than `Limits.entries`.
            case tooManyEntries(limit: Int)
            /// The memory budget refused what the manifest needed.
            case outOfMemory
        }
        public var path: [UInt8]
        public var cause: Cause

        public init(path: [UInt8], cause: Cause) {
            self.path = path
            self.cause = cause
        }

        /// A back-end failure at `path`.
        public init(path: [UInt8], error: FileSystemError) {
            self.init(path: path, cause: error == .outOfMemory ? .outOfMemory : .unreadable(error))
        }
    }

    /// What one queued folder costs beyond its path bytes (the stack slot, the arrays' headers).
    static let folderOverhead = 128
    /// What one manifest entry costs beyond its path bytes.
    static let entryOverhead = 64

    /// Every regular file under the root of `fileSystem`, sorted bytewise by path.
    public static func collect(_ fileSystem: any FileSystem, chunkSize: Int = 64 * 1024,
                               limits: Limits = Limits()) throws(WalkError) -> [Entry] {
        var entries: [Entry] = []
        var buffer = [UInt8](repeating: 0, count: max(1, chunkSize))
        try walk(fileSystem, limits: limits, into: &entries, buffer: &buffer)
        entries.sort { $0.path.lexicographicallyPrecedes($1.path) }
        return entries
    }

    /// A folder still to list.
    struct Pending {
        var path: VFSPath
        var relative: [UInt8]
        var depth: Int
    }

    /// Lists folders from an explicit stack (depth first), never recursing.
    static func walk(_ fileSystem: any FileSystem, limits: Limits, into entries: inout [Entry],
                     buffer: inout [UInt8]) throws(WalkError) {
        var stack = [Pending(path: .root, relative: [], depth: 0)]
        var listed = 0
        while let folder = stack.popLast() {
            let listing: [DirectoryEntry]
            do throws(FileSystemError) {
                listing = try fileSystem.readDirectory(folder.path)
            } catch {
                throw WalkError(path: folder.relative, error: error)
            }
            listed += listing.count
            guard listed <= limits.entries else {
                throw WalkError(path: folder.relative, cause: .tooManyEntries(limit: limits.entries))
            }
            for entry in listing {
                let name = folder.relative.isEmpty ? entry.name : folder.relative + [0x2F] + entry.name
                let path: VFSPath
                do throws(FileSystemError) { path = try folder.path.appending(entry.name) } catch {
                    throw WalkError(path: name, error: error)
                }
                switch entry.kind {
                case .directory:
                    guard folder.depth < limits.depth else {
                        throw WalkError(path: name, cause: .tooDeep(limit: limits.depth))
                    }
                    guard MemoryBudget.admit(2 * name.count + folderOverhead, for: "a folder of the manifest") else {
                        throw WalkError(path: name, cause: .outOfMemory)
                    }
                    stack.append(Pending(path: path, relative: name, depth: folder.depth + 1))
                case .file:
                    guard MemoryBudget.admit(name.count + entryOverhead, for: "a manifest entry") else {
                        throw WalkError(path: name, cause: .outOfMemory)
                    }
                    entries.append(try checksum(fileSystem, path, name: name, buffer: &buffer))
                case .symlink, .other:
                    // toro-fs lists a symlink with an unknown type (DT_UNKNOWN, `.other`) and
                    // presents its target at lookup. Listed only when it resolves, inside the
                    // share, to a regular file; a folder is not followed, a refusal is skipped.
                    guard let attributes = try? fileSystem.stat(path), attributes.kind == .file else { continue }
                    guard MemoryBudget.admit(name.count + entryOverhead, for: "a manifest entry") else {
                        throw WalkError(path: name, cause: .outOfMemory)
                    }
                    guard let entry = try? checksum(fileSystem, path, name: name, buffer: &buffer) else { continue }
                    entries.append(entry)
                }
            }
        }
    }

    /// Reads the file at `path` to its end: its size and CRC-32.
    static func checksum(_ fileSystem: any FileSystem, _ path: VFSPath, name: [UInt8],
                         buffer: inout [UInt8]) throws(WalkError) -> Entry {
        let handle: FileHandleID
        do throws(FileSystemError) { handle = try fileSystem.open(path, flags: .read, mode: 0) } catch {
            throw WalkError(path: name, error: error)
        }
        defer { try? fileSystem.close(handle) }
        var crc = CRC32()
        var size: UInt64 = 0
        while true {
            var failure: FileSystemError?
            let count = buffer.withUnsafeMutableBytes { raw -> Int in
                do throws(FileSystemError) { return try fileSystem.read(handle, offset: size, into: raw) } catch {
                    failure = error
                    return 0
                }
            }
            if let failure { throw WalkError(path: name, error: failure) }
            guard count > 0 else { break }
            guard count <= buffer.count else { throw WalkError(path: name, error: .io) }
            buffer.withUnsafeBytes { crc.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            size += UInt64(count)
        }
        return Entry(path: name, size: size, crc: crc.value)
    }

    // MARK: Format (shared with the host's walk in the boot test)

    /// `path` as printed: control bytes, DEL and "\" as `\xHH`.
    public static func escaped(_ path: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(path.count)
        for byte in path {
            if byte < 0x20 || byte == 0x7F || byte == 0x5C {
                out += [0x5C, 0x78, hexDigit(byte >> 4), hexDigit(byte & 0xF)]
            } else {
                out.append(byte)
            }
        }
        return out
    }

    /// One manifest line, with its `\n`.
    public static func line(_ entry: Entry) -> [UInt8] {
        var out = escaped(entry.path)
        out.append(0x20)
        HTTPResponse.appendDecimal(Int(truncatingIfNeeded: entry.size), to: &out)
        out.append(0x20)
        for shift in stride(from: 28, through: 0, by: -4) { out.append(hexDigit(UInt8((entry.crc >> UInt32(shift)) & 0xF))) }
        out.append(0x0A)
        return out
    }

    /// The last line, with its `\n`.
    public static func summary(count: Int) -> [UInt8] {
        var out = [UInt8]("fs-manifest: ")
        HTTPResponse.appendDecimal(count, to: &out)
        out += [UInt8](" files\n")
        return out
    }

    static func hexDigit(_ value: UInt8) -> UInt8 { value < 10 ? 0x30 + value : 0x61 + value - 10 }

    /// The error line for `error`, with its `\n`.
    public static func describe(_ error: WalkError) -> [UInt8] {
        let path = escaped(error.path.isEmpty ? [0x2E] : error.path)
        var out = [UInt8]("fs-manifest: ")
        switch error.cause {
        case .unreadable(let failure):
            out += [UInt8]("cannot read ") + path + [UInt8](": ")
            out += [UInt8](failure.reason)
        case .tooDeep(let limit):
            out += path + [UInt8](" is more than ")
            HTTPResponse.appendDecimal(limit, to: &out)
            out += [UInt8](" folders deep; no manifest")
        case .tooManyEntries(let limit):
            out += [UInt8]("more than ")
            HTTPResponse.appendDecimal(limit, to: &out)
            out += [UInt8](" entries (stopped in ") + path + [UInt8]("); no manifest")
        case .outOfMemory:
            out += [UInt8]("not enough memory (stopped at ") + path + [UInt8]("); no manifest")
        }
        out.append(0x0A)
        return out
    }
}
