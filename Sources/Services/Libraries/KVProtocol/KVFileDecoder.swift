// Decoding a kv file (format in KVFile.swift) from chunks of any size, in memory bounded by
// the table's limits, never by what the file claims.
//
// How it reads: the last 4 bytes of the stream are held back (they may be the CRC); every
// byte before them goes into the running CRC and through the record parser. At the end
// the held 4 bytes must equal the CRC. So a file is judged as a whole, in this order:
//   1. not a kv file: the first 8 bytes are not the magic (seen at once, reading stops),
//      or the stream is shorter than header + CRC (16 bytes);
//   2. refused (KVFileRefusal): the header declares more keys than `limits.keys`, or the
//      entries would cost more than `limits.bytes` (known from the header and the file's
//      size when the caller gives it, else record by record), or `admit` says no. Reading
//      stops at once and everything decoded so far is dropped;
//   3. checksum mismatch;
//   4. the first structural fault (truncated record, bad key or value, duplicate key,
//      bytes after the last record). Decoding stops at the fault and its entries are
//      dropped; the CRC still runs to the end, so a damaged file says "checksum mismatch".
//
// Memory: the key and value being read (a value's buffer grows as its bytes arrive, so a
// claimed length costs nothing until the bytes are there) and the entries, whose cost is
// checked against `limits` before each is read. With `fileSize`, declared counts and
// lengths that the file cannot hold are faults before anything is allocated.
//
// Rules for callers: `feed` chunks in order until it returns false or the file ends, then
// call `finish` once. Never traps on any input (Fuzz/KVFile).
import Core
import Wire

public struct KVFileDecoder {
    /// What a whole file gave.
    public enum Outcome: Equatable {
        /// The table and what its entries cost (KVLimits.cost).
        case loaded([[UInt8]: [UInt8]], bytes: Int)
        case corrupt(KVFileCorruption)
        case refused(KVFileRefusal)
    }

    enum State { case header, recordHeader, key, value, afterRecords, skipping, stopped }

    let limits: KVLimits
    let fileSize: Int?
    let admit: (Int) -> Bool
    private var state = State.header
    /// The held-back tail of the stream (oldest byte lowest) and how many bytes it holds.
    private var held: UInt32 = 0
    private var heldCount = 0
    /// Bytes that went through the CRC and the parser.
    private var consumed = 0
    /// Where the parser is in the stream (set when a record header completes).
    private var position = 0
    private var crc = CRC32()
    /// The header's or the current record header's bytes so far, and their number.
    private var fields: UInt64 = 0
    private var fieldBytes = 0
    private var declared = 0
    private var keyLength = 0
    private var valueLength = 0
    private var key: [UInt8] = []
    private var value: [UInt8] = []
    private var entries: [[UInt8]: [UInt8]] = [:]
    private var bytes = 0
    private var fault: KVFileCorruption?
    private var refusal: KVFileRefusal?

    /// `fileSize`: the file's size when known (stat), to check declared figures before
    /// allocating. `admit`: asked once, with the cost the header and size declare.
    public init(limits: KVLimits, fileSize: Int? = nil, admit: @escaping (Int) -> Bool = { _ in true }) {
        self.limits = limits
        self.fileSize = fileSize
        self.admit = admit
    }

    /// Takes the next bytes of the file; false once the outcome is settled (stop reading).
    @discardableResult
    public mutating func feed(_ chunk: UnsafeRawBufferPointer) -> Bool {
        guard state != .stopped else { return false }
        if chunk.count >= 4 {
            while heldCount > 0 { releaseHeldByte() }
            consume(UnsafeRawBufferPointer(rebasing: chunk[0..<chunk.count - 4]))
            for index in chunk.count - 4..<chunk.count { hold(chunk[index]) }
        } else {
            for byte in chunk { hold(byte) }
        }
        return state != .stopped
    }

    /// The outcome once the whole file has been fed.
    public mutating func finish() -> Outcome {
        if let refusal { return .refused(refusal) }
        if fault == .notAKVFile || consumed + heldCount < KVFile.headerSize + 4 { return .corrupt(.notAKVFile) }
        guard held == crc.value else { return .corrupt(.checksumMismatch) }
        if let fault { return .corrupt(fault) }
        guard state == .afterRecords else { return .corrupt(.truncatedRecord) }
        let table = entries
        entries = [:]
        return .loaded(table, bytes: bytes)
    }

    private mutating func hold(_ byte: UInt8) {
        if heldCount == 4 { releaseHeldByte() }
        held |= UInt32(byte) << UInt32(8 * heldCount)
        heldCount += 1
    }

    private mutating func releaseHeldByte() {
        var byte = UInt8(truncatingIfNeeded: held)
        held >>= 8
        heldCount -= 1
        withUnsafeBytes(of: &byte) { consume($0) }
    }

    /// Bytes known not to be the CRC: into the CRC, then the parser.
    private mutating func consume(_ bytes: UnsafeRawBufferPointer) {
        guard state != .stopped, !bytes.isEmpty else { return }
        crc.update(bytes)
        let start = consumed
        consumed += bytes.count
        var index = 0
        while index < bytes.count {
            switch state {
            case .header, .recordHeader:
                let byte = bytes[index]
                index += 1
                if state == .header && fieldBytes < 8 {
                    guard byte == KVFile.magic[fieldBytes] else { return stop(fault: .notAKVFile) }
                    fieldBytes += 1
                    continue
                }
                let shift = state == .header ? fieldBytes - 8 : fieldBytes
                fields |= UInt64(byte) << UInt64(8 * shift)
                fieldBytes += 1
                if state == .header && fieldBytes == KVFile.headerSize { headerDone() }
                if state == .recordHeader && fieldBytes == KVFile.recordHeaderSize {
                    position = start + index
                    recordHeaderDone()
                }
            case .key:
                let take = min(keyLength - key.count, bytes.count - index)
                key.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<index + take]))
                index += take
                if key.count == keyLength { state = .value; if valueLength == 0 { recordDone() } }
            case .value:
                let take = min(valueLength - value.count, bytes.count - index)
                value.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<index + take]))
                index += take
                if value.count == valueLength { recordDone() }
            case .afterRecords:
                return skip(fault: .trailingBytes)
            case .skipping, .stopped:
                return
            }
        }
    }

    private mutating func headerDone() {
        declared = Int(UInt32(truncatingIfNeeded: fields))
        fields = 0
        fieldBytes = 0
        // More records than the file can hold is a fault, not a refusal: garbage after the
        // magic must end as "checksum mismatch", not as "too large".
        if fileSize != nil && declaredCost == nil { return skip(fault: .truncatedRecord) }
        guard declared <= limits.keys else {
            return refuse(KVFileRefusal(bound: .keys, keys: declared, bytes: declaredCost ?? 0))
        }
        if let cost = declaredCost {
            guard cost <= limits.bytes else { return refuse(KVFileRefusal(bound: .bytes, keys: declared, bytes: cost)) }
            guard admit(cost) else { return refuse(KVFileRefusal(bound: .memory, keys: declared, bytes: cost)) }
        }
        state = declared == 0 ? .afterRecords : .recordHeader
    }

    /// What the declared entries cost, from the file's size: nil without a size, or when
    /// the file is too short for `declared` record headers.
    private var declaredCost: Int? {
        guard let fileSize else { return nil }
        let payload = fileSize - KVFile.headerSize - 4 - KVFile.recordHeaderSize * declared
        guard payload >= 0 else { return nil }
        return payload + KVLimits.entryOverhead * declared
    }

    private mutating func recordHeaderDone() {
        keyLength = Int(UInt32(truncatingIfNeeded: fields))
        valueLength = Int(fields >> 32)
        fields = 0
        fieldBytes = 0
        guard keyLength >= 1 && keyLength <= KVKey.maximumLength else { return skip(fault: .badRecord) }
        if let fileSize, keyLength + valueLength > fileSize - 4 - position {
            return skip(fault: .truncatedRecord)
        }
        let cost = KVLimits.cost(keyLength: keyLength, valueLength: valueLength)
        guard cost <= limits.bytes - bytes else {
            return refuse(KVFileRefusal(bound: .bytes, keys: declared, bytes: bytes + cost))
        }
        key = []
        key.reserveCapacity(keyLength)
        value = []
        value.reserveCapacity(min(valueLength, 4096))
        state = .key
    }

    private mutating func recordDone() {
        guard KVKey.isValid(key[...]), !value.contains(10) else { return skip(fault: .badRecord) }
        guard entries.updateValue(value, forKey: key) == nil else { return skip(fault: .duplicateKey) }
        bytes += KVLimits.cost(keyLength: keyLength, valueLength: valueLength)
        key = []
        value = []
        state = entries.count == declared ? .afterRecords : .recordHeader
    }

    /// A structural fault: drop what was decoded, let the CRC run on.
    private mutating func skip(fault: KVFileCorruption) {
        self.fault = fault
        entries = [:]
        key = []
        value = []
        state = .skipping
    }

    /// The outcome is settled: drop everything, read no more.
    private mutating func stop(fault: KVFileCorruption) {
        skip(fault: fault)
        state = .stopped
    }

    private mutating func refuse(_ refusal: KVFileRefusal) {
        self.refusal = refusal
        entries = [:]
        key = []
        value = []
        state = .stopped
    }
}
