// Tier 2: connections come and go without a trace, and a port nobody listens on is refused,
// through `-p` on legacy (QEMU's user networking, virtio-net, Toro's own TCP/IP; issue 12).
//
//   * 2,000 sequential connections to kv, each one `GET` and then closed by the client
//     (so the guest's side ends in LAST-ACK, not TIME-WAIT): the heap figures of the idle
//     report after one more connection equal those after the same probe before the 2,000.
//   * A forward to a guest port nobody listens on: slirp accepts the host's connection
//     before the guest has answered (DESIGN.md, "Legacy I/O facts"), then the guest's RST
//     makes slirp close it: the client sees the end of the stream or a reset within a few
//     seconds, not a hang; kv goes on serving, and the guest logs nothing alarming.
//
// The helpers take the platform, so the same checks can run on microvm.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ToroTool

final class SequentialConnectionBootTests: XCTestCase {
    static let connections = 2000

    func testLegacyTwoThousandSequentialConnectionsLeaveTheHeapAsItWas() throws {
        try sequentialConnectionsLeaveTheHeapAsItWas(on: .legacy)
    }

    func testMicroVMTwoThousandSequentialConnectionsLeaveTheHeapAsItWas() throws {
        try sequentialConnectionsLeaveTheHeapAsItWas(on: .microvm)
    }

    func sequentialConnectionsLeaveTheHeapAsItWas(on platform: GuestPlatform) throws {
        guard Harness.preflight(), let guest = KVGuest.boot(on: platform) else { return }
        defer { KVGuest.stop(guest) }
        let dump = { KVGuest.describe(guest) }
        let port = guest.port

        /// One connection: a GET, then the client closes.
        func visit(_ index: Int) throws {
            let client = try KVClient.connect(port: port, within: 10, timeout: 30)
            let reply = try client.request("GET key\(index % 10)")
            client.close()
            if reply != "NOT_FOUND" { XCTFail("connection \(index): GET got '\(reply)'\n" + dump()) }
        }
        /// A quiet moment, one more connection, and the idle report that follows it.
        func probe() throws -> KVIdleReport? { try KVGuest.settledReport(guest, platform: platform, dump: dump) }

        // Warm-up: whatever the first connections allocate for good (the ARP entry, the
        // listener's tables) is there before the baseline is taken.
        for index in 0..<20 { try visit(index) }
        guard let before = try probe() else { return }
        let begin = Date()
        for index in 0..<Self.connections { try visit(index) }
        let seconds = Date().timeIntervalSince(begin)
        print("sequential connections (\(platform)): \(Self.connections) in \(String(format: "%.1f", seconds)) s")
        guard let after = try probe() else { return }
        XCTAssertEqual(after, before, "\(Self.connections) connections left memory behind\n" + dump())
        XCTAssertNil(guest.termination, dump())
    }

    func testLegacyAPortNobodyListensOnIsRefusedAtOnce() throws {
        try aPortNobodyListensOnIsRefusedAtOnce(on: .legacy)
    }

    func testMicroVMAPortNobodyListensOnIsRefusedAtOnce() throws {
        try aPortNobodyListensOnIsRefusedAtOnce(on: .microvm)
    }

    func aPortNobodyListensOnIsRefusedAtOnce(on platform: GuestPlatform) throws {
        guard Harness.preflight(), let closedPort = KVClient.freePort() else { return }
        guard let guest = ServiceGuest.boot(service: "kv", platform: platform, arguments: ["-p", "\(closedPort):81"],
                                            port: true) else { return }
        defer { KVGuest.stop(guest) }
        let dump = { KVGuest.describe(guest) }
        for attempt in 0..<3 {
            let begin = Date()
            let outcome: String
            do throws(KVClientError) {
                // slirp (legacy) accepts first; microvm's toro-vsock may too.
                let client = try KVClient(port: closedPort, timeout: 10)
                defer { client.close() }
                try client.send(Array("GET a\n".utf8))
                outcome = try client.readLine().map { "a reply: \($0)" } ?? "end of stream"
            } catch {
                outcome = "\(error)"
            }
            let seconds = Date().timeIntervalSince(begin)
            print("refused port (\(platform)), attempt \(attempt): \(outcome) after \(String(format: "%.2f", seconds)) s")
            XCTAssertTrue(outcome == "end of stream" || outcome == "\(KVClientError.closed)" || outcome.hasPrefix("cannot connect"),
                          "port 81: \(outcome)\n" + dump())
            XCTAssertLessThan(seconds, 5, "port 81 took \(seconds) s to refuse\n" + dump())
        }
        // The service is still there, and nothing alarming was logged.
        let kv = try KVClient.connect(port: guest.port, within: 10, timeout: 30)
        XCTAssertEqual(try kv.request("SET a 1"), "OK", dump())
        kv.close()
        XCTAssertNil(guest.termination, dump())
        XCTAssertEqual(LossyLinkBootTests.alarming(guest.outputLines), [], dump())
    }
}
