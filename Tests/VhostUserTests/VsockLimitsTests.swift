// toro-vsock treats the guest and host clients as hostile (DESIGN.md "Robustness rules"):
// bridged connections are capped (`--max-connections`: a host client past it is closed at
// once, a guest REQUEST past it reset), an accept that fails for want of descriptors
// pauses the listeners instead of polling them in a busy loop, and lines about bad guest
// packets are logged at most once a second per kind.
import XCTest
import TestSupport
import Glibc
@testable import VhostUser

/// A blocking TCP client of 127.0.0.1:`port` (the listener's backlog completes the connect).
func tcpClient(_ port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    XCTAssertEqual(result, 0, "connect to 127.0.0.1:\(port)")
    return fd
}

/// A TCP port nobody listens on now (the kernel's choice for a port-0 bind).
func freeTCPPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            _ = bind(fd, pointer, length)
            return getsockname(fd, pointer, &length)
        }
    }
    return UInt16(bigEndian: address.sin_port)
}

final class VsockLimitsTests: VsockDeviceTestCase {
    func testHostClientsPastTheCapAreClosedAtOnce() throws {
        let device = VsockDevice(guestCID: guestCID, udsPath: uds)
        device.maxConnections = 3
        try device.listenHybrid()
        let port = freeTCPPort()
        try device.listenForward(VsockForward(hostPort: port, guestPort: 80))
        let guest = try SimulatedGuest(device: device)
        try guest.postRX(16)
        var clients = (0..<3).map { _ in tcpClient(port) }
        defer { clients.forEach { close($0) } }
        pump(device)
        XCTAssertEqual(device.connectionCount, 3)
        XCTAssertEqual(try guest.receive().map(\.header.op), [.request, .request, .request])

        let late = [tcpClient(port), tcpClient(port), try unixClient(uds)]
        clients += late
        let start = Posix.monotonicNow()
        pump(device)
        for fd in late {
            XCTAssertTrue(readAvailable(fd, timeout: 1).eof, "a client past the cap is closed")
        }
        XCTAssertLessThan(Posix.monotonicNow() - start, 1, "at once, not after a timeout")
        XCTAssertEqual(device.liveCount, 3)
        XCTAssertEqual(try guest.receive(), [], "no REQUEST for a client past the cap")
        XCTAssertTrue(log.contains("--max-connections"), "\(log.lines)")
        XCTAssertEqual(log.lines.filter { $0.contains("--max-connections") }.count, 1, "one line for the burst")
    }

    func testGuestConnectsPastTheCapAreReset() throws {
        let device = VsockDevice(guestCID: guestCID, udsPath: uds)
        device.maxConnections = 2
        let guest = try SimulatedGuest(device: device)
        let listener = try Posix.listenUnix(path: uds + "_5000")
        defer { close(listener) }
        try guest.postRX(8)
        for port: UInt32 in [1, 2, 3] { try guest.send(.request, from: port, to: 5000) }
        let answers = try guest.receive()
        XCTAssertEqual(answers.map(\.header.op), [.response, .response, .rst])
        XCTAssertEqual(answers.last?.header.destination.port, 3)
        var accepted: [Int32] = []
        while let fd = Posix.accept(listener) { accepted.append(fd) }
        accepted.forEach { close($0) }
        XCTAssertEqual(accepted.count, 2, "no host socket for the refused one")
        // Room again once one goes.
        try guest.send(.rst, from: 1, to: 5000)
        try guest.send(.request, from: 4, to: 5000)
        XCTAssertEqual(try guest.receive().map(\.header.op), [.response])
    }

    func testBadGuestPacketLinesAreRateLimitedPerKind() throws {
        let device = VsockDevice(guestCID: guestCID, udsPath: nil)
        let guest = try SimulatedGuest(device: device)
        try guest.postRX(8)
        for port: UInt32 in 0..<200 { try guest.send(.rw, from: port, to: 9, sourceCID: 77) }
        for port: UInt32 in 0..<50 { try guest.send(.rw, from: port, to: 9, destinationCID: 99) }
        XCTAssertEqual(log.lines.filter { $0.contains("from CID 77") }.count, 1, "\(log.lines)")
        XCTAssertEqual(log.lines.filter { $0.contains("to CID 99") }.count, 1, "another kind has its own line")
        BackendLog.flushSuppressed(now: Posix.monotonicNow() + 2)
        XCTAssertTrue(log.contains("199 more 'bad-source-cid' lines suppressed"), "\(log.lines)")
        XCTAssertTrue(log.contains("49 more 'bad-destination-cid' lines suppressed"), "\(log.lines)")
        XCTAssertEqual(log.lines.count, 4)
    }

    func testLogLimiterAdmitsOneLinePerIntervalAndCountsTheRest() {
        var limiter = LogLimiter(interval: 1)
        XCTAssertEqual(limiter.admit("a", now: 10), 0)
        XCTAssertNil(limiter.admit("a", now: 10.5))
        XCTAssertEqual(limiter.admit("b", now: 10.6), 0, "kinds are independent")
        XCTAssertNil(limiter.admit("a", now: 10.99))
        XCTAssertEqual(limiter.admit("a", now: 11), 2, "the next line carries the count")
        XCTAssertNil(limiter.admit("a", now: 11.2))
        XCTAssertTrue(limiter.takeFinished(now: 11.5).isEmpty, "the interval has not passed")
        let finished = limiter.takeFinished(now: 12.1)
        XCTAssertEqual(finished.map(\.kind), ["a"])
        XCTAssertEqual(finished.map(\.suppressed), [1])
        XCTAssertTrue(limiter.takeFinished(now: 13).isEmpty, "reported once")
    }

    /// At EMFILE the listener stays readable (the client is still queued): it must leave
    /// the poll set for a while, or the event loop spins. Once descriptors return, the
    /// queued clients are accepted.
    func testAcceptPausesAtDescriptorExhaustionAndResumes() throws {
        let device = VsockDevice(guestCID: guestCID, udsPath: nil)
        let port = freeTCPPort()
        try device.listenForward(VsockForward(hostPort: port, guestPort: 80))
        let listener = try XCTUnwrap(device.forwardListeners.first?.fd)
        let clients = (0..<3).map { _ in tcpClient(port) }
        defer { clients.forEach { close($0) } }
        let now = Posix.monotonicNow()
        let filler = DescriptorFiller()
        device.handleEvent(fd: listener, revents: Int16(POLLIN), now: now)
        let pausedEntries = device.pollEntries().map(\.fd)
        let firstResume = device.nextDeadline
        device.expire(now: now + 0.06)
        let resumedEntries = device.pollEntries().map(\.fd)
        device.handleEvent(fd: listener, revents: Int16(POLLIN), now: now + 0.06)
        let secondResume = device.nextDeadline
        let connectionsWhileShort = device.connectionCount
        filler.release()

        XCTAssertFalse(pausedEntries.contains(listener), "the listener rests")
        XCTAssertEqual(try XCTUnwrap(firstResume), now + 0.05, accuracy: 0.001, "for 50 ms first")
        XCTAssertTrue(resumedEntries.contains(listener), "then it is polled again")
        XCTAssertEqual(try XCTUnwrap(secondResume), now + 0.06 + 0.1, accuracy: 0.001, "the pause doubles")
        XCTAssertEqual(connectionsWhileShort, 0)
        XCTAssertEqual(log.lines.filter { $0.contains("Too many open files") }.count, 1, "one line, \(log.lines)")
        device.expire(now: Posix.monotonicNow() + 1)
        pump(device)
        XCTAssertEqual(device.connectionCount, 3, "the queued clients are served once descriptors return")
        XCTAssertNil(device.acceptBackoff.resumeAt)
    }
}
