// Tier 2: the guest connects out over vsock. `hostping` connects to the host (CID 2) on
// port 1234; toro-vsock turns that into a connection to the Unix socket `<uds>_1234`
// (Firecracker's convention), where this test answers with a line.

import Foundation
import XCTest
import ToroTool
#if canImport(Glibc)
import Glibc
#endif

final class HostPingBootTests: XCTestCase {
    func testGuestConnectsToTheHost() throws {
        guard Harness.preflight() else { return }
        let backendPath = Harness.root + "/.build/debug/toro-vsock"
        guard FileManager.default.isExecutableFile(atPath: backendPath) else {
            return XCTFail("\(backendPath) is missing: ./toro test builds it first")
        }
        let directory = NSTemporaryDirectory() + "toro-hostping-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socket = directory + "/vhost-user.sock", hybrid = directory + "/vsock.sock"

        // The host side the guest reaches: answers one line with "pong: <line>".
        let listener = try UnixLineServer(path: hybrid + "_1234")
        let answered = DispatchSemaphore(value: 0)
        Thread.detachNewThread { listener.serveOne(); answered.signal() }

        let backend = Process()
        backend.executableURL = URL(fileURLWithPath: backendPath)
        backend.arguments = VsockBackend.arguments(socket: socket, hybrid: hybrid, ports: [])
        try backend.run()
        defer { if backend.isRunning { backend.terminate(); backend.waitUntilExit() } }
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: socket) && Date() < deadline { usleep(10_000) }

        var command = QEMUCommand(platform: .microvm, accelerator: .tcg, memoryMiB: 64, cpus: 1,
                                  kernelPath: Harness.paths.image(.microvm, service: "hostping"), kernelCommandLine: "service=hostping port=1234")
        command.vsockSocket = socket
        let outcome = Boot.run(command, timeout: 60, echo: false)
        let dump = outcome.output + outcome.errorOutput
        XCTAssertEqual(outcome.status, .success, dump)
        XCTAssertTrue(outcome.output.contains("hostping: host answered: pong: ping from Toro"), dump)
        XCTAssertEqual(answered.wait(timeout: .now() + 10), .success, "the host side never saw the guest\n" + dump)
    }
}

extension HostPingBootTests {
    /// Legacy: the guest's CID 2 is the gateway, 10.0.2.2, which QEMU's user networking
    /// maps to the host's 127.0.0.1: hostping reaches a TCP listener of the test's own
    /// through Toro's TCP/IP (ARP for the gateway, the handshake, data both ways, the close).
    func testLegacyGuestConnectsToTheHost() throws {
        guard Harness.preflight() else { return }
        let listener = try TCPLineServer()
        let answered = DispatchSemaphore(value: 0)
        Thread.detachNewThread { listener.serveOne(); answered.signal() }
        var command = QEMUCommand(platform: .legacy, accelerator: .tcg, memoryMiB: 64, cpus: 1,
                                  kernelPath: Harness.paths.image(.legacy, service: "hostping"),
                                  kernelCommandLine: "service=hostping port=\(listener.port)")
        command.network = .user(forwards: [])
        let outcome = Boot.run(command, timeout: 60, echo: false)
        let dump = outcome.output + outcome.errorOutput
        XCTAssertEqual(outcome.status, .success, dump)
        XCTAssertTrue(outcome.output.contains("hostping: host answered: pong: ping from Toro"), dump)
        XCTAssertEqual(answered.wait(timeout: .now() + 10), .success, "the host side never saw the guest\n" + dump)
    }

    /// Legacy: a host port nobody listens on is refused at once (slirp answers the SYN with
    /// RST), and hostping says so and exits 1.
    func testLegacyRefusedConnectionIsReported() throws {
        guard Harness.preflight() else { return }
        let closed = try TCPLineServer()
        let port = closed.port
        closed.closeWithoutServing()
        var command = QEMUCommand(platform: .legacy, accelerator: .tcg, memoryMiB: 64, cpus: 1,
                                  kernelPath: Harness.paths.image(.legacy, service: "hostping"),
                                  kernelCommandLine: "service=hostping port=\(port)")
        command.network = .user(forwards: [])
        let began = Date()
        let outcome = Boot.run(command, timeout: 60, echo: false)
        let dump = outcome.output + outcome.errorOutput
        XCTAssertEqual(outcome.status, .serviceFailed, dump)
        XCTAssertTrue(outcome.output.contains("hostping: connection refused"), dump)
        XCTAssertLessThan(Date().timeIntervalSince(began), 30, "refused at once, not after the connect timeout\n" + dump)
    }
}

/// A TCP server on 127.0.0.1 (a port the kernel picks) that answers one connection's first line.
final class TCPLineServer: @unchecked Sendable {
    let fd: Int32
    let port: UInt16

    init() throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(socket, 4) == 0 else { throw ToolFailure(.qemuFailed, "cannot listen on 127.0.0.1") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            _ = $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        fd = socket
        port = UInt16(bigEndian: address.sin_port)
    }

    func closeWithoutServing() { close(fd) }

    func serveOne() { answerOneLine(listening: fd) }
}

/// A Unix-socket server that answers one connection's first line.
final class UnixLineServer: @unchecked Sendable {
    let fd: Int32

    init(path: String) throws {
        fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 4) == 0 else { throw ToolFailure(.qemuFailed, "cannot listen on \(path)") }
    }

    func serveOne() { answerOneLine(listening: fd) }
}

/// Accepts one connection on the listening `fd`, answers its first line with "pong: <line>",
/// and closes both.
func answerOneLine(listening fd: Int32) {
    let client = accept(fd, nil, nil)
    guard client >= 0 else { return }
    var line = [UInt8]()
    var byte: UInt8 = 0
    while read(client, &byte, 1) == 1 && byte != 10 { line.append(byte) }
    let reply = Array("pong: ".utf8) + line + [10]
    _ = reply.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
    close(client)
    close(fd)
}
