// libFuzzer target: FUSE reply checking (`FUSEReply` and `FUSEDirectory`) against a server
// that writes anything at all into the reply buffer (fuse.h 7.31; STYLE principle 7).
//
// The input: byte 0 picks the body decoder (low 4 bits) and, with bit 4 set, rewrites the
// out header's len and unique to the true values so most inputs reach the body checks.
// Byte 1 scales the `requested` size for READ/WRITE/READDIR. The rest is the reply.
// Then the same bytes drive the chunk planner and a LOOKUP encode.
// Invariants (a violation traps, which libFuzzer reports):
//   * an accepted reply has len == bytes received >= 16, the request's unique, error 0;
//     a `.remote(e)` has 1 <= e <= 511 and no body;
//   * an accepted body has the opcode's size (READ/WRITE within `requested`); an entry
//     re-encodes to the same bytes; INIT is 7.31+ with 4096 <= maxWrite <= the cap;
//   * every record of an accepted directory stream lies inside it, has a valid name, and
//     the records tile the stream; re-encoding them yields a stream that decodes the same;
//   * chunk plans cover the range exactly, in order, each 1...maximum bytes.
// Imports the real modules: Wire (the FUSE format) and Drivers (the chunk plan).
@testable import Drivers
@testable import FSDriver
import FuzzSupport
@testable import Wire

private let unique: UInt64 = 0x0123_4567_89AB_CDEF

private func checkHeader(_ bytes: UnsafeRawBufferPointer) -> FUSEReply? {
    do throws(FUSEError) {
        let reply = try FUSEReply(bytes, unique: unique)
        precondition(bytes.count >= 16, "accepted a short reply")
        precondition(Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))) == bytes.count, "accepted a len mismatch")
        precondition(bytes.loadUnaligned(fromByteOffset: 4, as: Int32.self) == 0, "accepted an error")
        precondition(bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self) == unique, "accepted a foreign unique")
        precondition(reply.body.count == bytes.count - 16, "body size")
        return reply
    } catch {
        if case .remote(let errno) = error {
            precondition(errno >= 1 && errno <= 511 && bytes.count == 16, "bad remote error accepted")
        }
        return nil
    }
}

private func same(_ a: FUSEDirectoryEntry, _ b: FUSEDirectoryEntry) -> Bool {
    a.ino == b.ino && a.offset == b.offset && a.type == b.type && a.entry == b.entry && a.name.elementsEqual(b.name)
}

private func checkDirectory(_ directory: FUSEDirectory) {
    var tiled = 0
    var records: [FUSEDirectoryEntry] = []
    for record in directory {
        let start = directory.bytes.baseAddress!
        let nameStart = record.name.baseAddress! - start
        precondition(nameStart >= 0 && nameStart + record.name.count <= directory.bytes.count, "name outside the stream")
        precondition(record.name.count >= 1 && record.name.count <= 1024, "name length")
        precondition(!record.name.contains(0) && !record.name.contains(UInt8(ascii: "/")), "bad name byte")
        tiled += (nameStart - tiled + record.name.count + 7) & ~7
        records.append(record)
    }
    precondition(tiled == directory.bytes.count, "records do not tile the stream")
    var copy = [UInt8](repeating: 0, count: directory.bytes.count)
    copy.withUnsafeMutableBytes { raw in
        var writer = FUSEDirectoryWriter(raw)
        for record in records {
            precondition(writer.append(ino: record.ino, offset: record.offset, type: record.type, name: record.name,
                                       entry: record.entry), "re-encode failed")
        }
        precondition(writer.count == directory.bytes.count, "re-encoded size")
        let again = FUSEDirectory(UnsafeRawBufferPointer(raw), plus: directory.plus)
        do throws(FUSEError) { try again.validate() } catch { preconditionFailure("re-encoded stream refused") }
        var index = 0
        for record in again {
            precondition(same(record, records[index]), "re-decoded record differs")
            index += 1
        }
        precondition(index == records.count, "re-decoded count")
    }
}

private func checkBody(_ reply: FUSEReply, selector: UInt8, requested: UInt32) {
    let body = reply.body
    do throws(FUSEError) {
        switch selector & 0x0F {
        case 0: try reply.empty(); precondition(body.isEmpty)
        case 1:
            let entry = try reply.entry()
            var copy = [UInt8](repeating: 0, count: FUSEEntry.size)
            copy.withUnsafeMutableBytes { entry.encode(into: $0) }
            precondition(copy.elementsEqual(body), "entry does not round-trip")
        case 2: _ = try reply.attributes(); precondition(body.count == 104)
        case 3: _ = try reply.open(); precondition(body.count == 16)
        case 4: _ = try reply.create(); precondition(body.count == 144)
        case 5: _ = try reply.statfs(); precondition(body.count == 80)
        case 6:
            let written = try reply.write(requested: requested)
            precondition(written <= requested, "wrote more than asked")
        case 7:
            let read = try reply.read(requested: requested)
            precondition(read.count <= Int(requested), "read more than asked")
        case 8:
            let cap = 4096 + requested
            let out = try reply.initialize(maximumWrite: cap)
            precondition(out.major == 7 && out.minor >= 31 && out.maxWrite >= 4096 && out.maxWrite <= cap, "init")
        case 9, 10:
            let directory = try reply.directory(requested: requested, plus: selector & 0x0F == 10)
            precondition(body.count <= Int(requested))
            checkDirectory(directory)
        default:
            // An unchecked walk of the raw body must stop, not trap.
            _ = FUSEDirectory(body, plus: selector & 1 == 0).count
        }
    } catch {
        return
    }
}

private func checkChunks(_ bytes: UnsafeRawBufferPointer) {
    guard bytes.count >= 6 else { return }
    let count = Int(bytes[0]) << 8 | Int(bytes[1])
    let offset = UInt64(bytes[2]) << 56 | UInt64(bytes[3])
    let maximum = UInt32(bytes[4]) << 4 | UInt32(bytes[5] & 0x0F)
    guard let chunks = FUSEChunks(count: count, fileOffset: offset, maximum: maximum) else {
        precondition(maximum == 0 || offset > UInt64(Int64.max) - UInt64(count), "plan refused")
        return
    }
    var covered = 0
    var pieces = 0
    for chunk in chunks {
        precondition(chunk.bufferOffset == covered && chunk.fileOffset == offset + UInt64(covered), "gap")
        precondition(chunk.size >= 1 && chunk.size <= maximum, "chunk size")
        covered += Int(chunk.size)
        pieces += 1
    }
    precondition(covered == count && pieces == chunks.chunkCount, "coverage")
}

private func checkLookup(_ name: UnsafeRawBufferPointer) {
    var buffer = [UInt8](repeating: 0, count: 1200)
    let name = Array(name.prefix(1100))
    buffer.withUnsafeMutableBytes { raw in
        do throws(FUSEError) {
            let count = try FUSERequest.lookup(name: name).encode(into: raw, header: FUSERequestHeader(unique: unique, nodeID: 1))
            precondition(count == 40 + name.count + 1 && raw[count - 1] == 0, "lookup size")
            precondition(raw[40 ..< count - 1].elementsEqual(name), "lookup name")
            precondition(!name.isEmpty && name.count <= 1024 && !name.contains(0) && !name.contains(UInt8(ascii: "/")))
        } catch {
            precondition(error == .invalidName, "lookup error")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    guard size >= 2 else { return 0 }
    let selector = input[0]
    let requested = UInt32(input[1]) * 97
    var bytes = Array(input[2...])
    if selector & 0x10 != 0 && bytes.count >= 16 {
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(raw.count).littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: unique.littleEndian, toByteOffset: 8, as: UInt64.self)
        }
    }
    bytes.withUnsafeBytes { raw in
        if let reply = checkHeader(raw) { checkBody(reply, selector: selector, requested: requested) }
        checkChunks(raw)
        checkLookup(raw)
    }
    return 0
}

fuzzMain(fuzz)
