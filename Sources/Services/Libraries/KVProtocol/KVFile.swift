// The kv table on disk: `kv.db` at the root of the shared folder. Little-endian throughout:
//
//   "TOROKV1\n"                            8 bytes, the format's name and version
//   count                                  UInt32
//   count x { keyLength UInt32, valueLength UInt32, key bytes, value bytes }
//   crc                                    UInt32, CRC-32 (IEEE) of every byte before it
//
// Keys are valid kv keys (KVKey: 1-250 bytes, no space), each once; values hold no `\n`;
// the file ends right after the CRC. Anything else is corrupt (KVFileCorruption): kv logs
// one line and starts empty (a host file is untrusted input: never a trap).
//
// Streaming, both ways, in constant memory whatever the table's size:
//   * `KVFileEncoder` fills a caller's buffer (SAVE uses 16 KiB) with the next bytes of the
//     file, records straddling buffers as they fall, the CRC computed as it goes. Records
//     come in the dictionary's own order (no sorted copy of the keys: that would cost memory
//     in proportion to the table); a decoder accepts any order. Files written before this
//     change (sorted) have the same format and load unchanged.
//   * `KVFileDecoder` (KVFileDecoder.swift) takes the file in chunks of any size.
//
// Rules for callers: the encoder holds the dictionary it was given; whoever mutates the
// table meanwhile makes the dictionary copy itself (memory in proportion to the table), so
// the service blocks writers while a save runs (KV.swift).
import Wire

public enum KVFile {
    public static let name: [UInt8] = [UInt8]("/kv.db")
    public static let temporaryName: [UInt8] = [UInt8]("/kv.db.tmp")
    static let magic: [UInt8] = [UInt8]("TOROKV1\n")
    /// The magic and the count.
    static let headerSize = 12
    /// Each record's two lengths.
    static let recordHeaderSize = 8
    /// The buffer SAVE fills and writes, and the chunk `load` reads.
    public static let chunkSize = 16 * 1024

    /// The file's bytes for `entries` in one array (tests, and the host building a file).
    public static func encode(_ entries: [[UInt8]: [UInt8]]) -> [UInt8] {
        var encoder = KVFileEncoder(entries)
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let count = chunk.withUnsafeMutableBytes { encoder.fill($0) }
            if count == 0 { return out }
            out += chunk[0..<count]
        }
    }

    /// The table in `bytes`, or why they are not a kv file (no bounds but `limits`).
    public static func decode(_ bytes: [UInt8], limits: KVLimits = .unlimited) -> Result<[[UInt8]: [UInt8]], KVFileCorruption> {
        var decoder = KVFileDecoder(limits: limits)
        _ = bytes.withUnsafeBytes { decoder.feed($0) }
        switch decoder.finish() {
        case .loaded(let entries, _): return .success(entries)
        case .corrupt(let corruption): return .failure(corruption)
        case .refused: return .failure(.tooLarge)
        }
    }
}

/// Produces the bytes of a kv file for a table, a buffer at a time.
public struct KVFileEncoder {
    private let entries: [[UInt8]: [UInt8]]
    private var index: Dictionary<[UInt8], [UInt8]>.Index
    private var phase = Phase.header
    /// Bytes of the current header, record or CRC already produced.
    private var within = 0
    private var crc = CRC32()

    enum Phase { case header, records, checksum, done }

    public init(_ entries: [[UInt8]: [UInt8]]) {
        self.entries = entries
        index = entries.startIndex
    }

    /// True once every byte has been produced.
    public var isFinished: Bool { phase == .done }

    /// Fills `buffer` with the next bytes of the file (all of it unless the file ends
    /// first); returns how many, 0 once the file is complete.
    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        var count = 0
        while count < buffer.count && phase != .done {
            switch phase {
            case .header:
                let value = within < 8 ? KVFile.magic[within]
                    : Self.byte(UInt64(UInt32(truncatingIfNeeded: entries.count)), within - 8)
                buffer[count] = value
                crc.update(UnsafeRawBufferPointer(rebasing: buffer[count..<count + 1]))
                count += 1
                within += 1
                if within == KVFile.headerSize {
                    within = 0
                    phase = index == entries.endIndex ? .checksum : .records
                }
            case .records:
                let (key, value) = entries[index]
                let start = count
                count += copyRecord(key, value, into: buffer, at: count)
                crc.update(UnsafeRawBufferPointer(rebasing: buffer[start..<count]))
                if within == KVFile.recordHeaderSize + key.count + value.count {
                    within = 0
                    index = entries.index(after: index)
                    if index == entries.endIndex { phase = .checksum }
                }
            case .checksum:
                buffer[count] = Self.byte(UInt64(crc.value), within)
                count += 1
                within += 1
                if within == 4 { phase = .done }
            case .done:
                break
            }
        }
        return count
    }

    /// Copies what fits of the current record from `within` on; returns the bytes copied.
    private mutating func copyRecord(_ key: [UInt8], _ value: [UInt8], into buffer: UnsafeMutableRawBufferPointer,
                                     at start: Int) -> Int {
        var at = start
        let lengths = UInt64(UInt32(truncatingIfNeeded: key.count)) | UInt64(UInt32(truncatingIfNeeded: value.count)) << 32
        while within < KVFile.recordHeaderSize && at < buffer.count {
            buffer[at] = Self.byte(lengths, within)
            at += 1
            within += 1
        }
        at = copy(key, from: KVFile.recordHeaderSize, into: buffer, at: at)
        at = copy(value, from: KVFile.recordHeaderSize + key.count, into: buffer, at: at)
        return at - start
    }

    /// Copies what fits of `part`, which starts `offset` bytes into the record, when
    /// `within` lies inside it; returns where the buffer's next free byte is.
    private mutating func copy(_ part: [UInt8], from offset: Int, into buffer: UnsafeMutableRawBufferPointer,
                               at start: Int) -> Int {
        let from = within - offset
        guard from >= 0, from < part.count, start < buffer.count else { return start }
        let length = min(part.count - from, buffer.count - start)
        part.withUnsafeBytes { source in
            UnsafeMutableRawBufferPointer(rebasing: buffer[start..<start + length])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[from..<from + length]))
        }
        within += length
        return start + length
    }

    static func byte(_ value: UInt64, _ index: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: value >> UInt64(8 * index))
    }
}

/// Why bytes are not a kv file.
public enum KVFileCorruption: Error, Equatable, Sendable {
    case tooLarge, notAKVFile, checksumMismatch, truncatedRecord, badRecord, duplicateKey, trailingBytes, notARegularFile

    /// A few words for kv's log line.
    public var reason: StaticString {
        switch self {
        case .tooLarge: return "larger than the table's limits"
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

/// Why a well-formed-so-far file was not loaded: it does not fit the table's bounds.
public struct KVFileRefusal: Equatable, Sendable {
    /// What gave out first.
    public enum Bound: Equatable, Sendable {
        /// More keys than `kv-keys`.
        case keys
        /// More bytes than `kv-bytes` (entries counted as the table counts them).
        case bytes
        /// MemoryBudget did not admit the file's entries.
        case memory
    }

    public var bound: Bound
    /// The keys the file declares.
    public var keys: Int
    /// What its entries would cost (KVLimits.cost), as far as known when it was refused.
    public var bytes: Int

    public init(bound: Bound, keys: Int, bytes: Int) {
        self.bound = bound
        self.keys = keys
        self.bytes = bytes
    }
}
