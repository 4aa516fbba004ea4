// libFuzzer target: toro-vsock's device (`VsockDevice`, virtio 1.2 §5.10) with real bridged
// host connections, driven by a hostile guest and hostile host clients at once
// (DESIGN.md "Robustness rules").
//
// Each input is one session: a fresh device (CID 3) whose hybrid socket and a service at
// `<uds>_5000` live in this process's temporary folder, a guest on fake memory
// (Guest.swift), and up to 16 host clients. Byte 0: the connection cap (1 + low 3 bits).
// Then steps (at most 256), each a control byte (low 4 bits) and its arguments:
//   0-2  the guest sends a packet: source CID (mostly 3), destination CID (mostly 2),
//        ports (the service, a port nobody serves, a host port the device used in a
//        REQUEST, or any), op (1-7 or any), flags, buf_alloc, fwd_cnt, payload bytes, and a
//        length field that is the payload's or any value;
//   3    the guest sends raw bytes as a tx chain;
//   4    the guest posts rx buffers (count, size 20-4096) and reads back what comes;
//   5    a host client connects to the hybrid socket and sends a line (CONNECT 5000, a bad
//        port, garbage, nothing);
//   6    a host client (hybrid or service-side) writes bytes;
//   7    a host client closes, or shuts its write side;
//   8    the service accepts what is queued;
//   9    one turn of the event loop: the device's poll entries polled without waiting;
//   10   the clock moves on (up to 12.75 s) and deadlines expire;
//   11   a ring is corrupted (its avail index), which the device must survive;
//   else the guest re-kicks tx and rx.
// Invariants (a violation traps, which libFuzzer reports):
//   * nothing traps; every rx packet is from CID 2 to CID 3, decodes, and its used length
//     is the header plus its payload, within the buffer posted (Guest.swift);
//   * bridged connections and handshakes never pass the cap; the control queue never
//     passes its limit; no connection buffers more than its advertised buf_alloc for the
//     host or more than its read limit for the guest; the fd and ready tables agree with
//     the connection table;
//   * after the session every descriptor the device, clients and service opened is closed.
// Imports the real modules: VhostUser (the device), VirtIO (the rings), Wire (the vsock
// packet code) and TestSupport (the fake guest). Log lines are discarded.
import FuzzSupport
import Glibc
@testable import VhostUser
@testable import VirtIO
import TestSupport
@testable import Wire

nonisolated(unsafe) private var top = ""
nonisolated(unsafe) private var setUp = false

private func checkInvariants(_ device: VsockDevice) {
    precondition(device.liveCount <= device.maxConnections, "more connections than --max-connections")
    precondition(device.control.count <= VsockDevice.controlLimit, "the control queue passed its limit")
    precondition(device.keyByFD.count == device.connections.count, "fd table and connection table disagree")
    precondition(Set(device.ready).count == device.ready.count, "a connection is ready twice")
    for key in device.ready { precondition(device.connections[key] != nil, "a ready connection that is gone") }
    for connection in device.connections.values {
        precondition(connection.pendingToHost <= Int(BridgedConnection.bufferSize) + 32, "buffered beyond buf_alloc for the host")
        precondition(connection.pendingToGuest <= BridgedConnection.toGuestLimit, "buffered beyond the read limit for the guest")
        precondition(device.keyByFD[connection.fd] == connection.key, "fd table entry")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    if !setUp {
        setUp = true
        BackendLog.capture = { _ in }
        signal(SIGPIPE, SIG_IGN)
        var template = Array("/tmp/fuzz-vsock.XXXXXX".utf8CString)
        top = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        atexit {
            unlink(top + "/v.sock")
            unlink(top + "/v.sock_5000")
            rmdir(top)
        }
    }
    let descriptorsBefore = openDescriptors()
    var input = Cursor(bytes: UnsafeRawBufferPointer(start: data, count: size))
    let uds = top + "/v.sock"
    do {
        let device = VsockDevice(guestCID: 3, udsPath: uds)
        device.maxConnections = 1 + Int(input.u8() & 7)
        try device.listenHybrid()
        let service = try Posix.listenUnix(path: uds + "_5000", backlog: 8)
        let guest = try FuzzGuest(device: device)
        var session = Session(device: device, guest: guest, service: service, uds: uds)
        var steps = 0
        while !input.isEmpty && steps < 256 {
            steps += 1
            session.step(&input)
            checkInvariants(device)
        }
        session.close()
    } catch {
        preconditionFailure("fuzz setup: \(error)")
    }
    precondition(openDescriptors() == descriptorsBefore, "a descriptor leaked")
    return 0
}

fuzzMain(fuzz)
