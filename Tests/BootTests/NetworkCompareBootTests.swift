// Tier 3 over the network: `./toro compare` drives the same client script (Compat/kv/client,
// Compat/static-web/client) against each platform's forwarded port, microvm through
// toro-vsock and legacy through virtio-net, Toro's TCP/IP and QEMU's user networking; the
// transcripts, the replies and (static-web) the shared folder's copies must all agree.
// The user's own `-p` works for compare too.
//
// Also, on microvm alone: the compare boot path (CompareNetwork.boot: wait for `ready:`,
// run the script, stop the guest) reports a reply the script does not expect on its line.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ToroTool

final class NetworkCompareBootTests: XCTestCase {
    func assertEverythingMatches(_ arguments: [String], scenario: String, file: StaticString = #filePath, line: UInt = #line) {
        let result = Harness.toro(arguments, limit: 900)
        let dump = Harness.describe(result)
        XCTAssertEqual(result.termination, .exited(0), dump, file: file, line: line)
        for expected in ["match: microvm and legacy transcripts are identical",
                         "match: microvm matches Compat/\(scenario)/expected",
                         "match: legacy matches Compat/\(scenario)/expected",
                         "match: microvm's replies are what Compat/\(scenario)/client expects",
                         "match: legacy's replies are what Compat/\(scenario)/client expects",
                         "match: microvm and legacy replies are identical"] {
            XCTAssertTrue(result.output.contains(expected), "missing '\(expected)'\n" + dump, file: file, line: line)
        }
        XCTAssertTrue(result.output.hasSuffix("compare: everything matches\n"), dump, file: file, line: line)
    }

    func testKVAgreesOnBothPlatforms() {
        guard Harness.preflight() else { return }
        assertEverythingMatches(["compare", "--service", "kv"], scenario: "kv")
    }

    func testStaticWebAgreesOnBothPlatforms() {
        guard Harness.preflight() else { return }
        assertEverythingMatches(["compare", "--service", "static-web"], scenario: "static-web")
    }

    /// `-p HOST:80` given by the user: both platforms forward that port in turn.
    func testKVAgreesThroughTheUsersPort() {
        guard Harness.preflight() else { return }
        guard let port = KVClient.freePort() else { return XCTFail("no free TCP port") }
        assertEverythingMatches(["compare", "--service", "kv", "-p", "\(port):80"], scenario: "kv")
    }

    /// The microvm half of the compare boot path, which works today: a good script passes
    /// and the guest is stopped after it; a wrong expectation is reported on its line.
    func testTheClientRunsAfterReadyAndAWrongReplyIsReported() throws {
        guard Harness.preflight() else { return }
        let backendPath = Harness.root + "/.build/debug/toro-vsock"
        guard FileManager.default.isExecutableFile(atPath: backendPath) else {
            return XCTFail("\(backendPath) is missing: ./toro test builds it first")
        }
        guard let port = KVClient.freePort() else { return XCTFail("no free TCP port") }
        let directory = NSTemporaryDirectory() + "toro-netcompare-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socket = directory + "/vhost-user.sock"

        let script = try ClientScript.parse("""
            send SET a 1\\n
            expect OK\\n
            send GET a\\n
            expect VALUE 2\\n
            send QUIT\\n
            expect BYE\\n
            closed
            """, file: "doctored")
        do {
            let backend = Process()
            backend.executableURL = URL(fileURLWithPath: backendPath)
            backend.arguments = VsockBackend.arguments(socket: socket, hybrid: directory + "/vsock.sock",
                                                       ports: [PortForward(host: port, guest: 80)])
            try backend.run()
            defer { if backend.isRunning { backend.terminate(); backend.waitUntilExit() } }
            let deadline = Date().addingTimeInterval(10)
            while !FileManager.default.fileExists(atPath: socket) && Date() < deadline { usleep(10_000) }

            var command = QEMUCommand(platform: .microvm, accelerator: .tcg, memoryMiB: 64, cpus: 1,
                                      kernelPath: Harness.paths.image(.microvm, service: "kv"), kernelCommandLine: "service=kv")
            command.vsockSocket = socket
            let run = CompareNetwork.boot(command, service: "kv", timeout: 120, script: script, port: port)
            let dump = run.output + "\n" + run.client.replies.joined(separator: "\n")
            XCTAssertNil(run.status, "the guest was stopped after the client: \(run.message ?? "")\n" + dump)
            XCTAssertEqual(CompareNetwork.transcript(run).last, "exit status: stopped after the client", dump)
            XCTAssertTrue(CompareNetwork.transcript(run).contains("ready: kv"), dump)
            XCTAssertEqual(run.client.mismatches, ["doctored:4: expected 'VALUE 2\\n', got 'VALUE 1\\n'"], dump)
            XCTAssertEqual(run.client.replies, ["2: got OK\\n", "4: got VALUE 1\\n", "6: got BYE\\n", "7: closed"], dump)
        }
    }
}
