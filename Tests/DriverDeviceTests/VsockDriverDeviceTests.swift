// The guest's vsock driver (Drivers' VsockDriver with VsockSockets, as services use it)
// against the host's vsock device (VhostUser's VsockDevice, bridging to real Unix sockets in
// a temporary folder), in one process (virtio 1.2 §5.10; Firecracker docs/vsock.md).
//
// A host client speaks the hybrid handshake (`CONNECT <port>\n`), the guest's listener
// accepts, bytes go both ways, 1 MiB each way under credit (the guest's 64 KiB window and
// the host's 256 KiB one are each filled and never exceeded), and the connection closes in
// order. The guest-initiated direction runs as `connect`'s two halves (`request`, then
// `settle` once the device answered): `connect` waits for the RESPONSE on an Event, which
// needs the kernel's scheduler.
//
// How the driver runs without the scheduler: the kernel routes the device's interrupt to
// `handleInterrupt` and runs `serve` on a thread (wait for the interrupt, then `drain`). Here
// `step()` polls instead: the host sockets are pumped, and while an interrupt is pending the
// handler runs and then the loop's body, `drain`. Service calls that would block (accept
// with nothing pending, read with nothing buffered, write with no credit) are not made.
import Core
import Foundation
import Glibc
import VirtIO
import TestSupport
import Wire
import XCTest
@testable import Drivers
@testable import VsockDriver
@testable import VhostUser

typealias VsockTransport = DeviceTransport<VsockDevice>
typealias VsockGuestDriver = VsockDriver<VsockTransport, IdentityMemory>

final class VsockDriverDeviceTests: XCTestCase {
    var directory = ""
    var ram: GuestRAM!
    var logged: [String] = []
    static let cid: UInt64 = 3
    static let port: UInt32 = 1234

    override func setUp() {
        ram = GuestRAM(pages: 1024)
        XCTAssertTrue(ram.install())
        directory = temporaryDirectory()
        logged = []
        BackendLog.capture = { [unowned self] in logged.append($0) }
    }

    override func tearDown() {
        BackendLog.capture = nil
        removeDirectory(directory)
        GuestRAM.uninstall()
    }

    var uds: String { directory + "/v.sock" }

    struct Guest {
        let device: VsockDevice
        let transport: VsockTransport
        let driver: VsockGuestDriver
        let sockets: VsockSockets

        /// One turn of the world: the host sockets, then the guest's interrupt and the
        /// driver loop's body for as long as the device keeps interrupting.
        func step() {
            pump(device, quiet: 0.002, limit: 0.2)
            var rounds = 0
            while transport.interruptPending && rounds < 1000 {
                driver.handleInterrupt()
                driver.drain()
                rounds += 1
            }
        }

        /// Steps until `done` holds (at most `seconds`).
        func step(until done: () -> Bool, seconds: Double = 10) -> Bool {
            let end = VsockDevice.now() + seconds
            while !done() {
                guard VsockDevice.now() < end else { return false }
                step()
            }
            return true
        }
    }

    func bringUp() throws -> Guest {
        let device = VsockDevice(guestCID: VsockDriverDeviceTests.cid, udsPath: uds)
        try device.listenHybrid()
        // Only the guest's RAM: every ring and buffer the vsock driver names is a kernel page.
        let transport = VsockTransport(device: device, memory: ram.memory,
                                       config: device.readConfig(offset: 0, size: 8))
        let driver = try XCTUnwrap(VsockGuestDriver(transport: transport, memory: ram.memory))
        return Guest(device: device, transport: transport, driver: driver, sockets: VsockSockets(driver: driver))
    }

    /// The guest listens, a hybrid client connects: the accepted stream and the client.
    func connect(_ guest: Guest) throws -> (VsockStream, Int32, VsockListener) {
        let listener = try XCTUnwrap(try guest.sockets.listen(
            port: VsockDriverDeviceTests.port,
            limits: ConnectionLimits(maximumConnections: 8, backlog: 4, idleTimeout: 0)) as? VsockListener)
        let client = try unixClient(uds)
        writeAll(client, Array("CONNECT \(VsockDriverDeviceTests.port)\n".utf8))
        XCTAssertTrue(guest.step(until: { !listener.queue.pending.isEmpty }), "the REQUEST reached the listener")
        let stream = try XCTUnwrap(try listener.accept() as? VsockStream)
        let reply = readAvailable(client, count: 3, timeout: 2).bytes
        XCTAssertEqual(String(decoding: reply.prefix(3), as: UTF8.self), "OK ", "the guest's RESPONSE answered the client")
        var rest = reply
        while rest.last != UInt8(ascii: "\n") {
            let more = readAvailable(client, count: 1, timeout: 2)
            guard !more.bytes.isEmpty else { break }
            rest += more.bytes
        }
        return (stream, client, listener)
    }

    func pattern(_ count: Int, seed: UInt32) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: (UInt32($0) &* 2654435761 &+ seed) >> 13) }
    }

    func testBringUpReadsTheCIDAndPostsReceiveBuffers() throws {
        let guest = try bringUp()
        XCTAssertEqual(guest.driver.guestCID, VsockDriverDeviceTests.cid, "from the config space (§5.10.4)")
        XCTAssertEqual(DeviceStatus(rawValue: guest.transport.registers.deviceStatus),
                       [.acknowledge, .driver, .featuresOK, .driverOK])
        XCTAssertEqual(guest.transport.rings.keys.sorted(), [0, 1, 2])
        let rx = try XCTUnwrap(guest.transport.rings[VsockDevice.rxQueue])
        XCTAssertEqual(rx.queue.size, 64)
        XCTAssertFalse(guest.driver.failed)
    }

    func testHostClientToGuestListenerBothWaysAndOrderlyClose() throws {
        let guest = try bringUp()
        let (stream, client, listener) = try connect(guest)
        defer { close(client) }
        XCTAssertEqual(guest.device.connectionCount, 1)

        // Host → guest.
        writeAll(client, Array("ping from the host".utf8))
        XCTAssertTrue(guest.step(until: { stream.connection.readable >= 18 }))
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = try buffer.withUnsafeMutableBytes { try stream.read(into: $0) }
        XCTAssertEqual(Array(buffer[..<count]), Array("ping from the host".utf8))

        // Guest → host.
        let pong = Array("pong from the guest".utf8)
        XCTAssertEqual(try pong.withUnsafeBytes { try stream.write($0) }, pong.count)
        guest.step()
        XCTAssertEqual(readAvailable(client, count: pong.count).bytes, pong)

        // The host finishes sending: the guest reads end-of-stream (SHUTDOWN(SEND) came).
        shutdown(client, Int32(SHUT_WR))
        XCTAssertTrue(guest.step(until: { stream.connection.isReceiveFinished }))
        XCTAssertEqual(try buffer.withUnsafeMutableBytes { try stream.read(into: $0) }, 0)
        // The guest closes: SHUTDOWN(both), the device closes the host socket.
        stream.close()
        XCTAssertTrue(guest.step(until: { guest.device.connectionCount == 0 }))
        guest.step()  // the device's RST to the guest
        XCTAssertTrue(readAvailable(client, timeout: 2).eof, "the client sees the connection end")
        XCTAssertTrue(guest.sockets.streams.isEmpty)
        listener.close()

        XCTAssertFalse(guest.driver.failed)
        XCTAssertGreaterThan(guest.transport.interruptsRaised, 0)
        XCTAssertFalse(guest.transport.interruptPending, "every interrupt was taken and acknowledged")
        XCTAssertFalse(guest.transport.rings.values.contains { $0.isBroken }, "the driver kept to the ring protocol")
        XCTAssertEqual(logged, [], "the device saw nothing to complain about")
    }

    /// 1 MiB from a host client to the guest: the device never sends beyond the guest's
    /// 64 KiB window, and waits for the guest's credit when the window is full.
    func testHostToGuestTransferRespectsTheGuestsCredit() throws {
        let guest = try bringUp()
        let (stream, client, _) = try connect(guest)
        defer { close(client) }
        let payload = pattern(1 << 20, seed: 5)
        let writer = DispatchGroup()
        DispatchQueue.global().async(group: writer) { writeAll(client, payload) }
        defer { shutdown(client, Int32(SHUT_RDWR)); writer.wait() }

        let window = Int(stream.connection.credit.bufAlloc)
        XCTAssertEqual(window, 64 * 1024)
        var received: [UInt8] = []
        var mostBuffered = 0
        var deviceWaitedForCredit = false
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        let end = VsockDevice.now() + 20
        while received.count < payload.count && VsockDevice.now() < end {
            let before = stream.connection.readable
            guest.step()
            let buffered = stream.connection.readable
            mostBuffered = max(mostBuffered, buffered)
            XCTAssertLessThanOrEqual(buffered, window, "the device sent beyond the guest's credit")
            // The device's view of the guest's window: used up, with more of the 1 MiB to come.
            if let bridged = guest.device.connections.values.first,
               bridged.credit.peerFree == 0 && received.count + buffered < payload.count {
                deviceWaitedForCredit = true
            }
            // Let the window fill before the service reads, so the credit is what stops the device.
            guard buffered == window || (buffered > 0 && buffered == before) else { continue }
            while stream.connection.readable > 0 {
                let n = try buffer.withUnsafeMutableBytes { try stream.read(into: $0) }
                received += buffer[..<n]
            }
        }
        XCTAssertEqual(received.count, payload.count)
        XCTAssertTrue(received == payload, "the bytes arrived whole and in order")
        XCTAssertEqual(mostBuffered, window, "the device filled the guest's window")
        XCTAssertTrue(deviceWaitedForCredit, "the device held data back for want of credit")
        XCTAssertNil(stream.connection.closeReason)
        XCTAssertEqual(logged, [])
    }

    /// 1 MiB from the guest to a host client: the guest never writes beyond the host's
    /// 256 KiB window (the device would reset the connection), and waits for its credit.
    func testGuestToHostTransferRespectsTheHostsCredit() throws {
        let guest = try bringUp()
        let (stream, client, _) = try connect(guest)
        defer { close(client) }
        let payload = pattern(1 << 20, seed: 11)
        nonisolated(unsafe) var arrived: [UInt8] = []
        let reader = DispatchGroup()
        DispatchQueue.global().async(group: reader) {
            arrived = readAvailable(client, count: payload.count, timeout: 20).bytes
        }

        XCTAssertEqual(stream.connection.credit.peerBufAlloc, BridgedConnection.bufferSize)
        var sent = 0
        var waitedForCredit = false
        let end = VsockDevice.now() + 20
        while sent < payload.count && VsockDevice.now() < end {
            let free = Int(stream.connection.credit.peerFree)
            if free == 0 {
                waitedForCredit = true
            } else {
                let n = try payload[sent...].withUnsafeBytes { try stream.write($0) }
                XCTAssertLessThanOrEqual(n, free, "the guest wrote beyond the host's credit")
                sent += n
                // The window is used up: nothing more goes until the host's CREDIT_UPDATE.
                if stream.connection.credit.peerFree == 0 && sent < payload.count { waitedForCredit = true }
            }
            guest.step()
        }
        XCTAssertEqual(sent, payload.count)
        XCTAssertTrue(guest.step(until: { guest.device.connections.values.first?.pendingToHost == 0 }))
        reader.wait()
        XCTAssertEqual(arrived.count, payload.count)
        XCTAssertTrue(arrived == payload, "the bytes arrived whole and in order")
        XCTAssertTrue(waitedForCredit, "the guest ran out of credit and waited for the host's update")
        XCTAssertEqual(guest.device.connectionCount, 1, "the device never reset the connection")
        XCTAssertNil(stream.connection.closeReason)
        XCTAssertEqual(logged, [])
    }

    /// The guest-initiated direction (hostping's): the guest's REQUEST to the host CID makes
    /// the device connect to `<uds>_<port>` (Firecracker's convention) and answer RESPONSE;
    /// bytes go both ways; the guest's close ends the host socket. `connect` is its two
    /// halves here (`request`, then `settle` once the state moved), as its wait needs the
    /// scheduler.
    func testGuestConnectsToAHostListenerBothWaysAndCloses() throws {
        let guest = try bringUp()
        let port: UInt32 = 5000
        let hostListener = try Posix.listenUnix(path: "\(uds)_\(port)")
        defer { close(hostListener) }

        let stream = try guest.sockets.request(cid: VsockAddress.hostCID, port: port)
        XCTAssertEqual(stream.connection.state, .connecting)
        XCTAssertTrue(guest.step(until: { stream.connection.state != .connecting }), "the device answered the REQUEST")
        XCTAssertTrue(try guest.sockets.settle(stream) === stream)
        XCTAssertEqual(guest.device.connectionCount, 1)
        var server: Int32 = -1
        for _ in 0..<200 where server < 0 {
            server = Posix.accept(hostListener) ?? -1
            if server < 0 { usleep(5_000) }
        }
        XCTAssertGreaterThanOrEqual(server, 0, "the device connected to \(uds)_\(port)")
        defer { if server >= 0 { close(server) } }

        // Guest → host.
        let hello = Array("hello from the guest".utf8)
        XCTAssertEqual(try hello.withUnsafeBytes { try stream.write($0) }, hello.count)
        guest.step()
        XCTAssertEqual(readAvailable(server, count: hello.count, timeout: 2).bytes, hello)

        // Host → guest.
        let answer = Array("hello from the host".utf8)
        writeAll(server, answer)
        XCTAssertTrue(guest.step(until: { stream.connection.readable >= answer.count }))
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = try buffer.withUnsafeMutableBytes { try stream.read(into: $0) }
        XCTAssertEqual(Array(buffer[..<count]), answer)

        // The guest closes: the device closes the host socket.
        stream.close()
        XCTAssertTrue(guest.step(until: { guest.device.connectionCount == 0 }))
        guest.step()
        XCTAssertTrue(readAvailable(server, timeout: 2).eof, "the host side sees the connection end")
        XCTAssertTrue(guest.sockets.streams.isEmpty)
        XCTAssertFalse(guest.driver.failed)
        XCTAssertFalse(guest.transport.rings.values.contains { $0.isBroken })
        XCTAssertEqual(logged, [])
    }

    /// A guest connect to a port no host program serves is refused at once (the device's
    /// RST), not left to time out; the guest forgets the stream.
    func testGuestConnectToAPortNobodyServesIsRefused() throws {
        let guest = try bringUp()
        let stream = try guest.sockets.request(cid: VsockAddress.hostCID, port: 5001)
        XCTAssertTrue(guest.step(until: { stream.connection.state != .connecting }, seconds: 2),
                      "the refusal came without waiting for the connect timeout")
        XCTAssertThrowsError(try guest.sockets.settle(stream)) {
            XCTAssertEqual($0 as? SocketError, .connectionRefused)
        }
        XCTAssertTrue(guest.sockets.streams.isEmpty)
        XCTAssertEqual(guest.device.connectionCount, 0)
        XCTAssertFalse(guest.driver.failed)
        XCTAssertEqual(logged, [])
    }
}
