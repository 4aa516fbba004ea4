// libFuzzer target: toro-fs's FUSE server (`FUSEServer.handle`) answering a hostile guest
// on a real temporary folder (fuse.h 7.31; DESIGN.md "Robustness rules").
//
// Each input is one guest session against a fresh share (Tree.swift builds it: files, a
// folder, a FIFO, symlinks inside, absolute and climbing out, next to an `outside` folder
// with a secret). Byte 0: bit 0 read-only; byte 1: the caps (2 + low 4 bits nodes, 1 +
// bits 4-6 handles), so the caps are reached. Then requests until the input (or 256
// requests) runs out, each from a control byte (Requests.swift): one of the 19 encodable
// requests with its node, handle, names, flags and modes mostly picked from what the server
// handed out and a small dictionary (so deep paths need short inputs), an opcode the server
// sees beyond those (SYMLINK, MKNOD, LINK, FSYNC, ACCESS, DESTROY, BATCH_FORGET...) with a
// raw body, or raw bytes with only the header's len and unique patched. The reply space is
// the whole buffer, or (one request in eight) a tiny one.
// Invariants (a violation traps, which libFuzzer reports):
//   * nothing traps or blocks (a SIGALRM after 10 s aborts a hung request: CREATE of the
//     FIFO must answer at once);
//   * a reply is missing only for FORGET, BATCH_FORGET, a request shorter than its header
//     or reply space under 16 bytes; otherwise len == the bytes written <= the space, the
//     request's unique, error 0 or -1...-511 with no body, and a success body decodes with
//     Core's FUSEReply as the opcode's reply (the guest's own oracle); entries and attributes
//     never show a set-ID or sticky bit or an owner other than ours;
//   * the server never holds more nodes or handles than its caps, and after the session
//     every descriptor it opened is closed;
//   * nothing outside the share changed: `outside` holds exactly its secret, same bytes and
//     mode, the top folder exactly `share` and `outside`; inside the share nothing has a
//     set-ID or sticky bit, another owner, or a type the guest may not make (no new FIFO,
//     device, socket or symlink).
// Imports the real modules: VhostUser (the server, its Linux calls, the log) and Wire (the
// FUSE format). Log lines are discarded.
import FuzzSupport
import Glibc
@testable import VhostUser
@testable import Wire

private let replyCapacity = FUSE.outHeaderSize + 256 * 1024
nonisolated(unsafe) private var replyBuffer = [UInt8](repeating: 0, count: replyCapacity)
nonisolated(unsafe) var requestBuffer = [UInt8](repeating: 0, count: 64 * 1024)
nonisolated(unsafe) private var setUp = false

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    if !setUp {
        setUp = true
        BackendLog.capture = { _ in }
        Tree.createTop()
        signal(SIGALRM) { _ in
            let text = "FUSEServer fuzz: a request blocked for 10 s\n"
            _ = text.withCString { write(2, $0, strlen($0)) }
            abort()
        }
    }
    // Counted per input: libFuzzer's own leak check may hold a descriptor across inputs.
    let descriptorsBefore = openDescriptors()
    var input = Cursor(bytes: UnsafeRawBufferPointer(start: data, count: size))
    let mode = input.u8()
    let caps = input.u8()
    let limits = FUSEServerLimits(maxNodes: 2 + Int(caps & 15), maxHandles: 1 + Int((caps >> 4) & 7))
    Tree.createShare()
    alarm(10)
    do {
        let server = try FUSEServer(root: Tree.share, readOnly: mode & 1 != 0, limits: limits)
        var session = Session(server: server)
        var steps = 0
        while !input.isEmpty && steps < 256 {
            steps += 1
            let request = session.next(&input, into: &requestBuffer)
            let tiny = input.u8() & 7 == 0
            let space = tiny ? Int(input.u8() & 31) : replyCapacity
            let written: Int? = requestBuffer.withUnsafeBytes { raw in
                replyBuffer.withUnsafeMutableBytes { reply in
                    server.handle(UnsafeRawBufferPointer(rebasing: raw[..<request.count]),
                                  reply: UnsafeMutableRawBufferPointer(rebasing: reply[..<space]))
                }
            }
            replyBuffer.withUnsafeBytes { reply in
                session.check(request, written: written, space: space, reply: reply)
            }
            precondition(server.nodeCount <= limits.maxNodes, "more nodes than --max-nodes")
            precondition(server.handleCount <= limits.maxHandles, "more handles than --max-handles")
            precondition(server.openDescriptorCount == server.nodeCount + server.handleCount, "descriptor count")
        }
    } catch {
        preconditionFailure("the share could not be served: \(error)")
    }
    alarm(0)
    precondition(openDescriptors() == descriptorsBefore, "the server leaked a descriptor")
    Tree.checkAndRemoveShare()
    return 0
}

fuzzMain(fuzz)
