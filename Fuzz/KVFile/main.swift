// libFuzzer target: kv's file decoder (`KVFileDecoder`), which reads `kv.db` from a shared
// folder the host controls (untrusted bytes; STYLE principle 7), fed in chunks of
// fuzz-chosen sizes, and the streaming encoder (`KVFileEncoder`) checked against it.
//
// The input: byte 0 is the mode, then the limits (kv-keys: u16, kv-bytes: u32), the file
// size the decoder is told (u8 selector: none, the true size, or a fuzz-chosen u32), and 8
// chunk sizes (u16 each, 0 read as 1) used in turn. The rest is the file. Mode bit 0 set:
// the rest instead chooses a table (key length, key, value length, value, ...), which is
// encoded through a fuzz-sized buffer and decoded. Bit 1 writes the magic over the file's
// first 8 bytes; bit 2 reseals the file (its last 4 bytes become the CRC of the rest), so
// most inputs reach the record parser with a valid checksum.
// Invariants (a violation traps, which libFuzzer reports):
//   * decoding never traps, and the outcome does not depend on the chunking (the same
//     bytes in one piece give the same outcome); `feed` returning false is final;
//   * a loaded table holds at most kv-keys keys, costs at most kv-bytes, and its reported
//     cost is the sum of KVLimits.cost over its entries; every key is valid (KVKey) and
//     no value holds `\n`; re-encoding it gives a file of the input's length that decodes
//     to the same table;
//   * a table the fuzzer built (valid keys, values without `\n`) encodes, through any
//     buffer size, to bytes that decode to exactly that table (or are refused only when
//     the table is over the limits).
import FuzzSupport
@testable import KVProtocol
@testable import Wire

private func decode(_ file: UnsafeRawBufferPointer, chunks: [Int], limits: KVLimits, fileSize: Int?) -> KVFileDecoder.Outcome {
    var decoder = KVFileDecoder(limits: limits, fileSize: fileSize)
    var offset = 0
    var index = 0
    var stopped = false
    while offset < file.count {
        let size = min(chunks[index % chunks.count], file.count - offset)
        index += 1
        let more = decoder.feed(UnsafeRawBufferPointer(rebasing: file[offset..<offset + size]))
        offset += size
        if stopped { precondition(!more, "feed said stop, then asked for more") }
        if !more { stopped = true }
    }
    return decoder.finish()
}

private func cost(_ entries: [[UInt8]: [UInt8]]) -> Int {
    entries.reduce(0) { $0 + KVLimits.cost(keyLength: $1.key.count, valueLength: $1.value.count) }
}

private func checkLoaded(_ outcome: KVFileDecoder.Outcome, limits: KVLimits, fileLength: Int) {
    guard case .loaded(let entries, let bytes) = outcome else { return }
    precondition(entries.count <= limits.keys, "more keys than the limit")
    precondition(bytes <= limits.bytes, "more bytes than the limit")
    precondition(bytes == cost(entries), "reported cost is not the entries' cost")
    for (key, value) in entries {
        precondition(KVKey.isValid(key[...]), "an invalid key loaded")
        precondition(!value.contains(10), "a value with a newline loaded")
    }
    let again = KVFile.encode(entries)
    precondition(again.count == fileLength, "re-encoding changed the length")
    precondition(KVFile.decode(again) == .success(entries), "re-encoding does not decode to the same table")
}

private func checkEncoder(_ cursor: inout Cursor, limits: KVLimits, chunks: [Int], bufferSize: Int) {
    var entries: [[UInt8]: [UInt8]] = [:]
    while !cursor.isEmpty && entries.count < 512 {
        var key = cursor.take(Int(cursor.u8()) % KVKey.maximumLength + 1).map { $0 == 32 ? 33 : $0 }
        if key.isEmpty { key = [120] }
        let value = cursor.take(Int(cursor.u16()) % 2048).map { $0 == 10 ? 11 : $0 }
        entries[key] = value
    }
    var encoder = KVFileEncoder(entries)
    var file: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: bufferSize)
    while true {
        let count = buffer.withUnsafeMutableBytes { encoder.fill($0) }
        precondition(count <= bufferSize, "the encoder overfilled its buffer")
        if count == 0 { break }
        precondition(count == bufferSize || encoder.isFinished, "a short fill before the end")
        file += buffer[0..<count]
    }
    precondition(file == KVFile.encode(entries), "the buffer size changed the bytes")
    let fits = entries.count <= limits.keys && cost(entries) <= limits.bytes
    for fileSize in [nil, file.count] {
        let outcome = file.withUnsafeBytes { decode($0, chunks: chunks, limits: limits, fileSize: fileSize) }
        if fits {
            precondition(outcome == .loaded(entries, bytes: cost(entries)), "an encoded table did not decode")
        } else {
            guard case .refused = outcome else { preconditionFailure("a table over the limits was not refused") }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var cursor = Cursor(bytes: UnsafeRawBufferPointer(start: data, count: size))
    let mode = cursor.u8()
    let limits = KVLimits(keys: Int(cursor.u16()), bytes: Int(cursor.u32()))
    let sizeChoice = cursor.u8() % 3
    let chosenSize = Int(cursor.u32())
    var chunks: [Int] = []
    for _ in 0..<8 { chunks.append(max(1, Int(cursor.u16()))) }
    if mode & 1 != 0 {
        checkEncoder(&cursor, limits: limits, chunks: chunks, bufferSize: max(1, Int(mode >> 3) * 97 % 20_000))
        return 0
    }
    var file = cursor.take(size)
    if mode & 2 != 0 {
        for (index, byte) in Array("TOROKV1\n".utf8).enumerated() where index < file.count { file[index] = byte }
    }
    if mode & 4 != 0 && file.count >= 4 {
        let crc = CRC32.checksum(file[0..<file.count - 4])
        for index in 0..<4 { file[file.count - 4 + index] = UInt8(truncatingIfNeeded: crc >> UInt32(8 * index)) }
    }
    let fileSize: Int? = sizeChoice == 0 ? nil : sizeChoice == 1 ? file.count : chosenSize
    file.withUnsafeBytes { raw in
        let chunked = decode(raw, chunks: chunks, limits: limits, fileSize: fileSize)
        let whole = decode(raw, chunks: [max(1, raw.count)], limits: limits, fileSize: fileSize)
        precondition(chunked == whole, "the outcome depends on the chunking")
        checkLoaded(chunked, limits: limits, fileLength: raw.count)
    }
    return 0
}

fuzzMain(fuzz)
