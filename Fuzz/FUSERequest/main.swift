// libFuzzer target: FUSE request decoding (`FUSEIncomingRequest`) on the host back-end, fed
// requests an untrusted guest wrote (fuse.h 7.31; STYLE principle 7), and the guest encoder
// (`FUSERequest.encode`, `encodeWrite`) checked against it.
//
// The input: byte 0 is the mode. Bit 0 clear: the rest is a raw request; with bit 1 set the
// header's len is first patched to the bytes given minus (bits 2-4) so most inputs reach the
// body decoders (bits 2-4 nonzero leave padding after len). Bit 0 set: the rest chooses a
// `FUSERequest` field by field (a cursor reading zeros once the input runs out), which is
// encoded, then decoded.
// Invariants (a violation traps, which libFuzzer reports):
//   * decoding never traps; `peekUnique` returns the header's unique and opcode exactly when
//     16 bytes are there;
//   * an accepted request had 40 <= len <= the bytes given, its header fields are the bytes
//     at their offsets, and decoding just the first len bytes gives the same request;
//   * every name of an accepted request lies in the body inside len, passes
//     `FUSE.isValidName` and is followed by its NUL; WRITE data is exactly `size` bytes at
//     body offset 40 inside len; BATCH_FORGET entries are `count` * 16 bytes at offset 8;
//   * an accepted request of an opcode the guest encoder produces re-encodes (same header)
//     into at most len bytes, and that encoding decodes to the same header and operation;
//   * from fuzz-chosen fields: `encode` fails with `.invalidName` exactly when a name is
//     invalid, else `.bufferTooSmall` exactly when the buffer (or len's 32 bits) is too
//     small; otherwise it writes `encodedSize` bytes with len = those bytes (plus WRITE's
//     data) and the decoder gives back the same header and operation (FLUSH's lock owner,
//     which the decoder does not report, aside), with or without trailing bytes; a WRITE
//     encoded without its data is refused as `.truncated` unless its size is 0.
// Imports the real module: Wire (the FUSE request codec).
import FuzzSupport
@testable import Wire

/// An operation as plain values (names and WRITE data copied out), to compare decodes.
private struct Canon: Equatable {
    var tag: Int
    var numbers: [UInt64] = []
    var blobs: [[UInt8]] = []
}

private func canon(_ operation: FUSEOperation) -> Canon {
    switch operation {
    case .initialize(let major, let minor, let readahead, let flags):
        return Canon(tag: 1, numbers: [UInt64(major), UInt64(minor), UInt64(readahead), UInt64(flags)])
    case .destroy: return Canon(tag: 2)
    case .lookup(let name): return Canon(tag: 3, blobs: [Array(name)])
    case .forget(let lookups): return Canon(tag: 4, numbers: [lookups])
    case .batchForget(let entries, let count):
        var numbers = [UInt64(count)]
        for index in 0 ..< count {
            let entry = FUSEIncomingRequest.forgetEntry(entries, index)
            numbers.append(entry.nodeID)
            numbers.append(entry.lookups)
        }
        return Canon(tag: 5, numbers: numbers)
    case .getattr(let handle): return Canon(tag: 6, numbers: handle.map { [1, $0] } ?? [0])
    case .setattr(let a):
        return Canon(tag: 7, numbers: [UInt64(a.valid), a.fileHandle, a.size, a.lockOwner, a.atime, a.mtime, a.ctime,
                                       UInt64(a.atimensec), UInt64(a.mtimensec), UInt64(a.ctimensec), UInt64(a.mode),
                                       UInt64(a.uid), UInt64(a.gid)])
    case .open(let flags): return Canon(tag: 8, numbers: [UInt64(flags)])
    case .opendir(let flags): return Canon(tag: 9, numbers: [UInt64(flags)])
    case .read(let fh, let offset, let size): return Canon(tag: 10, numbers: [fh, offset, UInt64(size)])
    case .readdir(let fh, let offset, let size): return Canon(tag: 11, numbers: [fh, offset, UInt64(size)])
    case .readdirplus(let fh, let offset, let size): return Canon(tag: 12, numbers: [fh, offset, UInt64(size)])
    case .write(let fh, let offset, let data): return Canon(tag: 13, numbers: [fh, offset], blobs: [Array(data)])
    case .flush(let fh): return Canon(tag: 14, numbers: [fh])
    case .fsync(let fh, let flags): return Canon(tag: 15, numbers: [fh, UInt64(flags)])
    case .fsyncdir(let fh, let flags): return Canon(tag: 16, numbers: [fh, UInt64(flags)])
    case .release(let fh, let flags): return Canon(tag: 17, numbers: [fh, UInt64(flags)])
    case .releasedir(let fh, let flags): return Canon(tag: 18, numbers: [fh, UInt64(flags)])
    case .statfs: return Canon(tag: 19)
    case .create(let name, let flags, let mode, let umask):
        return Canon(tag: 20, numbers: [UInt64(flags), UInt64(mode), UInt64(umask)], blobs: [Array(name)])
    case .mkdir(let name, let mode, let umask):
        return Canon(tag: 21, numbers: [UInt64(mode), UInt64(umask)], blobs: [Array(name)])
    case .unlink(let name): return Canon(tag: 22, blobs: [Array(name)])
    case .rmdir(let name): return Canon(tag: 23, blobs: [Array(name)])
    case .rename(let name, let newDirectory, let newName, let flags):
        return Canon(tag: 24, numbers: [newDirectory, UInt64(flags)], blobs: [Array(name), Array(newName)])
    case .access(let mask): return Canon(tag: 25, numbers: [UInt64(mask)])
    case .refused(let opcode): return Canon(tag: 26, numbers: [UInt64(opcode)])
    case .unknown(let opcode): return Canon(tag: 27, numbers: [UInt64(opcode)])
    }
}

/// What the decoder must give back for `request` encoded (with `data` after a WRITE).
private func expected(_ request: FUSERequest, data: [UInt8]) -> Canon {
    switch request {
    case .lookup(let name): return Canon(tag: 3, blobs: [name])
    case .forget(let lookups): return Canon(tag: 4, numbers: [lookups])
    case .getattr(let handle): return Canon(tag: 6, numbers: handle.map { [1, $0] } ?? [0])
    case .setattr(let a):
        return Canon(tag: 7, numbers: [UInt64(a.valid), a.fileHandle, a.size, a.lockOwner, a.atime, a.mtime, a.ctime,
                                       UInt64(a.atimensec), UInt64(a.mtimensec), UInt64(a.ctimensec), UInt64(a.mode),
                                       UInt64(a.uid), UInt64(a.gid)])
    case .mkdir(let name, let mode, let umask):
        return Canon(tag: 21, numbers: [UInt64(mode), UInt64(umask)], blobs: [name])
    case .unlink(let name): return Canon(tag: 22, blobs: [name])
    case .rmdir(let name): return Canon(tag: 23, blobs: [name])
    case .rename(let name, let newDirectory, let newName):
        return Canon(tag: 24, numbers: [newDirectory, 0], blobs: [name, newName])
    case .rename2(let name, let newDirectory, let newName, let flags):
        return Canon(tag: 24, numbers: [newDirectory, UInt64(flags)], blobs: [name, newName])
    case .open(let flags): return Canon(tag: 8, numbers: [UInt64(flags)])
    case .read(let fh, let offset, let size): return Canon(tag: 10, numbers: [fh, offset, UInt64(size)])
    case .write(let fh, let offset, _): return Canon(tag: 13, numbers: [fh, offset], blobs: [data])
    case .statfs: return Canon(tag: 19)
    case .release(let fh, let flags): return Canon(tag: 17, numbers: [fh, UInt64(flags)])
    case .flush(let fh, _): return Canon(tag: 14, numbers: [fh])
    case .initialize(let readahead, let flags):
        return Canon(tag: 1, numbers: [UInt64(FUSE.major), UInt64(FUSE.minor), UInt64(readahead), UInt64(flags)])
    case .opendir(let flags): return Canon(tag: 9, numbers: [UInt64(flags)])
    case .readdir(let fh, let offset, let size): return Canon(tag: 11, numbers: [fh, offset, UInt64(size)])
    case .releasedir(let fh, let flags): return Canon(tag: 18, numbers: [fh, UInt64(flags)])
    case .create(let name, let flags, let mode, let umask):
        return Canon(tag: 20, numbers: [UInt64(flags), UInt64(mode), UInt64(umask)], blobs: [name])
    case .readdirplus(let fh, let offset, let size): return Canon(tag: 12, numbers: [fh, offset, UInt64(size)])
    }
}

/// The `FUSERequest` that encodes `operation` (sent with `opcode`), or nil for what the
/// guest never sends. WRITE's data travels separately (`encodeWrite`).
private func request(for operation: FUSEOperation, opcode: UInt32) -> FUSERequest? {
    switch operation {
    case .initialize(_, _, let readahead, let flags): return .initialize(maxReadahead: readahead, flags: flags)
    case .lookup(let name): return .lookup(name: Array(name))
    case .forget(let lookups): return .forget(lookups: lookups)
    case .getattr(let handle): return .getattr(fileHandle: handle)
    case .setattr(let attributes): return .setattr(attributes)
    case .open(let flags): return .open(flags: flags)
    case .opendir(let flags): return .opendir(flags: flags)
    case .read(let fh, let offset, let size): return .read(fileHandle: fh, offset: offset, size: size)
    case .readdir(let fh, let offset, let size): return .readdir(fileHandle: fh, offset: offset, size: size)
    case .readdirplus(let fh, let offset, let size): return .readdirplus(fileHandle: fh, offset: offset, size: size)
    case .write(let fh, let offset, let data): return .write(fileHandle: fh, offset: offset, size: UInt32(data.count))
    case .flush(let fh): return .flush(fileHandle: fh, lockOwner: 0)
    case .release(let fh, let flags): return .release(fileHandle: fh, flags: flags)
    case .releasedir(let fh, let flags): return .releasedir(fileHandle: fh, flags: flags)
    case .statfs: return .statfs
    case .create(let name, let flags, let mode, let umask):
        return .create(name: Array(name), flags: flags, mode: mode, umask: umask)
    case .mkdir(let name, let mode, let umask): return .mkdir(name: Array(name), mode: mode, umask: umask)
    case .unlink(let name): return .unlink(name: Array(name))
    case .rmdir(let name): return .rmdir(name: Array(name))
    case .rename(let name, let newDirectory, let newName, let flags):
        if opcode == FUSEOpcode.rename.rawValue {
            precondition(flags == 0, "RENAME decoded with flags")
            return .rename(name: Array(name), newDirectory: newDirectory, newName: Array(newName))
        }
        return .rename2(name: Array(name), newDirectory: newDirectory, newName: Array(newName), flags: flags)
    case .destroy, .batchForget, .fsync, .fsyncdir, .access, .refused, .unknown:
        return nil
    }
}

private func load32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}

private func load64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
    UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
}

private func decode(_ bytes: UnsafeRawBufferPointer) -> Result<FUSEIncomingRequest, FUSEError> {
    do throws(FUSEError) {
        return .success(try FUSEIncomingRequest(bytes))
    } catch {
        return .failure(error)
    }
}

private func sameHeader(_ a: FUSEIncomingRequest, _ b: FUSEIncomingRequest) -> Bool {
    a.opcode == b.opcode && a.unique == b.unique && a.nodeID == b.nodeID && a.uid == b.uid && a.gid == b.gid && a.pid == b.pid
}

/// `name` lies in the body (after `from`) inside `length`, is valid and NUL-terminated;
/// returns the offset after the NUL.
private func checkName(_ name: UnsafeRawBufferPointer, in bytes: UnsafeRawBufferPointer, from: Int, length: Int) -> Int {
    precondition(FUSE.isValidName(name), "accepted an invalid name")
    let start = name.baseAddress! - bytes.baseAddress!
    precondition(start >= from && start + name.count < length, "name outside the request")
    precondition(bytes[start + name.count] == 0, "name not NUL-terminated")
    return start + name.count + 1
}

/// Where the body's fields are and that they stay inside `length`.
private func checkBounds(_ decoded: FUSEIncomingRequest, _ bytes: UnsafeRawBufferPointer, length: Int) {
    let body = FUSE.inHeaderSize
    func fixed(_ size: Int) { precondition(body + size <= length, "fixed body beyond len") }
    switch decoded.operation {
    case .initialize: fixed(16)
    case .lookup(let name), .unlink(let name), .rmdir(let name): _ = checkName(name, in: bytes, from: body, length: length)
    case .forget: fixed(8)
    case .batchForget(let entries, let count):
        fixed(8)
        precondition(count == Int(load32(bytes, body)), "BATCH_FORGET count")
        precondition(entries.count == count * 16 && entries.baseAddress! - bytes.baseAddress! == body + 8, "entries place")
        precondition(body + 8 + entries.count <= length, "entries beyond len")
    case .getattr(let handle):
        fixed(16)
        precondition((handle != nil) == (load32(bytes, body) & 1 != 0), "GETATTR_FH flag")
        if let handle { precondition(handle == load64(bytes, body + 8), "GETATTR fh") }
    case .setattr: fixed(FUSESetAttributes.size)
    case .open, .opendir, .access: fixed(8)
    case .read, .readdir, .readdirplus: fixed(40)
    case .write(_, _, let data):
        fixed(40)
        let start = data.baseAddress.map { $0 - bytes.baseAddress! } ?? body + 40
        precondition(data.count == Int(load32(bytes, body + 16)), "WRITE data size")
        precondition(start == body + 40 && start + data.count <= length, "WRITE data beyond len")
    case .flush, .release, .releasedir: fixed(24)
    case .fsync, .fsyncdir: fixed(16)
    case .create(let name, _, _, _):
        fixed(16)
        _ = checkName(name, in: bytes, from: body + 16, length: length)
    case .mkdir(let name, _, _):
        fixed(8)
        _ = checkName(name, in: bytes, from: body + 8, length: length)
    case .rename(let name, _, let newName, _):
        let size = decoded.opcode == FUSEOpcode.rename.rawValue ? 8 : 16
        fixed(size)
        let next = checkName(name, in: bytes, from: body + size, length: length)
        precondition(newName.baseAddress! - bytes.baseAddress! == next, "second name not right after the first")
        _ = checkName(newName, in: bytes, from: next, length: length)
    case .destroy, .statfs, .refused, .unknown: break
    }
}

/// Raw bytes from the guest.
private func checkDecode(_ bytes: UnsafeRawBufferPointer) {
    let peek = FUSEIncomingRequest.peekUnique(bytes)
    if bytes.count >= 16 {
        precondition(peek != nil && peek!.unique == load64(bytes, 8) && peek!.opcode == load32(bytes, 4), "peekUnique")
    } else {
        precondition(peek == nil, "peekUnique without a header")
    }
    guard case .success(let decoded) = decode(bytes) else { return }
    precondition(bytes.count >= FUSE.inHeaderSize, "accepted a short request")
    let length = Int(load32(bytes, 0))
    precondition(length >= FUSE.inHeaderSize && length <= bytes.count, "accepted a len beyond the bytes")
    precondition(decoded.opcode == load32(bytes, 4) && decoded.unique == load64(bytes, 8) && decoded.nodeID == load64(bytes, 16)
                 && decoded.uid == load32(bytes, 24) && decoded.gid == load32(bytes, 28) && decoded.pid == load32(bytes, 32),
                 "header fields")
    checkBounds(decoded, bytes, length: length)
    let original = canon(decoded.operation)

    // Bytes after len are ignored.
    guard case .success(let prefix) = decode(UnsafeRawBufferPointer(rebasing: bytes[..<length])) else {
        preconditionFailure("the first len bytes refused")
    }
    precondition(sameHeader(prefix, decoded) && canon(prefix.operation) == original, "padding changed the request")

    // Re-encode what the guest could have sent.
    guard let request = request(for: decoded.operation, opcode: decoded.opcode) else { return }
    var data: [UInt8] = []
    if case .write(_, _, let bytes) = decoded.operation { data = Array(bytes) }
    var expect = expected(request, data: data)
    if case .initialize(let major, let minor, _, _) = decoded.operation, major != FUSE.major || minor != FUSE.minor {
        // The guest always announces 7.31.
        expect.numbers[0] = UInt64(major); expect.numbers[1] = UInt64(minor)
    }
    precondition(expect == original, "request(for:) is not faithful")
    let header = FUSERequestHeader(unique: decoded.unique, nodeID: decoded.nodeID, uid: decoded.uid, gid: decoded.gid, pid: decoded.pid)
    var buffer = [UInt8](repeating: 0xA5, count: length)
    buffer.withUnsafeMutableBytes { raw in
        let count: Int
        do throws(FUSEError) {
            if case .write(let fh, let offset, let data) = decoded.operation {
                count = try FUSERequest.encodeWrite(into: raw, header: header, fileHandle: fh, offset: offset, data: data)
            } else {
                count = try request.encode(into: raw, header: header)
            }
        } catch {
            preconditionFailure("a decoded request does not re-encode into its own len")
        }
        precondition(count <= length && Int(load32(UnsafeRawBufferPointer(raw), 0)) == count, "re-encoded len")
        guard case .success(let again) = decode(UnsafeRawBufferPointer(rebasing: raw[..<count])) else {
            preconditionFailure("re-encoded request refused")
        }
        precondition(sameHeader(again, decoded), "re-encoded header differs")
        precondition(canon(again.operation) == expected(request, data: data), "re-encoded request decodes differently")
    }
}

/// Names drawn from the input.
extension Cursor {
    /// A name: a 16-bit length (up to 1100) and that many bytes; bit 15 of the length makes
    /// it valid (NUL and '/' replaced, at least one byte, at most 1024).
    mutating func name() -> [UInt8] {
        let word = u16()
        var name = take(Int(word & 0x7FFF) % 1101)
        if word & 0x8000 != 0 {
            name = name.prefix(FUSE.nameMaximum).map { $0 == 0 || $0 == UInt8(ascii: "/") ? UInt8(ascii: "x") : $0 }
            if name.isEmpty { name = [UInt8(ascii: "a")] }
        }
        return name
    }
}

/// A request from fuzz-chosen fields, encoded and decoded.
private func checkRoundTrip(_ input: UnsafeRawBufferPointer) {
    var c = Cursor(bytes: input)
    let header = FUSERequestHeader(unique: c.u64(), nodeID: c.u64(), uid: c.u32(), gid: c.u32(), pid: c.u32())
    let selector = c.u8()
    let slack = c.u8()
    var data: [UInt8] = []
    var withData = false
    let request: FUSERequest
    switch selector % 22 {
    case 0: request = .lookup(name: c.name())
    case 1: request = .forget(lookups: c.u64())
    case 2: request = .getattr(fileHandle: c.u8() & 1 == 0 ? nil : c.u64())
    case 3:
        var a = FUSESetAttributes()
        a.valid = c.u32(); a.fileHandle = c.u64(); a.size = c.u64(); a.lockOwner = c.u64()
        a.atime = c.u64(); a.mtime = c.u64(); a.ctime = c.u64()
        a.atimensec = c.u32(); a.mtimensec = c.u32(); a.ctimensec = c.u32()
        a.mode = c.u32(); a.uid = c.u32(); a.gid = c.u32()
        request = .setattr(a)
    case 4: request = .mkdir(name: c.name(), mode: c.u32(), umask: c.u32())
    case 5: request = .unlink(name: c.name())
    case 6: request = .rmdir(name: c.name())
    case 7: request = .rename(name: c.name(), newDirectory: c.u64(), newName: c.name())
    case 8: request = .rename2(name: c.name(), newDirectory: c.u64(), newName: c.name(), flags: c.u32())
    case 9: request = .open(flags: c.u32())
    case 10: request = .read(fileHandle: c.u64(), offset: c.u64(), size: c.u32())
    case 11:
        // WRITE's header alone, size fuzz-chosen: its len counts data that is not there.
        request = .write(fileHandle: c.u64(), offset: c.u64(), size: c.u8() & 1 == 0 ? UInt32(c.u8()) : c.u32())
    case 12:
        let fh = c.u64(), offset = c.u64()
        data = c.take(Int(c.u16()))
        withData = true
        request = .write(fileHandle: fh, offset: offset, size: UInt32(data.count))
    case 13: request = .statfs
    case 14: request = .release(fileHandle: c.u64(), flags: c.u32())
    case 15: request = .flush(fileHandle: c.u64(), lockOwner: c.u64())
    case 16: request = .initialize(maxReadahead: c.u32(), flags: c.u32())
    case 17: request = .opendir(flags: c.u32())
    case 18: request = .readdir(fileHandle: c.u64(), offset: c.u64(), size: c.u32())
    case 19: request = .releasedir(fileHandle: c.u64(), flags: c.u32())
    case 20: request = .create(name: c.name(), flags: c.u32(), mode: c.u32(), umask: c.u32())
    default: request = .readdirplus(fileHandle: c.u64(), offset: c.u64(), size: c.u32())
    }

    let (first, second) = request.names
    let namesValid = [first, second].allSatisfy { name in name.map { $0.withUnsafeBytes { FUSE.isValidName($0) } } ?? true }
    let size = request.encodedSize + (withData ? data.count : 0)
    var lengthFits = true
    if case .write(_, _, let dataSize) = request { lengthFits = request.encodedSize + Int(dataSize) <= Int(UInt32.max) }
    let capacity = slack & 0x80 != 0 ? max(0, size - Int(slack & 0x7F)) : size + Int(slack & 0x7F)
    var buffer = [UInt8](repeating: 0xA5, count: capacity)
    buffer.withUnsafeMutableBytes { raw in
        let count: Int
        do throws(FUSEError) {
            if withData {
                guard case .write(let fh, let offset, _) = request else { preconditionFailure() }
                count = try data.withUnsafeBytes { bytes in
                    Result { () throws(FUSEError) -> Int in
                        try FUSERequest.encodeWrite(into: raw, header: header, fileHandle: fh, offset: offset, data: bytes)
                    }
                }.get()
            } else {
                count = try request.encode(into: raw, header: header)
            }
        } catch {
            if !namesValid {
                precondition(error == .invalidName, "invalid name not refused as such")
            } else {
                precondition(error == .bufferTooSmall && (capacity < size || !lengthFits), "encode refused a fitting request")
            }
            return
        }
        precondition(namesValid && capacity >= size && lengthFits, "encode accepted what it must refuse")
        precondition(count == size, "encoded size")
        let written = UnsafeRawBufferPointer(raw)
        var length = count
        if !withData, case .write(_, _, let dataSize) = request { length += Int(dataSize) }
        precondition(Int(load32(written, 0)) == length && load32(written, 4) == request.opcode.rawValue, "encoded len/opcode")

        let whole = decode(UnsafeRawBufferPointer(rebasing: written[..<count]))
        if length != count {
            guard case .failure(let error) = whole, error == .truncated else {
                preconditionFailure("a WRITE without its data was accepted")
            }
            return
        }
        let want = expected(request, data: data)
        for result in [whole, decode(written)] {
            guard case .success(let decoded) = result else { preconditionFailure("encoded request refused") }
            precondition(decoded.opcode == request.opcode.rawValue && decoded.unique == header.unique
                         && decoded.nodeID == header.nodeID && decoded.uid == header.uid && decoded.gid == header.gid
                         && decoded.pid == header.pid, "header does not round-trip")
            precondition(canon(decoded.operation) == want, "request does not round-trip")
            checkBounds(decoded, written, length: length)
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 1 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let mode = input[0]
    if mode & 1 != 0 {
        checkRoundTrip(UnsafeRawBufferPointer(rebasing: input[1...]))
        return 0
    }
    var bytes = Array(input[1...])
    if mode & 2 != 0 && bytes.count >= 4 {
        let padding = Int(mode >> 2 & 7)
        let length = UInt32(max(0, bytes.count - padding))
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: length.littleEndian, toByteOffset: 0, as: UInt32.self) }
    }
    bytes.withUnsafeBytes { checkDecode($0) }
    return 0
}

fuzzMain(fuzz)
