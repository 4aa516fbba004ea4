// The vsock device against a simulated guest (VirtIO's SplitVirtqueue over fake memory) and
// real host sockets in a temporary directory (virtio 1.2 §5.10.6; Firecracker docs/vsock.md).
import VirtIO
import Wire
import XCTest
import TestSupport
import Glibc
@testable import VhostUser

/// A temporary folder for the device's Unix sockets (`uds`), removed afterwards, and the
/// back-end's log captured: what every vsock device test starts from.
class VsockDeviceTestCase: XCTestCase {
    var directory = ""
    var log: LogCapture!

    override func setUp() {
        directory = temporaryDirectory()
        log = LogCapture()
    }

    override func tearDown() {
        log.stop()
        removeDirectory(directory)
    }

    var uds: String { directory + "/v.sock" }
}

final class VsockDeviceTests: VsockDeviceTestCase {

    func makeGuest() throws -> (VsockDevice, SimulatedGuest) {
        let device = VsockDevice(guestCID: guestCID, udsPath: uds)
        try device.listenHybrid()
        return (device, try SimulatedGuest(device: device))
    }

    func testConfigSpaceIsTheGuestCID() {
        let device = VsockDevice(guestCID: 0x1234_5678_9a, udsPath: nil)
        XCTAssertEqual(device.readConfig(offset: 0, size: 8), [0x9a, 0x78, 0x56, 0x34, 0x12, 0, 0, 0])
        XCTAssertEqual(device.readConfig(offset: 4, size: 8), [0x12, 0, 0, 0, 0, 0, 0, 0])
    }

    /// Guest REQUEST to CID 2 port P → connects to `<uds>_P`; data both ways; clean close.
    func testGuestConnectsToHostUnixSocket() throws {
        let (device, guest) = try makeGuest()
        let listener = try Posix.listenUnix(path: uds + "_5000")
        defer { close(listener) }
        try guest.postRX(8)

        try guest.send(.request, from: 1111, to: 5000)
        let accepted = try XCTUnwrap(Posix.accept(listener), "the back-end connected to <uds>_5000")
        defer { close(accepted) }
        let response = try guest.receive()
        XCTAssertEqual(response.map(\.header.op), [.response])
        XCTAssertEqual(response.first?.header.source, VsockAddress(cid: 2, port: 5000))
        XCTAssertEqual(response.first?.header.destination, VsockAddress(cid: guestCID, port: 1111))
        XCTAssertEqual(response.first?.header.bufAlloc, BridgedConnection.bufferSize)
        XCTAssertGreaterThan(guest.interrupts, 0, "the guest was interrupted")

        try guest.send(.rw, from: 1111, to: 5000, payload: Array("hello".utf8))
        XCTAssertEqual(readAvailable(accepted, count: 5).bytes, Array("hello".utf8))

        writeAll(accepted, Array("world".utf8))
        pump(device)
        let data = try guest.receive()
        XCTAssertEqual(data.map(\.header.op), [.rw])
        XCTAssertEqual(data.first?.payload, Array("world".utf8))

        try guest.send(.shutdown, from: 1111, to: 5000, flags: VsockShutdown.both.rawValue, fwdCnt: 5)
        XCTAssertTrue(readAvailable(accepted).eof, "the host socket is closed")
        XCTAssertEqual(try guest.receive().map(\.header.op), [.rst], "a clean disconnect is answered by RST")
        XCTAssertEqual(device.connectionCount, 0)
    }

    func testGuestConnectToMissingPortIsReset() throws {
        let (_, guest) = try makeGuest()
        try guest.postRX(2)
        try guest.send(.request, from: 1111, to: 6000)
        let packets = try guest.receive()
        XCTAssertEqual(packets.map(\.header.op), [.rst])
        XCTAssertEqual(packets.first?.header.destination.port, 1111)
    }

    func testPacketForUnknownConnectionIsReset() throws {
        let (_, guest) = try makeGuest()
        try guest.postRX(2)
        try guest.send(.rw, from: 1, to: 2, payload: [1, 2, 3])
        try guest.send(.rst, from: 1, to: 2)
        XCTAssertEqual(try guest.receive().map(\.header.op), [.rst], "RW answered by RST, RST by nothing")
    }

    /// A hybrid client's CONNECT → REQUEST on the guest's rx queue; RESPONSE → `OK <port>\n`.
    func testHybridConnectReachesTheGuest() throws {
        let (device, guest) = try makeGuest()
        try guest.postRX(8)
        let client = try unixClient(uds)
        defer { close(client) }
        writeAll(client, Array("CONNECT 1234\n".utf8))
        pump(device)
        let request = try XCTUnwrap(try guest.receive().first)
        XCTAssertEqual(request.header.op, .request)
        XCTAssertEqual(request.header.source.cid, 2)
        XCTAssertEqual(request.header.destination, VsockAddress(cid: guestCID, port: 1234))
        let localPort = request.header.source.port
        XCTAssertGreaterThanOrEqual(localPort, 1 << 30)

        try guest.send(.response, from: 1234, to: localPort)
        XCTAssertEqual(String(decoding: readAvailable(client, count: 20, timeout: 0.3).bytes, as: UTF8.self),
                       "OK \(localPort)\n")

        writeAll(client, Array("ping".utf8))
        pump(device)
        XCTAssertEqual(try guest.receive().map(\.payload), [Array("ping".utf8)])
        try guest.send(.rw, from: 1234, to: localPort, payload: Array("pong".utf8))
        XCTAssertEqual(readAvailable(client, count: 4).bytes, Array("pong".utf8))

        // The guest closes: the client sees EOF.
        try guest.send(.rst, from: 1234, to: localPort)
        XCTAssertTrue(readAvailable(client).eof)
    }

    func testHybridConnectRefusedByGuestClosesSilently() throws {
        let (device, guest) = try makeGuest()
        try guest.postRX(4)
        let client = try unixClient(uds)
        defer { close(client) }
        writeAll(client, Array("CONNECT 99\n".utf8))
        pump(device)
        let request = try XCTUnwrap(try guest.receive().first)
        try guest.send(.rst, from: 99, to: request.header.source.port)
        let (bytes, eof) = readAvailable(client)
        XCTAssertEqual(bytes, [], "a refused connect returns nothing")
        XCTAssertTrue(eof)
    }

    func testBadHandshakeClosesTheClient() throws {
        let (device, _) = try makeGuest()
        let client = try unixClient(uds)
        defer { close(client) }
        writeAll(client, Array("HELLO 1\n".utf8))
        pump(device)
        XCTAssertTrue(readAvailable(client).eof)
        XCTAssertTrue(log.contains("expected 'CONNECT <port>'"), "\(log.lines)")
    }

    /// Host → guest data never exceeds the guest's advertised credit.
    func testHostToGuestRespectsGuestCredit() throws {
        let (device, guest) = try makeGuest()
        try guest.postRX(16)
        let client = try unixClient(uds)
        defer { close(client) }
        writeAll(client, Array("CONNECT 7\n".utf8))
        pump(device)
        let port = try XCTUnwrap(try guest.receive().first).header.source.port
        try guest.send(.response, from: 7, to: port, bufAlloc: 100)
        _ = readAvailable(client, count: 20, timeout: 0.2)

        writeAll(client, [UInt8](repeating: 0x41, count: 1000))
        pump(device)
        var packets = try guest.receive()
        XCTAssertEqual(packets.filter { $0.header.op == .rw }.reduce(0) { $0 + $1.payload.count }, 100)
        XCTAssertTrue(packets.contains { $0.header.op == .creditRequest }, "asks for credit when it runs out")

        try guest.send(.creditUpdate, from: 7, to: port, bufAlloc: 100, fwdCnt: 100)
        pump(device)
        packets = try guest.receive()
        XCTAssertEqual(packets.filter { $0.header.op == .rw }.reduce(0) { $0 + $1.payload.count }, 100)

        try guest.send(.creditUpdate, from: 7, to: port, bufAlloc: 10_000, fwdCnt: 200)
        pump(device)
        packets = try guest.receive()
        XCTAssertEqual(packets.filter { $0.header.op == .rw }.reduce(0) { $0 + $1.payload.count }, 800)
    }

    /// A guest that sends beyond the buf_alloc we advertised is reset.
    func testGuestBeyondOurCreditIsReset() throws {
        let (_, guest) = try makeGuest()
        let listener = try Posix.listenUnix(path: uds + "_5001")
        defer { close(listener) }
        try guest.postRX(1)
        try guest.send(.request, from: 10, to: 5001)
        XCTAssertEqual(try guest.receive().map(\.header.op), [.response])
        // No rx buffers now: our fwd_cnt cannot be re-advertised, so 256 KiB is the limit.
        let chunk = [UInt8](repeating: 7, count: 64 * 1024)
        for _ in 0..<5 { try guest.send(.rw, from: 10, to: 5001, payload: chunk) }
        try guest.postRX(8)
        let ops = try guest.receive().map(\.header.op)
        XCTAssertTrue(ops.contains(.rst), "\(ops)")
        XCTAssertTrue(log.contains("beyond its credit"), "\(log.lines)")
    }

    func testMalformedTxPacketsAreDroppedAndLaterOnesServed() throws {
        let (_, guest) = try makeGuest()
        try guest.postRX(8)
        try guest.sendBytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])                  // too short for a header
        var header = VsockHeader(source: VsockAddress(cid: guestCID, port: 1), destination: VsockAddress(cid: 2, port: 2),
                                 op: .rw, length: 500)
        try guest.sendBytes(encode(header) + [1, 2, 3])                        // len beyond the chain
        header.length = 0
        header.op = .request
        header.type = 9
        try guest.sendBytes(encode(header))                                    // unknown type: RST
        header.type = VsockHeader.typeStream
        header.source.cid = 77
        try guest.sendBytes(encode(header))                                    // spoofed source CID
        XCTAssertEqual(try guest.receive().map(\.header.op), [.rst])
        XCTAssertTrue(log.contains("truncatedHeader"), "\(log.lines)")
        XCTAssertTrue(log.contains("truncatedPayload"), "\(log.lines)")
        XCTAssertTrue(log.contains("from CID 77"), "\(log.lines)")

        // A header split over two descriptors is still read.
        header.source.cid = guestCID
        header.op = .rst
        try guest.sendBytes(encode(header), segments: [10, 34])
        try guest.send(.rw, from: 3, to: 4)
        XCTAssertEqual(try guest.receive().map(\.header.op), [.rst])
    }

    /// Found by Fuzz/VsockDevice: an RST answering a packet of unknown type took its source
    /// from the packet's destination, so a guest could make the device speak as any CID.
    func testUndecodablePacketToAnotherCIDIsNotAnswered() throws {
        let (_, guest) = try makeGuest()
        try guest.postRX(4)
        var header = VsockHeader(source: VsockAddress(cid: guestCID, port: 1), destination: VsockAddress(cid: 0, port: 2),
                                 op: .request)
        header.type = 9
        try guest.sendBytes(encode(header))
        XCTAssertEqual(try guest.receive(), [], "no packet claiming to come from CID 0")
        header.destination.cid = VsockAddress.hostCID
        try guest.sendBytes(encode(header))
        XCTAssertEqual(try guest.receive().map(\.header.source.cid), [VsockAddress.hostCID], "the host's own RST")
    }

    func testRxBufferTooSmallForAHeaderIsReturnedEmpty() throws {
        let (_, guest) = try makeGuest()
        try guest.postRX(1, size: 20)
        try guest.send(.request, from: 1, to: 6001)
        XCTAssertEqual(try guest.receive(), [])
        XCTAssertTrue(log.contains("too small for a header"), "\(log.lines)")
        try guest.postRX(1)
        XCTAssertEqual(try guest.receive().map(\.header.op), [.rst], "the packet waited for a usable buffer")
    }

    /// A guest that scribbles on its rings breaks the queue; the device logs and carries on.
    func testBrokenRingIsLoggedNotFatal() throws {
        let (_, guest) = try makeGuest()
        guest.tx.memory.poke(UInt16(500), at: guest.tx.layout.availRing + VirtqueueFormat.ringIndex)
        guest.device.kicked(index: VsockDevice.txQueue)
        XCTAssertTrue(guest.txRing.isBroken)
        XCTAssertTrue(log.contains("tx queue broken by the guest"), "\(log.lines)")
        guest.device.kicked(index: VsockDevice.txQueue)
        XCTAssertEqual(log.lines.filter { $0.contains("broken") }.count, 1, "logged once")
    }

    /// `--forward`: each TCP client becomes a connection to the guest port.
    func testTCPForwardBridgesConnections() throws {
        let device = VsockDevice(guestCID: guestCID, udsPath: nil)
        let guest = try SimulatedGuest(device: device)
        var port: UInt16 = 0
        for candidate in UInt16(41000)...UInt16(41100) {
            if (try? device.listenForward(VsockForward(hostPort: candidate, guestPort: 80))) != nil { port = candidate; break }
        }
        XCTAssertNotEqual(port, 0, "found a free TCP port")
        try guest.postRX(16)
        let clients = (0..<3).map { _ in tcpClient(port) }
        defer { clients.forEach { close($0) } }
        pump(device)
        let requests = try guest.receive()
        XCTAssertEqual(requests.map(\.header.op), [.request, .request, .request])
        XCTAssertEqual(Set(requests.map(\.header.destination.port)), [80])
        XCTAssertEqual(Set(requests.map(\.header.source.port)).count, 3, "distinct local ports")
        // The bridged TCP sockets send each guest write at once (no Nagle delay).
        for connection in device.connections.values {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            XCTAssertEqual(getsockopt(connection.fd, Int32(IPPROTO_TCP), TCP_NODELAY, &value, &length), 0)
            XCTAssertEqual(value, 1, "TCP_NODELAY on the bridged socket")
        }
        for (index, request) in requests.enumerated() {
            try guest.send(.response, from: 80, to: request.header.source.port)
            try guest.send(.rw, from: 80, to: request.header.source.port, payload: Array("reply \(index)".utf8))
        }
        let replies = clients.map { String(decoding: readAvailable($0, count: 7).bytes, as: UTF8.self) }
        XCTAssertEqual(Set(replies), ["reply 0", "reply 1", "reply 2"], "no OK line on TCP forwards")
    }

    /// VhostUserServer sees the hybrid listener and a handshake's deadline through
    /// HostSidePoller.
    func testHostSideIsPolledThroughHostSidePoller() throws {
        let (device, _) = try makeGuest()
        func polled<Host: HostSidePoller>(_ host: Host) -> (count: Int, deadline: Double?) {
            (host.pollEntries().count, host.nextDeadline)
        }
        XCTAssertEqual(polled(device).count, 1, "the hybrid listener")
        XCTAssertNil(polled(device).deadline)
        let client = try unixClient(uds)
        defer { close(client) }
        pump(device)
        XCTAssertEqual(polled(device).count, 2, "the listener and the client's handshake")
        XCTAssertNotNil(polled(device).deadline, "the handshake's CONNECT deadline")
    }

    /// A host-initiated connection the guest never answers times out; its REQUEST, never
    /// delivered, is withdrawn.
    func testUnansweredConnectTimesOut() throws {
        let (device, guest) = try makeGuest()
        device.connectTimeout = 0.1
        let client = try unixClient(uds)
        defer { close(client) }
        writeAll(client, Array("CONNECT 5\n".utf8))
        pump(device, quiet: 0.3)
        XCTAssertTrue(readAvailable(client).eof)
        XCTAssertEqual(device.connectionCount, 0)
        try guest.postRX(4)
        XCTAssertEqual(try guest.receive(), [], "nothing for a connection that is gone")
    }

    /// The host closing its side becomes SHUTDOWN(SEND) after the data.
    func testHostEOFBecomesShutdownAfterData() throws {
        let (device, guest) = try makeGuest()
        let listener = try Posix.listenUnix(path: uds + "_5002")
        defer { close(listener) }
        try guest.postRX(8)
        try guest.send(.request, from: 20, to: 5002)
        let accepted = try XCTUnwrap(Posix.accept(listener))
        _ = try guest.receive()
        writeAll(accepted, Array("bye".utf8))
        close(accepted)
        pump(device)
        let packets = try guest.receive()
        XCTAssertEqual(packets.map(\.header.op), [.rw, .shutdown])
        XCTAssertEqual(packets.last?.header.flags, VsockShutdown.send.rawValue)
    }
}
