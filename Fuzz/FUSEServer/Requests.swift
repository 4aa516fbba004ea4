// The FUSEServer fuzz target's guest: builds each request from the input (main.swift's
// header gives the format) and checks each reply against what was sent, remembering the
// node ids and handles the server handed out so later requests can use them.
import FuzzSupport
import Glibc
@testable import VhostUser
@testable import Wire

/// One request as sent: its bytes' length, and what the check needs.
struct Sent {
    var count: Int
    /// The Core request it encodes, when it was encoded by Core (its reply is decoded).
    var request: FUSERequest?
    /// For WRITE: the data bytes sent.
    var dataCount = 0
}

struct Session {
    let server: FUSEServer
    var unique: UInt64 = 0
    var nodes: [UInt64] = [FUSE.rootID]
    var handles: [UInt64] = []

    init(server: FUSEServer) { self.server = server }

    static let names: [[UInt8]] = ["file", "dir", "inner", "fifo", "link-in", "link-abs", "link-climb", "link-dir",
                                   "link-up", "new", "sub", "x", "..", "."].map { Array($0.utf8) }
    static let flags: [Int32] = [O_RDONLY, O_WRONLY, O_RDWR, O_WRONLY | O_TRUNC, O_RDWR | O_APPEND, O_WRONLY | O_EXCL,
                                 O_RDONLY | O_TRUNC, O_RDWR | O_EXCL | O_TRUNC]
    static let serverOnly: [UInt32] = [FUSEServerOpcode.symlink, FUSEServerOpcode.mknod, FUSEServerOpcode.link,
                                       FUSEServerOpcode.fsync, FUSEServerOpcode.fsyncdir, FUSEServerOpcode.access,
                                       FUSEServerOpcode.destroy, FUSEServerOpcode.batchForget, 5 /* READLINK */, 4242]

    static func remember(_ value: UInt64, in list: inout [UInt64]) {
        guard value != 0, !list.contains(value) else { return }
        if list.count >= 64 { list.removeFirst() }
        list.append(value)
    }

    func node(_ input: inout Cursor) -> UInt64 {
        let b = input.u8()
        if b < 0xF8 { return nodes[Int(b) % nodes.count] }
        return b == 0xFF ? input.u64() : UInt64(b & 7)
    }

    func handle(_ input: inout Cursor) -> UInt64 {
        let b = input.u8()
        if b < 0xF8 && !handles.isEmpty { return handles[Int(b) % handles.count] }
        return b == 0xFF ? input.u64() : UInt64(b & 7)
    }

    func name(_ input: inout Cursor) -> [UInt8] {
        let b = input.u8()
        if b < 0xF0 { return Session.names[Int(b) % Session.names.count] }
        return input.take(1 + Int(b & 15))
    }

    func openFlags(_ input: inout Cursor) -> UInt32 {
        let b = input.u8()
        if b < 0xF0 { return UInt32(bitPattern: Session.flags[Int(b) % Session.flags.count]) }
        return input.u32()
    }

    func mode(_ input: inout Cursor) -> UInt32 { UInt32(input.u16()) }

    func small(_ input: inout Cursor) -> UInt64 {
        let b = input.u8()
        return b == 0xFF ? input.u64() : UInt64(b) * 100
    }

    func owner(_ input: inout Cursor, _ own: UInt32) -> UInt32 {
        switch input.u8() & 3 {
        case 0: return own
        case 1: return 0
        case 2: return 12345
        default: return input.u32()
        }
    }

    func attributes(_ input: inout Cursor) -> FUSESetAttributes {
        var a = FUSESetAttributes()
        a.valid = UInt32(input.u16()) & 0x1FF
        a.mode = mode(&input)
        a.uid = owner(&input, geteuid())
        a.gid = owner(&input, getegid())
        a.size = small(&input)
        a.fileHandle = handle(&input)
        a.atime = UInt64(input.u32())
        a.mtime = UInt64(input.u32())
        return a
    }

    /// The next request, written at the start of `buffer`.
    mutating func next(_ input: inout Cursor, into buffer: inout [UInt8]) -> Sent {
        unique += 1
        let control = input.u8()
        let target = node(&input)
        let request: FUSERequest
        var data: [UInt8] = []
        switch control % 24 {
        case 0, 23: request = .lookup(name: name(&input))
        case 1: request = .forget(lookups: UInt64(input.u8() & 3))
        case 2: request = .getattr(fileHandle: input.u8() & 1 == 0 ? nil : handle(&input))
        case 3: request = .setattr(attributes(&input))
        case 4: request = .mkdir(name: name(&input), mode: mode(&input), umask: UInt32(input.u16()) & 0o777)
        case 5: request = .unlink(name: name(&input))
        case 6: request = .rmdir(name: name(&input))
        case 7: request = .rename(name: name(&input), newDirectory: node(&input), newName: name(&input))
        case 8: request = .rename2(name: name(&input), newDirectory: node(&input), newName: name(&input), flags: UInt32(input.u8() & 7))
        case 9: request = .open(flags: openFlags(&input))
        case 10: request = .read(fileHandle: handle(&input), offset: small(&input), size: UInt32(input.u16()) << 2)
        case 11:
            data = input.take(Int(input.u8()))
            request = .write(fileHandle: handle(&input), offset: small(&input), size: UInt32(data.count))
        case 12: request = .statfs
        case 13: request = .release(fileHandle: handle(&input), flags: 0)
        case 14: request = .flush(fileHandle: handle(&input), lockOwner: 0)
        case 15: request = .opendir(flags: 0)
        case 16: request = .readdir(fileHandle: handle(&input), offset: UInt64(input.u8() & 15), size: UInt32(input.u16()))
        case 17: request = .releasedir(fileHandle: handle(&input), flags: 0)
        case 18: request = .create(name: name(&input), flags: openFlags(&input), mode: mode(&input), umask: UInt32(input.u16()) & 0o777)
        case 19: request = .readdirplus(fileHandle: handle(&input), offset: UInt64(input.u8() & 15), size: UInt32(input.u16()))
        case 20: request = .initialize(maxReadahead: input.u32(), flags: input.u32())
        case 21:
            let opcode = Session.serverOnly[Int(input.u8()) % Session.serverOnly.count]
            return raw(opcode: opcode, node: target, body: input.take(Int(input.u8() & 63)), into: &buffer)
        default:
            // Raw bytes; only len and unique are made right (bit 7 of the control byte: not even len).
            let bytes = input.take(Int(input.u16() & 0x3FF))
            let count = min(bytes.count, buffer.count)
            for i in 0..<count { buffer[i] = bytes[i] }
            buffer.withUnsafeMutableBytes { raw in
                if count >= 16 {
                    if control & 0x80 == 0 { raw.storeBytes(of: UInt32(count).littleEndian, toByteOffset: 0, as: UInt32.self) }
                    raw.storeBytes(of: unique.littleEndian, toByteOffset: 8, as: UInt64.self)
                }
            }
            return Sent(count: count, request: nil)
        }
        let header = FUSERequestHeader(unique: unique, nodeID: target)
        let count: Int? = buffer.withUnsafeMutableBytes { raw in
            if case .write(let fh, let offset, _) = request {
                return data.withUnsafeBytes { bytes -> Int? in
                    try? FUSERequest.encodeWrite(into: raw, header: header, fileHandle: fh, offset: offset, data: bytes)
                }
            }
            return try? request.encode(into: raw, header: header)
        }
        guard let count else {
            // A name Core refuses to encode ('/', NUL, empty, too long): sent as it is.
            return raw(opcode: request.opcode.rawValue, node: target, body: Array(requestNames(request).joined(separator: [0])) + [0],
                       into: &buffer)
        }
        return Sent(count: count, request: request, dataCount: data.count)
    }

    func requestNames(_ request: FUSERequest) -> [[UInt8]] {
        switch request {
        case .lookup(let n), .unlink(let n), .rmdir(let n), .mkdir(let n, _, _), .create(let n, _, _, _): return [n]
        case .rename(let a, _, let b), .rename2(let a, _, let b, _): return [a, b]
        default: return []
        }
    }

    /// A request with a correct header (len, opcode, unique, node) and `body` as it is.
    func raw(opcode: UInt32, node: UInt64, body: [UInt8], into buffer: inout [UInt8]) -> Sent {
        let count = min(FUSE.inHeaderSize + body.count, buffer.count)
        buffer.withUnsafeMutableBytes { raw in
            for i in 0..<FUSE.inHeaderSize { raw[i] = 0 }
            raw.storeBytes(of: UInt32(count).littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: opcode.littleEndian, toByteOffset: 4, as: UInt32.self)
            raw.storeBytes(of: unique.littleEndian, toByteOffset: 8, as: UInt64.self)
            raw.storeBytes(of: node.littleEndian, toByteOffset: 16, as: UInt64.self)
            for i in 0..<(count - FUSE.inHeaderSize) { raw[FUSE.inHeaderSize + i] = body[i] }
        }
        return Sent(count: count, request: nil)
    }

    /// Checks one reply (main.swift's invariants) and remembers what it handed out.
    mutating func check(_ sent: Sent, written: Int?, space: Int, reply: UnsafeRawBufferPointer) {
        let request = requestBytes(sent)
        let peeked = request.withUnsafeBytes { FUSEIncomingRequest.peekUnique($0) }
        let silent = peeked == nil || space < FUSE.outHeaderSize
            || peeked!.opcode == FUSEOpcode.forget.rawValue || peeked!.opcode == FUSEServerOpcode.batchForget
        if silent {
            precondition(written == nil, "a reply where none is due")
            return
        }
        guard let length = written else { preconditionFailure("no reply to opcode \(peeked!.opcode)") }
        precondition(length >= FUSE.outHeaderSize && length <= space, "reply length \(length) for space \(space)")
        let bytes = UnsafeRawBufferPointer(rebasing: reply[..<length])
        precondition(Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))) == length, "len is not the reply's length")
        precondition(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) == peeked!.unique, "unique")
        let error = Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: Int32.self))
        precondition(error == 0 || (error >= -FUSE.errnoMaximum && error <= -1), "error \(error)")
        precondition(error == 0 || length == FUSE.outHeaderSize, "an error with a body")
        guard error == 0 else { return }
        guard let core = sent.request else {
            let op = peeked!.opcode
            if op == FUSEServerOpcode.fsync || op == FUSEServerOpcode.fsyncdir || op == FUSEServerOpcode.access
                || op == FUSEServerOpcode.destroy {
                precondition(length == FUSE.outHeaderSize, "a body for opcode \(op)")
            }
            return
        }
        do throws(FUSEError) {
            let decoded = try FUSEReply(bytes, unique: peeked!.unique)
            switch core {
            case .lookup, .mkdir:
                let entry = try decoded.entry()
                checkAttributes(entry.attributes)
                Session.remember(entry.nodeID, in: &nodes)
            case .create:
                let (entry, open) = try decoded.create()
                checkAttributes(entry.attributes)
                Session.remember(entry.nodeID, in: &nodes)
                Session.remember(open.fileHandle, in: &handles)
            case .getattr, .setattr:
                checkAttributes(try decoded.attributes().attributes)
            case .open, .opendir:
                Session.remember(try decoded.open().fileHandle, in: &handles)
            case .read(_, _, let size):
                _ = try decoded.read(requested: size)
            case .write:
                _ = try decoded.write(requested: UInt32(sent.dataCount))
            case .readdir(_, _, let size), .readdirplus(_, _, let size):
                var plus = false
                if case .readdirplus = core { plus = true }
                for record in try decoded.directory(requested: size, plus: plus) {
                    precondition(FUSE.isValidName(record.name), "a listed name is not one component")
                    precondition(!(record.name.count <= 2 && record.name.allSatisfy { $0 == 0x2E }), "'.' or '..' listed")
                    if let entry = record.entry, entry.nodeID != 0 {
                        checkAttributes(entry.attributes)
                        Session.remember(entry.nodeID, in: &nodes)
                    }
                }
            case .statfs:
                _ = try decoded.statfs()
            case .initialize:
                _ = try decoded.initialize(maximumWrite: FUSEServer.maximumWrite)
            case .unlink, .rmdir, .rename, .rename2, .release, .releasedir, .flush, .forget:
                try decoded.empty()
            }
        } catch {
            preconditionFailure("a success reply the guest cannot decode: \(error) for \(core)")
        }
    }

    func requestBytes(_ sent: Sent) -> [UInt8] { Array(requestBuffer[..<sent.count]) }

    func checkAttributes(_ a: FUSEAttributes) {
        precondition(a.mode & 0o7000 == 0, "the guest sees a set-ID or sticky bit")
        precondition(a.uid == geteuid() && a.gid == getegid(), "the guest sees another owner")
    }
}
