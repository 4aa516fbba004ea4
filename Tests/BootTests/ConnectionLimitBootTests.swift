// Tier 2: connections are a budget (Core/Network/ConnectionLimits.swift). Under TCG with
// 64 MiB, the defaults:
//
//   * 2,000 idle connections to kv, then to static-web: those beyond the limit are closed
//     at once (never a hang), the guest keeps running, a well-behaved client is served
//     while the flood still holds its connections, and once the flood has gone kv's heap
//     is back to the figures it had before it.
//   * With 32 MiB and a limit far above what that holds, the memory budget refuses the
//     flood instead (the defect this began with was the runtime trapping at ~660).
//   * A silent client is closed after `idle-timeout`, with one log line for the burst.
//   * A malformed limit on the kernel command line is one line and status 2.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ToroTool

final class ConnectionLimitBootTests: XCTestCase {
    static let flood = 2000

    /// Floods, checks the refusals, then runs `served` while the flood is held.
    func flood(_ guest: BackgroundProcess, served: () throws -> Void) rethrows {
        let dump = { ServiceGuest.describe(guest) }
        let begin = Date()
        HeldConnections.raiseDescriptorLimit()
        let idle = HeldConnections(port: guest.port)
        idle.open(upTo: Self.flood)
        XCTAssertEqual(idle.descriptors.count, Self.flood, "the host could not open every connection\n" + dump())
        print("connection flood: \(idle.descriptors.count) connections opened in \(String(format: "%.1f", Date().timeIntervalSince(begin))) s")
        // Refusals are RSTs at once, but each crosses toro-vsock and TCG: allow them time.
        // Wait until the count has settled (no change for 2 s): the guest has answered
        // every REQUEST toro-vsock forwarded.
        let deadline = Date().addingTimeInterval(180)
        var closed = idle.closedByPeer()
        var stableSince = Date()
        while Date() < deadline && (closed < Self.flood - 1024 || Date().timeIntervalSince(stableSince) < 2) {
            Thread.sleep(forTimeInterval: 0.5)
            let now = idle.closedByPeer()
            if now != closed { closed = now; stableSince = Date() }
        }
        print("connection flood: \(closed) closed by the guest, \(Self.flood - closed) held")
        XCTAssertGreaterThanOrEqual(closed, Self.flood - 1024, "connections beyond the limit were not refused\n" + dump())
        XCTAssertNil(guest.termination, "the guest stopped under the flood\n" + dump())
        XCTAssertTrue(guest.outputLines.contains { $0.contains("sockets: port 80 ") && ($0.contains("refusing connections") || $0.contains("at its limit")) },
                      "no refusal line\n" + dump())
        let refusalLines = guest.outputLines.filter { $0.contains("sockets: port 80 ") }
        XCTAssertLessThan(refusalLines.count, 40, "refusals must be logged once per burst, not per connection\n" + dump())
        try served()
        XCTAssertNil(guest.termination, dump())
        idle.closeAll()
    }

    func testKVSurvivesTwoThousandIdleConnectionsAndServesAWellBehavedClient() throws {
        guard Harness.preflight() else { return }
        guard let guest = ServiceGuest.boot(service: "kv", port: true) else { return }
        defer { ServiceGuest.stop(guest) }
        let dump = { ServiceGuest.describe(guest) }
        guard let before = guest.waitForLine(timeout: 30, where: { KVIdleReport.parse($0) != nil }).flatMap({ KVIdleReport.parse($0.line) }) else {
            return XCTFail("no first idle report\n" + dump())
        }
        try flood(guest) {
            let client = try KVClient.connect(port: guest.port, within: 30, timeout: 60)
            XCTAssertEqual(try client.request("GET missing"), "NOT_FOUND", dump())
            XCTAssertEqual(try client.request("QUIT"), "BYE", dump())
            client.close()
        }
        // Everyone has gone: the heap returns to the figures from before the flood.
        let mark = guest.outputLines.count
        guard let after = guest.waitForLine(from: mark, timeout: 120, where: { KVIdleReport.parse($0) != nil })
            .flatMap({ KVIdleReport.parse($0.line) }) else {
            return XCTFail("no idle report after the flood\n" + dump())
        }
        XCTAssertEqual(after, before, "the flood left memory behind\n" + dump())
    }

    func testStaticWebSurvivesTwoThousandIdleConnectionsAndServesAWellBehavedClient() throws {
        guard Harness.preflight() else { return }
        let folder = NSTemporaryDirectory() + "toro-flood-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let page = "<h1>still here</h1>\n"
        try page.write(toFile: folder + "/index.html", atomically: true, encoding: .utf8)
        guard let guest = ShareGuest.boot(service: "static-web", share: folder, port: true) else { return }
        defer { ShareGuest.stop(guest) }
        let dump = { ServiceGuest.describe(guest) }
        flood(guest) {
            var curl = Subprocess(["curl", "-sS", "--fail", "--max-time", "60", "http://127.0.0.1:\(guest.port)/"])
            curl.timeout = 90
            let fetched = curl.run()
            XCTAssertEqual(fetched.termination, .exited(0), "curl: " + Harness.describe(fetched) + "\n" + dump())
            XCTAssertEqual(fetched.output, page, dump())
        }
    }

    /// The original defect with memory as the binding limit: a connection limit far above
    /// what 32 MiB can hold, and a flood. Admission against the memory budget refuses
    /// (one `memory: low` line per burst) instead of the runtime trapping, and a good
    /// client is still served.
    func testMemoryNotTheConnectionLimitStopsAFlood() throws {
        guard Harness.preflight() else { return }
        guard let guest = ServiceGuest.boot(service: "kv", arguments: ["--memory", "32"], port: true,
                                            kernelArguments: ["max-conns=5000", "backlog=5000"]) else { return }
        defer { ServiceGuest.stop(guest) }
        let dump = { ServiceGuest.describe(guest) }
        try flood(guest) {
            // Served, though memory is short while the flood holds it: a new key may be
            // refused (`ERROR full`: the budget keeps its reserve), never a hang or a trap.
            let client = try KVClient.connect(port: guest.port, within: 30, timeout: 60)
            let set = try client.request("SET a 1")
            XCTAssertTrue(set == "OK" || set == "ERROR full", set + "\n" + dump())
            XCTAssertEqual(try client.request("GET a"), set == "OK" ? "VALUE 1" : "NOT_FOUND", dump())
            XCTAssertEqual(try client.request("QUIT"), "BYE", dump())
            client.close()
        }
        XCTAssertTrue(guest.outputLines.contains { $0.contains("memory: low (") && $0.contains("refusing new work") }, dump())
        XCTAssertFalse(guest.outputLines.contains { $0.contains("panic") || $0.contains("exception") }, dump())
        XCTAssertNil(guest.termination, dump())
    }

    func testASilentClientIsClosedAfterTheIdleTimeout() throws {
        guard Harness.preflight() else { return }
        guard let guest = ServiceGuest.boot(service: "kv", port: true, kernelArguments: ["idle-timeout=3"]) else { return }
        defer { ServiceGuest.stop(guest) }
        let dump = { ServiceGuest.describe(guest) }
        let silent = HeldConnections(port: guest.port)
        silent.open(upTo: 3)
        XCTAssertEqual(silent.descriptors.count, 3, dump())
        let talker = try KVClient.connect(port: guest.port, within: 30, timeout: 60)
        XCTAssertEqual(try talker.request("SET k v"), "OK", dump())
        Thread.sleep(forTimeInterval: 1)
        XCTAssertEqual(silent.closedByPeer(), 0, "closed before the timeout\n" + dump())
        let deadline = Date().addingTimeInterval(60)
        while silent.closedByPeer() < 3 && Date() < deadline { Thread.sleep(forTimeInterval: 0.5) }
        XCTAssertEqual(silent.closedByPeer(), 3, "silent clients still open after the idle timeout\n" + dump())
        let lines = guest.outputLines.filter { $0.contains("closing connections silent for 3 s") }
        XCTAssertEqual(lines.count, 1, "one line for the burst\n" + dump())
        XCTAssertNil(guest.termination, dump())
    }

    func testAMalformedLimitIsOneLineAndStatus2() {
        guard Harness.preflight() else { return }
        guard let port = KVClient.freePort() else { return XCTFail("no free port") }
        let result = Harness.toro(["run", "--service", "kv", "-p", "\(port):80", "--timeout", "120", "--", "max-conns=lots"], limit: 180)
        let dump = Harness.describe(result)
        XCTAssertEqual(result.termination, .exited(2), dump)
        XCTAssertTrue(result.output.contains("kv: kernel argument max-conns needs a decimal number"), dump)
    }
}
