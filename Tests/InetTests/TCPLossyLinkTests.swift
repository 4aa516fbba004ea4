import Inet
import TestSupport
import Wire
import XCTest

/// Two of Toro's stacks over a virtual link that drops, duplicates, reorders and delays
/// datagrams, on a virtual clock: the whole machine (retransmission, fast retransmit,
/// out-of-order runs, windows, close) moving data both ways intact.
final class TCPLossyLinkTests: XCTestCase {
    /// One direction of the link: datagrams in flight with their arrival times.
    final class Link: IPv4Output {
        let localAddress: IPv4Address
        let maximumPayload = 1480
        var rng: RNG
        var dropPercent: Int
        var duplicatePercent: Int
        var reorderPercent: Int
        let delay: UInt64
        var inFlight: [(at: UInt64, bytes: [UInt8])] = []
        var dropped = 0, duplicated = 0, reordered = 0

        init(from address: IPv4Address, seed: UInt64, drop: Int, duplicate: Int, reorder: Int, delay: UInt64) {
            localAddress = address
            rng = RNG(seed: seed)
            dropPercent = drop
            duplicatePercent = duplicate
            reorderPercent = reorder
            self.delay = delay
        }

        func sendIPv4(to destination: IPv4Address, protocol proto: IPProtocol, payloadLength: Int, now: UInt64,
                      fill: (UnsafeMutableRawBufferPointer) -> Void) -> Bool {
            var bytes = [UInt8](repeating: 0, count: payloadLength)
            bytes.withUnsafeMutableBytes { fill($0) }
            if rng.below(100) < dropPercent { dropped += 1; return true }
            var at = now + delay
            if rng.below(100) < reorderPercent { at += delay * 3; reordered += 1 }
            inFlight.append((at, bytes))
            if rng.below(100) < duplicatePercent {
                inFlight.append((at + delay, bytes))
                duplicated += 1
            }
            return true
        }

        /// Delivers what has arrived by `now` to `stack`.
        func deliver(to stack: TCPStack, now: UInt64) {
            let due = inFlight.filter { $0.at <= now }.sorted { $0.at < $1.at }
            inFlight.removeAll { $0.at <= now }
            for datagram in due {
                datagram.bytes.withUnsafeBytes { stack.receive(from: localAddress, to: stack.output.localAddress, payload: $0, now: now) }
            }
        }
    }

    private func transfer(bytes count: Int, drop: Int, duplicate: Int, reorder: Int, seed: UInt64,
                          file: StaticString = #filePath, line: UInt = #line) {
        let serverAddress = IPv4Address(10, 0, 3, 15), clientAddress = IPv4Address(10, 0, 3, 1)
        let toServer = Link(from: clientAddress, seed: seed, drop: drop, duplicate: duplicate, reorder: reorder, delay: 2_000_000)
        let toClient = Link(from: serverAddress, seed: seed &+ 1, drop: drop, duplicate: duplicate, reorder: reorder, delay: 2_000_000)
        let server = TCPStack(output: toClient, secret: 1)
        let client = TCPStack(output: toServer, secret: 2)
        let passive = server.listen(port: 7, maximumHalfOpen: 4)!
        var now: UInt64 = 0
        let outgoing = pattern(count, seed: 3), incoming = pattern(count, seed: 11)
        let clientSide = client.connect(to: TCPEndpoint(serverAddress, 7), now: now)!
        var serverSide: TCPConnection?
        var clientSent = 0, serverSent = 0
        var clientGot: [UInt8] = [], serverGot: [UInt8] = []
        var scratch = [UInt8](repeating: 0, count: 8192)
        let step: UInt64 = 1_000_000
        while now < 3_600_000_000_000 {
            now += step
            toServer.deliver(to: server, now: now)
            toClient.deliver(to: client, now: now)
            if serverSide == nil { serverSide = passive.takeEstablished() }
            // Each side writes what fits, reads what came, and closes when done.
            if clientSide.isSendOpen && clientSent < count {
                clientSent += outgoing[clientSent...].withUnsafeBytes { clientSide.write($0, now: now) }
                if clientSent == count { clientSide.shutdownSending(now: now) }
            }
            if let s = serverSide {
                if s.isSendOpen && serverSent < count {
                    serverSent += incoming[serverSent...].withUnsafeBytes { s.write($0, now: now) }
                    if serverSent == count { s.shutdownSending(now: now) }
                }
                let n = scratch.withUnsafeMutableBytes { s.read(into: $0, now: now) }
                serverGot += scratch[0 ..< n]
            }
            let n = scratch.withUnsafeMutableBytes { clientSide.read(into: $0, now: now) }
            clientGot += scratch[0 ..< n]
            if now % 5_000_000 == 0 {
                server.tick(now: now)
                client.tick(now: now)
            }
            if clientSide.isReceiveFinished && (serverSide?.isReceiveFinished ?? false)
                && clientSide.unacknowledged == 0 && (serverSide?.unacknowledged ?? 1) == 0 { break }
        }
        XCTAssertEqual(serverGot.count, count, "client to server", file: file, line: line)
        XCTAssertTrue(serverGot == outgoing, "client to server: the bytes arrived intact and in order", file: file, line: line)
        XCTAssertEqual(clientGot.count, count, "server to client", file: file, line: line)
        XCTAssertTrue(clientGot == incoming, "server to client: intact and in order", file: file, line: line)
        for side in [clientSide, serverSide] {
            XCTAssertTrue([TCPCloseReason.none, .finished].contains(side?.closeReason ?? .aborted), "nobody gave up or reset", file: file, line: line)
        }
        if drop > 0 {
            XCTAssertGreaterThan(toServer.dropped + toClient.dropped, 0, file: file, line: line)
            let retransmitted = clientSide.counters.retransmissions + clientSide.counters.fastRetransmits
                + (serverSide?.counters.retransmissions ?? 0) + (serverSide?.counters.fastRetransmits ?? 0)
            XCTAssertGreaterThan(retransmitted, 0, file: file, line: line)
        }
        print("lossy link \(drop)/\(duplicate)/\(reorder)%: \(count) bytes each way in \(Double(now) / 1e9) s virtual;",
              "dropped \(toServer.dropped + toClient.dropped), duplicated \(toServer.duplicated + toClient.duplicated),",
              "reordered \(toServer.reordered + toClient.reordered); client timeouts \(clientSide.counters.timeouts),",
              "fast retransmits \(clientSide.counters.fastRetransmits)")
    }

    func testACleanLinkMovesAMegabyteBothWays() {
        transfer(bytes: 1 << 20, drop: 0, duplicate: 0, reorder: 0, seed: 1)
    }

    func testALossyLinkMovesAMegabyteBothWaysIntact() {
        transfer(bytes: 1 << 20, drop: 3, duplicate: 2, reorder: 3, seed: 7)
    }

    func testAVeryLossyLinkStillDelivers() {
        transfer(bytes: 256 << 10, drop: 15, duplicate: 5, reorder: 10, seed: 99)
    }
}
