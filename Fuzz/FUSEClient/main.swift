// libFuzzer target: the guest's `FUSEFileSystem` against a FUSE server that answers anything
// at all (fuse.h 7.31; STYLE principle 7). The server is `FuzzServer`, a `FUSEChannel` whose
// replies come from the input.
//
// The input: byte 0 bit 0 picks the transfer size (4096 or 8192); bit 1 makes the memory
// budget refuse every admission (listings then fail with `.outOfMemory`). The rest is one reply per
// exchanged request, each starting with a control byte whose bits 0-1 say what it is:
//   0  a well-formed success (len, unique, error 0, the body size the opcode's reply must
//      have), its few variable fields from the control byte and at most a byte or two more,
//      so that deep paths need short inputs: entries and attributes get a node id (a byte;
//      0 is a negative entry, 1 the root), a type (bits 2-3: file, directory, symlink,
//      fifo) and a size (bits 4-7, KiB); OPEN's handle is a byte; INIT says 7.31 (bit 4:
//      7.32) with a max_write of a byte * 256; WRITE's count is all (bit 4 clear; bit 5:
//      half) or a le32 that may exceed what was sent (bit 4); READ's data is the size asked
//      (bit 5: half, a short read) or a le16 size that may exceed it (bit 4); READDIR's
//      stream has (bits 4-6) well-formed records, names from a byte each (some "." and
//      ".."), cookies from a byte on, or all equal to the offset asked (bit 7);
//   1  an errno reply: a byte, errno 1...48; with bit 2 a le32 error, any value, len 16;
//   2  raw: a le16 size, then that many bytes (fewer if the input runs out, at most the reply
//      buffer) copied in as they are; bit 2 patches the header's len (to the reported count)
//      and unique (the request's); the reported count is the bytes copied, or with bit 3 the
//      le16 size plus (bits 5-7) * 64 KiB, which may exceed the buffer;
//   3  the device fails: `exchange` throws `.io`; with bit 2, the device keeps the request
//      and never answers in time: the request times out (`FUSEStallGuard`, as the virtio-fs
//      driver runs it, on a clock that jumps to each deadline) and the device is stalled.
//      While it is, each look for the late reply reads a byte: bit 0 set, it arrives.
// When the input runs out, `exchange` throws `.io` (a failed device). FORGET (`post`) reads
// no input. After mounting, a fixed script of operations (stat, open/read/close,
// readDirectory, create/write, mkdir, rename, truncate, statFileSystem, unlink, rmdir,
// directory open, O_TRUNC open, exclusive create) runs in a cycle until the input is used up.
// Invariants (a violation traps, which libFuzzer reports):
//   * nothing traps; every failure is a `FileSystemError` (typed throws make that a compile
//     error otherwise) and a failed mount leaves nothing behind;
//   * every request the client sends has a header len equal to the bytes sent, is accepted
//     by the host's decoder (`FUSEIncomingRequest`), and has a unique never used before;
//     FORGET goes only through `post`, drops 1 reference of a node other than 0 and the
//     root, and only of a node the server handed out (LOOKUP/MKDIR/CREATE entries) and not
//     yet forgotten;
//   * each script step returns every reference it took (for now except the two that open
//     with `.create`: see `Step.returnsReferences`);
//   * a read never reports more bytes than asked, a write never more than given; a read on
//     a directory handle is `.isADirectory` and one on a write-only handle `.badDescriptor`,
//     both without a request;
//   * `openCount` is 1 while a step holds its handle, 0 after a failed open and after close
//     (a second close is `.badDescriptor`); close sends FLUSH then RELEASE for a file
//     opened for writing, RELEASE alone for a read-only one, RELEASEDIR for a directory,
//     and fails only for a file opened for writing whose FLUSH was not answered ENOSYS;
//   * directory listings hold only valid names, never "." or ".."; a listing's READDIRs
//     start at 0 and ask for strictly increasing cookies, at most (bound + 1) of them;
//   * nothing is posted while a timed-out request is with the device, and that request's
//     buffer is exactly as it was sent when its late reply comes;
//   * `maximumWrite` is within 4096...transfer; `malformedReplies` never decreases.
// Imports the real modules: Drivers (the client), Core (the file-system layer, SleepLock and
// the memory budget; libFuzzer runs one thread, so SleepLock is never contended and never
// reaches the scheduler) and Wire (the FUSE format).
@testable import Core
@testable import Drivers
@testable import FSDriver
import FuzzSupport
@testable import Wire

private func load32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}


/// The hostile server: replies from the input, requests checked as the host would see them.
private final class FuzzServer: FUSEChannel, FUSERequestQueue {
    var input: Cursor
    var lastUnique: UInt64 = 0
    /// The opcode of the last OPEN, OPENDIR or CREATE.
    var lastOpen: UInt32 = 0
    /// Opcodes of the requests with replies, since the script last cleared it.
    var exchanged: [UInt32] = []
    /// The errno the last FLUSH was answered with (0 if none).
    var flushErrno: Int32 = 0
    /// References the server handed out and the client has not forgotten, by node.
    var outstanding: [UInt64: Int] = [:]

    /// The listing bound the fuzzed client runs with (small, so that it is reached).
    static let directoryEntries = 64
    let stallGuard = FUSEStallGuard(timeoutSeconds: 30)
    var clock: UInt64 = 0
    var nextHead: UInt16 = 0
    /// The answered chain not yet taken.
    var used: (id: UInt16, length: UInt32)? = nil
    /// The chain the device kept without answering: its head, request buffer, and bytes.
    var held: (head: UInt16, request: UnsafeRawBufferPointer, sent: [UInt8])? = nil
    /// The open listing: the last READDIR offset asked and the READDIRs sent.
    var listing: (UInt64, Int)? = nil

    init(_ input: Cursor) { self.input = input }

    func check(_ request: UnsafeRawBufferPointer) -> FUSEIncomingRequest {
        precondition(request.count >= FUSE.inHeaderSize, "request shorter than its header")
        precondition(Int(load32(request, 0)) == request.count, "request len is not the bytes sent")
        let decoded: FUSEIncomingRequest
        do throws(FUSEError) {
            decoded = try FUSEIncomingRequest(request)
        } catch {
            preconditionFailure("the host's decoder refuses a request the guest sent")
        }
        precondition(decoded.unique > lastUnique, "unique reused")
        lastUnique = decoded.unique
        return decoded
    }

    func post(_ request: UnsafeRawBufferPointer) throws(FileSystemError) {
        let decoded = check(request)
        guard case .forget(let lookups) = decoded.operation, decoded.opcode == FUSEOpcode.forget.rawValue else {
            preconditionFailure("post of a request that has a reply")
        }
        precondition(lookups == 1 && decoded.nodeID != 0 && decoded.nodeID != FUSE.rootID, "FORGET of what")
        let left = (outstanding[decoded.nodeID] ?? 0) - 1
        precondition(left >= 0, "FORGET of a reference the server never gave")
        outstanding[decoded.nodeID] = left == 0 ? nil : left
    }

    // FUSEChannel: through FUSEStallGuard, as the virtio-fs driver does.
    func exchange(_ request: UnsafeRawBufferPointer, reply: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        try stallGuard.exchange(self, request: request, reply: reply)
    }

    func prepare() throws(FileSystemError) { try stallGuard.prepare(self) }

    // FUSERequestQueue: the device answers at once (`used`), fails, or keeps the chain.
    func submit(request: UnsafeRawBufferPointer, reply: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> UInt16 {
        precondition(!stallGuard.isStalled && held == nil, "a request was posted while one that timed out is with the device")
        let decoded = check(request)
        precondition(decoded.opcode != FUSEOpcode.forget.rawValue, "FORGET sent expecting a reply")
        exchanged.append(decoded.opcode)
        switch decoded.opcode {
        case FUSEOpcode.open.rawValue, FUSEOpcode.create.rawValue: lastOpen = decoded.opcode
        case FUSEOpcode.opendir.rawValue:
            lastOpen = decoded.opcode
            listing = nil
        default: break
        }
        if case .readdir(_, let offset, _) = decoded.operation {
            // A listing makes progress: each READDIR resumes after the last cookie seen.
            if let (last, count) = listing {
                precondition(offset > last, "READDIR asked for a cookie that does not move on")
                precondition(count < FuzzServer.directoryEntries + 1, "a listing past its bound")
                listing = (offset, count + 1)
            } else {
                precondition(offset == 0, "a listing that does not start at 0")
                listing = (0, 1)
            }
        }
        nextHead = (nextHead + 1) % 8
        guard !input.isEmpty else { throw .io }
        let control = input.u8()
        let count: Int
        switch control & 3 {
        case 0: count = success(decoded, reply: reply, control: control)
        case 1: count = failure(decoded, reply: reply, control: control)
        case 2: count = raw(decoded, reply: reply, control: control)
        default:
            guard control & 4 != 0 else { throw .io }
            // No answer: the device keeps the chain (and may answer it late, in `takeUsed`).
            held = (nextHead, request, Array(request))
            return nextHead
        }
        if count <= reply.count, let node = acceptedEntry(decoded, UnsafeRawBufferPointer(rebasing: reply[..<count])),
           node != 0, node != FUSE.rootID {
            outstanding[node, default: 0] += 1
        }
        used = (nextHead, UInt32(truncatingIfNeeded: max(0, min(count, Int(UInt32.max)))))
        return nextHead
    }

    func takeUsed() throws(FileSystemError) -> (id: UInt16, length: UInt32)? {
        if let answer = used {
            used = nil
            return answer
        }
        // A chain that timed out comes back when the input says so, its request untouched.
        guard let chain = held, stallGuard.isStalled, !input.isEmpty, input.u8() & 1 == 1 else { return nil }
        precondition(Array(chain.request) == chain.sent, "the client rewrote a request buffer the device still held")
        held = nil
        return (chain.head, 0)
    }

    func waitForDevice(until deadline: UInt64) { clock = max(clock, deadline) }
    func now() -> UInt64 { clock }
    func fail(_ reason: StaticString) { preconditionFailure("the stall guard failed a device that gave only right ids") }

    /// The node a LOOKUP, MKDIR or CREATE reply hands out, when the client will accept it.
    func acceptedEntry(_ request: FUSEIncomingRequest, _ bytes: UnsafeRawBufferPointer) -> UInt64? {
        do throws(FUSEError) {
            switch request.opcode {
            case FUSEOpcode.lookup.rawValue, FUSEOpcode.mkdir.rawValue:
                return try FUSEReply(bytes, unique: request.unique).entry().nodeID
            case FUSEOpcode.create.rawValue:
                return try FUSEReply(bytes, unique: request.unique).create().entry.nodeID
            default:
                return nil
            }
        } catch {
            return nil
        }
    }

    func raw(_ request: FUSEIncomingRequest, reply: UnsafeMutableRawBufferPointer, control: UInt8) -> Int {
        let size = Int(input.u16())
        let copied = input.fill(UnsafeMutableRawBufferPointer(rebasing: reply[..<min(size, reply.count)]))
        let reported = control & 8 != 0 ? size + Int(control >> 5) << 16 : copied
        if control & 4 != 0 && copied >= FUSE.outHeaderSize {
            reply.storeBytes(of: UInt32(truncatingIfNeeded: reported).littleEndian, toByteOffset: 0, as: UInt32.self)
            reply.storeBytes(of: request.unique.littleEndian, toByteOffset: 8, as: UInt64.self)
        }
        return reported
    }

    func header(_ request: FUSEIncomingRequest, reply: UnsafeMutableRawBufferPointer, body: Int, error: Int32) -> Int {
        let count = FUSE.outHeaderSize + body
        reply.storeBytes(of: UInt32(count).littleEndian, toByteOffset: 0, as: UInt32.self)
        reply.storeBytes(of: error.littleEndian, toByteOffset: 4, as: Int32.self)
        reply.storeBytes(of: request.unique.littleEndian, toByteOffset: 8, as: UInt64.self)
        return count
    }

    func failure(_ request: FUSEIncomingRequest, reply: UnsafeMutableRawBufferPointer, control: UInt8) -> Int {
        let error = control & 4 != 0 ? Int32(bitPattern: input.u32()) : -(Int32(input.u8() % 48) + 1)
        if request.opcode == FUSEOpcode.flush.rawValue { flushErrno = 0 &- error }
        return header(request, reply: reply, body: 0, error: error)
    }

    /// `fuse_attr` from the control byte: a node id, the type, a size.
    func attributes(_ control: UInt8, node: UInt64) -> FUSEAttributes {
        var a = FUSEAttributes()
        let types: [UInt32] = [0o100000, 0o040000, 0o120000, 0o010000]
        a.ino = node
        a.mode = types[Int(control >> 2 & 3)] | 0o644
        a.size = UInt64(control >> 4) << 10
        a.nlink = 1
        return a
    }

    func entry(_ control: UInt8) -> FUSEEntry {
        var e = FUSEEntry()
        e.nodeID = UInt64(input.u8())
        e.attributes = attributes(control, node: e.nodeID)
        return e
    }

    func success(_ request: FUSEIncomingRequest, reply: UnsafeMutableRawBufferPointer, control: UInt8) -> Int {
        let body = UnsafeMutableRawBufferPointer(rebasing: reply[FUSE.outHeaderSize...])
        var w = LittleEndianWriter(body)
        switch request.operation {
        case .lookup, .mkdir:
            entry(control).encode(into: body)
            w.offset = FUSEEntry.size
        case .create:
            let e = entry(control)
            e.encode(into: body)
            w.offset = FUSEEntry.size
            w.u64(e.nodeID); w.u32(0); w.u32(0)
        case .getattr, .setattr:
            var a = FUSEAttributesReply()
            a.attributes = attributes(control, node: request.nodeID)
            a.encode(into: body)
            w.offset = FUSEAttributesReply.size
        case .open, .opendir:
            w.u64(UInt64(input.u8())); w.u32(0); w.u32(0)
        case .statfs:
            let blocks = UInt64(input.u8())
            w.u64(blocks); w.u64(blocks / 2); w.u64(blocks / 3); w.u64(100); w.u64(50)
            w.u32(4096); w.u32(255); w.u32(4096); w.u32(0); w.zeros(24)
        case .initialize:
            var r = FUSEInitReply()
            r.major = FUSE.major
            r.minor = FUSE.minor + UInt32(control >> 4 & 1)
            r.maxReadahead = 128 * 1024
            r.maxWrite = UInt32(input.u8()) << 8
            r.encode(into: body)
            w.offset = FUSEInitReply.size
        case .write(_, _, let data):
            var written = UInt32(data.count)
            if control & 0x10 != 0 { written = input.u32() } else if control & 0x20 != 0 { written /= 2 }
            w.u32(written); w.u32(0)
        case .read(_, _, let asked):
            var size = Int(asked)
            if control & 0x10 != 0 { size = Int(input.u16()) } else if control & 0x20 != 0 { size /= 2 }
            w.zeros(min(size, body.count))
        case .readdir(_, let offset, let asked), .readdirplus(_, let offset, let asked):
            w.offset = directory(into: UnsafeMutableRawBufferPointer(rebasing: body[..<min(Int(asked), body.count)]),
                                 plus: request.opcode == FUSEOpcode.readdirplus.rawValue, control: control, offset: offset)
        default:
            break
        }
        return header(request, reply: reply, body: w.offset, error: 0)
    }

    /// (bits 4-6) well-formed records; returns the stream's size.
    func directory(into stream: UnsafeMutableRawBufferPointer, plus: Bool, control: UInt8, offset: UInt64) -> Int {
        var writer = FUSEDirectoryWriter(stream)
        let records = Int(control >> 4 & 7)
        var cookie = control & 0x80 != 0 ? offset : UInt64(input.u8())
        for _ in 0 ..< records {
            let byte = input.u8()
            let name: [UInt8] = byte % 32 == 0 ? [46] : byte % 32 == 1 ? [46, 46]
                : [UInt8](repeating: 97 + byte % 26, count: Int(byte >> 5) + 1)
            if control & 0x80 == 0 { cookie &+= 1 }
            let fits = name.withUnsafeBytes {
                writer.append(ino: UInt64(byte), offset: cookie, type: UInt32(byte % 16), name: $0,
                              entry: plus ? FUSEEntry() : nil)
            }
            if !fits { break }
        }
        return writer.count
    }
}

private func path(_ text: StaticString) -> VFSPath {
    do throws(FileSystemError) {
        return try text.withUTF8Buffer { bytes in Result { () throws(FileSystemError) in try VFSPath(parsing: Array(bytes)) } }.get()
    } catch {
        preconditionFailure("script path")
    }
}

/// One script step.
private enum Step: CaseIterable {
    case stat, readFile, list, createAndWrite, makeDirectory, rename, truncate, statFileSystem, remove,
         openDirectory, truncatingOpen, exclusiveCreate

    /// Whether the step must forget every reference it took: every step does (this check
    /// found `open` with `.create` keeping the reference of its first LOOKUP).
    var returnsReferences: Bool { true }
}

private final class Script {
    let fileSystem: FUSEFileSystem
    let server: FuzzServer
    let buffer: UnsafeMutableRawBufferPointer
    var malformed = 0
    /// What the handle being used was opened as.
    var directory = false
    var writable = false

    init(_ fileSystem: FUSEFileSystem, _ server: FuzzServer) {
        self.fileSystem = fileSystem
        self.server = server
        buffer = .allocate(byteCount: 9000, alignment: 8)
        buffer.initializeMemory(as: UInt8.self, repeating: 0x5A)
    }

    deinit { buffer.deallocate() }

    func expectClosed() { precondition(fileSystem.openCount == 0, "a handle left open") }

    func open(_ path: VFSPath, _ flags: OpenFlags) -> FileHandleID? {
        do throws(FileSystemError) {
            let handle = try fileSystem.open(path, flags: flags, mode: 0o644)
            precondition(fileSystem.openCount == 1, "open did not register one handle")
            directory = server.lastOpen == FUSEOpcode.opendir.rawValue
            writable = flags.contains(.write)
            return handle
        } catch {
            expectClosed()
            return nil
        }
    }

    /// FLUSH then RELEASE for a file opened for writing, RELEASE for a read-only one,
    /// RELEASEDIR for a directory; the handle is gone after, and only a file opened for
    /// writing may report an error (its FLUSH's, not ENOSYS).
    func close(_ handle: FileHandleID) {
        server.exchanged = []
        server.flushErrno = 0
        let stalls = server.stallGuard.timeouts + server.stallGuard.refusedWhileStalled
        do throws(FileSystemError) {
            try fileSystem.close(handle)
        } catch {
            precondition(writable && !directory && server.flushErrno != 38, "close failed without a failed FLUSH to report")
        }
        let expected: [UInt32] = directory ? [FUSEOpcode.releasedir.rawValue]
            : writable ? [FUSEOpcode.flush.rawValue, FUSEOpcode.release.rawValue] : [FUSEOpcode.release.rawValue]
        // A stall (a timeout, or requests refused while one lasts) leaves some out: what was
        // sent is then the expected list with gaps (FLUSH refused, the stall ends, RELEASE).
        let stalled = server.stallGuard.timeouts + server.stallGuard.refusedWhileStalled != stalls
        var rest = expected[...]
        let inOrder = server.exchanged.allSatisfy { opcode in
            guard let at = rest.firstIndex(of: opcode) else { return false }
            rest = rest[(at + 1)...]
            return true
        }
        precondition(server.exchanged == expected || (stalled && inOrder), "close sent the wrong requests")
        expectClosed()
        do throws(FileSystemError) {
            try fileSystem.close(handle)
            preconditionFailure("closed twice")
        } catch {
            precondition(error == .badDescriptor, "second close")
        }
    }

    func read(_ handle: FileHandleID, offset: UInt64, count: Int) {
        do throws(FileSystemError) {
            let got = try fileSystem.read(handle, offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<count]))
            precondition(got >= 0 && got <= count, "read more than asked")
        } catch {}
    }

    func write(_ handle: FileHandleID, offset: UInt64, count: Int) {
        do throws(FileSystemError) {
            let put = try fileSystem.write(handle, offset: offset, from: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            precondition(put >= 0 && put <= count, "wrote more than given")
        } catch {}
    }

    func run(_ step: Step) {
        switch step {
        case .stat:
            if let attributes = try? fileSystem.stat(path("/a/b")) {
                precondition(attributes.mode <= 0o7777, "mode beyond the permission bits")
            }
        case .readFile:
            if let handle = open(path("/a/f"), .read) {
                read(handle, offset: 100, count: 9000)
                read(handle, offset: UInt64.max - 10, count: 100)
                close(handle)
            }
        case .list:
            if let entries = try? fileSystem.readDirectory(path("/d")) {
                for entry in entries {
                    precondition(entry.name.withUnsafeBytes { FUSE.isValidName($0) }, "listed an invalid name")
                    precondition(entry.name != [46] && entry.name != [46, 46], "listed . or ..")
                }
            }
        case .createAndWrite:
            if let handle = open(path("/a/new"), [.read, .write, .create]) {
                write(handle, offset: 7, count: 9000)
                read(handle, offset: 0, count: 300)
                close(handle)
            }
        case .makeDirectory:
            _ = try? fileSystem.makeDirectory(path("/d/sub"), mode: 0o755)
        case .rename:
            _ = try? fileSystem.rename(from: path("/a/x"), to: path("/b/y"))
        case .truncate:
            _ = try? fileSystem.truncate(path("/a/f"), size: 12345)
        case .statFileSystem:
            _ = try? fileSystem.statFileSystem()
        case .remove:
            _ = try? fileSystem.remove(path("/a/f"))
            _ = try? fileSystem.removeDirectory(path("/d/sub"))
        case .openDirectory:
            if let handle = open(path("/d"), .read) {
                let sent = server.lastUnique
                do throws(FileSystemError) {
                    _ = try fileSystem.read(handle, offset: 0, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<10]))
                    precondition(server.lastOpen != FUSEOpcode.opendir.rawValue, "read on a directory handle")
                } catch {
                    if server.lastOpen == FUSEOpcode.opendir.rawValue {
                        precondition(error == .isADirectory && server.lastUnique == sent, "read on a directory handle")
                    }
                }
                close(handle)
            }
        case .truncatingOpen:
            if let handle = open(path("/a/f"), [.write, .truncate]) {
                write(handle, offset: 0, count: 5000)
                let sent = server.lastUnique
                do throws(FileSystemError) {
                    _ = try fileSystem.read(handle, offset: 0, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<10]))
                    preconditionFailure("read through a write-only handle")
                } catch {
                    precondition(error == .badDescriptor && server.lastUnique == sent, "read through a write-only handle")
                }
                close(handle)
            }
        case .exclusiveCreate:
            if let handle = open(path("/a/g"), [.write, .create, .exclusive]) { close(handle) }
        }
        expectClosed()
        precondition(fileSystem.malformedReplies >= malformed, "malformedReplies went back")
        malformed = fileSystem.malformedReplies
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 1 else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let transfer: UInt32 = input[0] & 1 == 0 ? 4096 : 8192
    // Bit 1: the budget is enforced with nothing free, so every admission is refused.
    MemoryBudget.isEnforced = input[0] & 2 != 0
    MemoryBudget.availableOverride = 0
    MemoryBudget.reserveOverride = 1 << 20
    let server = FuzzServer(Cursor(bytes: UnsafeRawBufferPointer(rebasing: input[1...])))
    let fileSystem: FUSEFileSystem
    do throws(FileSystemError) {
        fileSystem = try FUSEFileSystem.mount(channel: server, transfer: transfer)
    } catch {
        precondition(server.outstanding.isEmpty, "a failed mount took references")
        return 0
    }
    fileSystem.maximumDirectoryEntries = FuzzServer.directoryEntries
    precondition(fileSystem.maximumWrite >= 4096 && fileSystem.maximumWrite <= transfer, "maximumWrite")
    precondition(fileSystem.openCount == 0 && fileSystem.malformedReplies == 0, "fresh mount")
    let script = Script(fileSystem, server)
    var index = 0
    var idle = 0
    while !server.input.isEmpty && idle < Step.allCases.count {
        let step = Step.allCases[index % Step.allCases.count]
        index += 1
        let before = server.input.offset
        let held = server.outstanding
        script.run(step)
        if step.returnsReferences {
            precondition(server.outstanding == held, "a step kept a reference it took")
        }
        idle = server.input.offset == before ? idle + 1 : 0
    }
    return 0
}

fuzzMain(fuzz)
