// The `kv` service's line protocol (Toro's HashTableServer), as a pure function over one
// request line and the table, so the host tests exercise exactly what the kernel runs.
//
//   SET <key> <value>   -> OK              (the value is the rest of the line, spaces kept)
//   GET <key>           -> VALUE <value> | NOT_FOUND
//   DEL <key>           -> DELETED | NOT_FOUND
//   QUIT                -> BYE, and the connection closes
//   SAVE                -> OK | ERROR <reason>: the whole table written to `kv.db` at the
//                          root of the shared folder (KVFile below); without a folder
//                          `ERROR no shared folder`, on a `:ro` share
//                          `ERROR read-only file system`
//   anything else       -> ERROR <reason>
// Keys are 1-250 bytes without spaces; lines end with \n (a \r before it is dropped).
// Bytes are compared as bytes: no Unicode processing in the kernel.

public struct KVTable {
    public static let maxKey = 250
    public private(set) var entries: [[UInt8]: [UInt8]] = [:]
    public init() {}

    public var count: Int { entries.count }

    /// Handles one request line (without its terminator) with no shared folder (the host
    /// server): SAVE answers `ERROR no shared folder`.
    public mutating func handle(_ line: ArraySlice<UInt8>) -> (reply: [UInt8], quit: Bool) {
        handle(line, fileSystem: nil)
    }

    /// Handles one request line (without its terminator); SAVE writes to `fileSystem`.
    /// Returns the reply line (with `\n`) and whether the client asked to quit.
    public mutating func handle(_ line: ArraySlice<UInt8>, fileSystem: (any FileSystem)?) -> (reply: [UInt8], quit: Bool) {
        var line = line
        if line.last == 13 { line = line.dropLast() }
        let space: UInt8 = 32
        let commandEnd = line.firstIndex(of: space) ?? line.endIndex
        let command = line[line.startIndex..<commandEnd]
        let rest = commandEnd < line.endIndex ? line[(commandEnd + 1)...] : line[line.endIndex...]
        switch Array(command) {
        case Array("SET".utf8):
            guard let keyEnd = rest.firstIndex(of: space) else { return (Self.reply("ERROR usage: SET key value"), false) }
            let key = rest[rest.startIndex..<keyEnd]
            guard Self.valid(key) else { return (Self.reply("ERROR bad key"), false) }
            entries[Array(key)] = Array(rest[(keyEnd + 1)...])
            return (Self.reply("OK"), false)
        case Array("GET".utf8):
            guard Self.valid(rest) else { return (Self.reply("ERROR usage: GET key"), false) }
            guard let value = entries[Array(rest)] else { return (Self.reply("NOT_FOUND"), false) }
            return (Array("VALUE ".utf8) + value + [10], false)
        case Array("DEL".utf8):
            guard Self.valid(rest) else { return (Self.reply("ERROR usage: DEL key"), false) }
            let removed = entries.removeValue(forKey: Array(rest)) != nil
            // A Dictionary never shrinks by itself: give the storage back once empty.
            if entries.isEmpty { entries = [:] }
            return (Self.reply(removed ? "DELETED" : "NOT_FOUND"), false)
        case Array("QUIT".utf8):
            return (Self.reply("BYE"), true)
        case Array("SAVE".utf8):
            guard commandEnd == line.endIndex else { return (Self.reply("ERROR usage: SAVE"), false) }
            guard let fileSystem else { return (Self.reply("ERROR no shared folder"), false) }
            do throws(FileSystemError) {
                try KVFile.save(entries, to: fileSystem)
            } catch {
                return (Array("ERROR ".utf8) + error.reason.withUTF8Buffer { Array($0) } + [10], false)
            }
            return (Self.reply("OK"), false)
        default:
            return (Self.reply("ERROR unknown command"), false)
        }
    }

    /// Replaces the table with what `kv.db` in `fileSystem` holds (see KVFile).
    public mutating func load(from fileSystem: any FileSystem) -> KVFile.LoadOutcome {
        let outcome = KVFile.load(from: fileSystem)
        if case .loaded(let table) = outcome { entries = table }
        return outcome
    }

    static func valid(_ key: ArraySlice<UInt8>) -> Bool {
        !key.isEmpty && key.count <= maxKey && !key.contains(32)
    }

    static func reply(_ text: StaticString) -> [UInt8] {
        text.withUTF8Buffer { Array($0) } + [10]
    }
}

/// The table on disk: `kv.db` at the root of the shared folder. Little-endian throughout:
///
///   "TOROKV1\n"                            8 bytes, the format's name and version
///   count                                  UInt32
///   count x { keyLength UInt32, valueLength UInt32, key bytes, value bytes }
///   crc                                    UInt32, CRC-32 (IEEE) of every byte before it
///
/// Keys are valid kv keys (1-250 bytes, no space), each once; values hold no `\n`; the file
/// is at most `maximumSize` bytes and ends right after the CRC. Anything else is corrupt:
/// kv logs one line and starts empty (a host file is untrusted input: never a trap).
/// `save` writes `kv.db.tmp` whole, then renames it over `kv.db`, so a crash leaves either
/// the old file or the new one, never half of one. Records are sorted by key, so the same
/// table always gives the same bytes.
public enum KVFile {
    public static let name: [UInt8] = Array("/kv.db".utf8)
    public static let temporaryName: [UInt8] = Array("/kv.db.tmp".utf8)
    static let magic: [UInt8] = Array("TOROKV1\n".utf8)
    /// The largest file `load` reads.
    public static let maximumSize = 16 << 20

    /// What `load` found.
    public enum LoadOutcome: Equatable {
        /// No `kv.db`: the table starts empty.
        case absent
        case loaded([[UInt8]: [UInt8]])
        /// The file is there but unusable.
        case corrupt(KVFileCorruption)
        /// The file could not be read.
        case failed(FileSystemError)
    }

    /// The file's bytes for `entries`.
    public static func encode(_ entries: [[UInt8]: [UInt8]]) -> [UInt8] {
        var out = magic
        appendUInt32(UInt32(truncatingIfNeeded: entries.count), to: &out)
        let keys = entries.keys.sorted { $0.lexicographicallyPrecedes($1) }
        for key in keys {
            let value = entries[key] ?? []
            appendUInt32(UInt32(truncatingIfNeeded: key.count), to: &out)
            appendUInt32(UInt32(truncatingIfNeeded: value.count), to: &out)
            out += key
            out += value
        }
        appendUInt32(CRC32.checksum(out), to: &out)
        return out
    }

    /// The table in `bytes`, or why they are not a kv file.
    public static func decode(_ bytes: [UInt8]) -> Result<[[UInt8]: [UInt8]], KVFileCorruption> {
        guard bytes.count <= maximumSize else { return .failure(.tooLarge) }
        guard bytes.count >= magic.count + 8, bytes[0..<magic.count].elementsEqual(magic) else {
            return .failure(.notAKVFile)
        }
        let body = bytes.count - 4
        guard readUInt32(bytes, at: body) == CRC32.checksum(bytes[0..<body]) else {
            return .failure(.checksumMismatch)
        }
        var offset = magic.count
        let count = Int(readUInt32(bytes, at: offset))
        offset += 4
        var entries: [[UInt8]: [UInt8]] = [:]
        for _ in 0..<count {
            guard body - offset >= 8 else { return .failure(.truncatedRecord) }
            let keyLength = Int(readUInt32(bytes, at: offset))
            let valueLength = Int(readUInt32(bytes, at: offset + 4))
            offset += 8
            guard keyLength <= body - offset, valueLength <= body - offset - keyLength else {
                return .failure(.truncatedRecord)
            }
            let key = bytes[offset..<offset + keyLength]
            let value = bytes[offset + keyLength..<offset + keyLength + valueLength]
            offset += keyLength + valueLength
            guard KVTable.valid(key), !value.contains(10) else { return .failure(.badRecord) }
            guard entries.updateValue(Array(value), forKey: Array(key)) == nil else {
                return .failure(.duplicateKey)
            }
        }
        guard offset == body else { return .failure(.trailingBytes) }
        return .success(entries)
    }

    /// Reads and decodes `kv.db`.
    public static func load(from fileSystem: any FileSystem) -> LoadOutcome {
        let path: VFSPath
        let handle: FileHandleID
        do throws(FileSystemError) {
            path = try VFSPath(parsing: name)
            let attributes = try fileSystem.stat(path)
            guard attributes.kind == .file else { return .corrupt(.notARegularFile) }
            guard attributes.size <= UInt64(maximumSize) else { return .corrupt(.tooLarge) }
            handle = try fileSystem.open(path, flags: .read, mode: 0)
        } catch {
            return error == .notFound ? .absent : .failed(error)
        }
        defer { try? fileSystem.close(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            var failure: FileSystemError?
            let offset = UInt64(bytes.count)
            let count = chunk.withUnsafeMutableBytes { raw -> Int in
                do throws(FileSystemError) { return try fileSystem.read(handle, offset: offset, into: raw) } catch {
                    failure = error
                    return 0
                }
            }
            if let failure { return .failed(failure) }
            guard count > 0 else { break }
            guard count <= chunk.count, bytes.count + count <= maximumSize else { return .corrupt(.tooLarge) }
            bytes += chunk[0..<count]
        }
        switch decode(bytes) {
        case .success(let entries): return .loaded(entries)
        case .failure(let corruption): return .corrupt(corruption)
        }
    }

    /// Writes `entries` to `kv.db.tmp`, then renames it to `kv.db`.
    public static func save(_ entries: [[UInt8]: [UInt8]], to fileSystem: any FileSystem) throws(FileSystemError) {
        let bytes = encode(entries)
        let temporary = try VFSPath(parsing: temporaryName)
        let handle = try fileSystem.open(temporary, flags: [.write, .create, .truncate], mode: 0o644)
        var failure: FileSystemError?
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count && failure == nil {
                do throws(FileSystemError) {
                    let written = try fileSystem.write(handle, offset: UInt64(offset),
                                                       from: UnsafeRawBufferPointer(rebasing: raw[offset...]))
                    if written <= 0 || written > raw.count - offset { failure = .io } else { offset += written }
                } catch {
                    failure = error
                }
            }
        }
        do throws(FileSystemError) { try fileSystem.close(handle) } catch { if failure == nil { failure = error } }
        if failure == nil {
            do throws(FileSystemError) { try fileSystem.rename(from: temporary, to: try VFSPath(parsing: name)) } catch {
                failure = error
            }
        }
        if let failure {
            try? fileSystem.remove(temporary)
            throw failure
        }
    }

    static func appendUInt32(_ value: UInt32, to out: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    static func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }
}

/// Why bytes are not a kv file.
public enum KVFileCorruption: Error, Equatable, Sendable {
    case tooLarge, notAKVFile, checksumMismatch, truncatedRecord, badRecord, duplicateKey, trailingBytes, notARegularFile

    /// A few words for kv's log line.
    public var reason: StaticString {
        switch self {
        case .tooLarge: return "larger than 16 MiB"
        case .notAKVFile: return "not a kv file"
        case .checksumMismatch: return "checksum mismatch"
        case .truncatedRecord: return "truncated record"
        case .badRecord: return "bad key or value"
        case .duplicateKey: return "duplicate key"
        case .trailingBytes: return "bytes after the last record"
        case .notARegularFile: return "not a regular file"
        }
    }
}
