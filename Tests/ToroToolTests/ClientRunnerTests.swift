// Running client scripts against real TCP servers in this process (the host-native kv
// server, and a scripted one for HTTP and for misbehaviour), and comparing two platforms'
// replies as `toro compare` reports them.

import XCTest
import Foundation
@testable import ToroTool
#if canImport(Glibc)
import Glibc
#endif

/// A TCP server on 127.0.0.1 that serves connections one after another: for each chunk a
/// client sends, `reply` gives the bytes to answer and whether to close afterwards.
final class ScriptedServer: @unchecked Sendable {
    let fd: Int32
    let port: Int
    let reply: @Sendable ([UInt8]) -> (answer: [UInt8], close: Bool)

    init(reply: @escaping @Sendable ([UInt8]) -> (answer: [UInt8], close: Bool)) throws {
        self.reply = reply
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, listen(fd, 8) == 0 else { throw ToolFailure(.qemuFailed, "cannot listen") }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in serve() }
    }

    private func serve() {
        while true {
            let client = accept(fd, nil, nil)
            guard client >= 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(client, &buffer, buffer.count)
                guard count > 0 else { break }
                let (answer, close) = reply(Array(buffer[0..<count]))
                var offset = 0
                while offset < answer.count {
                    let sent = answer[offset...].withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                    guard sent > 0 else { break }
                    offset += sent
                }
                if close { break }
            }
            Glibc.close(client)
        }
    }

    func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
}

final class ClientRunnerTests: XCTestCase {
    func script(_ text: String) throws -> ClientScript { try ClientScript.parse(text, file: "client") }

    /// The shipped kv script passes against the host-native kv server (the kernel's own
    /// protocol code): the script expects what kv answers.
    func testTheKVScriptPassesAgainstTheHostServer() throws {
        let server = try HostKVServer()
        server.start()
        defer { server.stop() }
        let compat = Paths.fromEnvironment().compat
        let scenario = try Scenario.parse(try String(contentsOfFile: compat + "/kv/scenario", encoding: .utf8), file: "scenario")
        let kv = try XCTUnwrap(try scenario.clientScript(folder: compat + "/kv", name: "kv"))
        let outcome = ClientRunner.run(kv, port: server.port)
        XCTAssertEqual(outcome.mismatches, [])
        XCTAssertEqual(outcome.stepsRun, kv.lines.count - kv.lines.filter { if case .timeout = $0.step { return true }; return false }.count)
        XCTAssertTrue(outcome.replies.contains { $0.hasSuffix(": got OK\\nOK\\nVALUE v1\\nVALUE v2\\nDELETED\\n") }, "\(outcome.replies)")
        XCTAssertTrue(outcome.replies.contains { $0.hasSuffix(": closed") })
    }

    func testWrongRepliesAreReportedLineByLine() throws {
        let server = try HostKVServer()
        server.start()
        defer { server.stop() }
        let outcome = ClientRunner.run(try script("""
            send SET a 1\\n
            expect OK\\n
            send GET a\\n
            expect VALUE 2\\n
            send GET b\\n
            expect VALUE 3\\n
            send QUIT\\n
            expect BYE\\n
            expect more\\n
            send GET a\\n
            connect
            send GET a\\n
            expect VALUE 1\\n
            """), port: server.port)
        XCTAssertEqual(outcome.mismatches, [
            "client:4: expected 'VALUE 2\\n', got 'VALUE 1\\n'",
            // A shorter reply is read to its end of line, not waited on for the missing bytes.
            "client:6: expected 'VALUE 3\\n', got 'NOT_FOUND\\n'",
            "client:9: the service closed the connection",
            "client:10: not run: the connection failed at line 9; skipped up to the next connect",
        ])
        XCTAssertEqual(outcome.replies, ["2: got OK\\n", "4: got VALUE 1\\n", "6: got NOT_FOUND\\n", "8: got BYE\\n",
                                         "9: error the service closed the connection", "13: got VALUE 1\\n"])
    }

    func testHTTPResponsesHeadersAndBodies() throws {
        let body = Array("<h1>hi</h1>\n".utf8)
        let server = try ScriptedServer { request in
            let text = String(decoding: request, as: UTF8.self)
            if text.hasPrefix("HEAD") {
                return (Array("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n".utf8), false)
            }
            if text.hasPrefix("GET /close") {
                return (Array("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n".utf8), true)
            }
            return (Array("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 12\r\n\r\n".utf8) + body, false)
        }
        defer { server.stop() }
        let crc = String(CRC32Check.value(body), radix: 16)
        let good = ClientRunner.run(try script("""
            send GET / HTTP/1.1\\r\\n\\r\\n
            response 200
            header content-type: text/html
            header Content-Length: 12
            body <h1>hi</h1>\\n
            body-size 12
            body-crc32 \(String(repeating: "0", count: 8 - crc.count) + crc)
            send HEAD / HTTP/1.1\\r\\n\\r\\n
            head-response 200
            send GET /close HTTP/1.1\\r\\n\\r\\n
            response 404
            body no\\n
            closed
            """), port: server.port)
        XCTAssertEqual(good.mismatches, [])
        XCTAssertEqual(good.replies, [
            "2: HTTP/1.1 200 OK", "2: header Content-Type: text/html", "2: header Content-Length: 12",
            "2: body 12 bytes, crc32 \(String(repeating: "0", count: 8 - crc.count) + crc)",
            "9: HTTP/1.1 200 OK", "9: header Content-Length: 12",
            "11: HTTP/1.1 404 Not Found", "11: header Content-Length: 3", "11: header Connection: close",
            "11: body 3 bytes, crc32 \(ClientRunner.hex(CRC32Check.value(Array("no\n".utf8))))",
            "13: closed",
        ])

        let bad = ClientRunner.run(try script("""
            send GET / HTTP/1.1\\r\\n\\r\\n
            response 201
            header Content-Type: text/plain
            header X-Missing: 1
            body <h2>
            body-size 13
            body-crc32 00000000
            """), port: server.port)
        XCTAssertEqual(bad.mismatches, [
            "client:2: expected status 201, got 200 ('HTTP/1.1 200 OK')",
            "client:3: expected 'Content-Type: text/plain', got 'Content-Type: text/html'",
            "client:4: expected a field 'X-Missing: 1', the response has no X-Missing",
            "client:5: expected the body '<h2>', got '<h1>hi</h1>\\n'",
            "client:6: expected a body of 13 bytes, got 12",
            "client:7: expected the body's crc32 00000000, got \(ClientRunner.hex(CRC32Check.value(body)))",
        ])
    }

    func testMisbehavingServers() throws {
        // Never answers: the step's timeout.
        let silent = try ScriptedServer { _ in ([], false) }
        defer { silent.stop() }
        let quiet = ClientRunner.run(try script("timeout 1\nsend x\\n\nexpect y\\n\nsend z\\n\n"), port: silent.port)
        XCTAssertEqual(quiet.mismatches, ["client:3: no reply within 1 s",
                                          "client:4: not run: the connection failed at line 3; skipped up to the next connect"])
        XCTAssertEqual(quiet.replies, ["3: error no reply within 1 s"])

        // Does not close when the script expects it to, then answers too much.
        let chatty = try ScriptedServer { _ in (Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA".utf8), false) }
        defer { chatty.stop() }
        let open = ClientRunner.run(try script("timeout 1\nsend GET /\\r\\n\\r\\n\nresponse 200\nclosed\n"), port: chatty.port)
        XCTAssertEqual(open.mismatches, ["client:4: expected the service to close the connection, got 'EXTRA' first"])
        let notHTTP = ClientRunner.run(try script("timeout 1\nsend x\nexpect HTTP/1.1 200 OK\\r\\n\n"), port: chatty.port)
        XCTAssertEqual(notHTTP.mismatches, [])

        let garbage = try ScriptedServer { _ in (Array("SSH-2.0\r\n\r\n".utf8), true) }
        defer { garbage.stop() }
        let wrong = ClientRunner.run(try script("send GET /\\r\\n\\r\\n\nresponse 200\nbody x\n"), port: garbage.port)
        XCTAssertEqual(wrong.mismatches, ["client:2: not an HTTP response: status line 'SSH-2.0'",
                                          "client:3: not run: the connection failed at line 2; skipped up to the next connect"])

        // Nobody listens: one line, and the rest of that connection is skipped.
        guard let port = KVClient.freePort() else { return XCTFail("no free port") }
        let refused = ClientRunner.run(try script("send x\nexpect y\nconnect\nsend z\n"), port: port, connectWithin: 0.2)
        XCTAssertEqual(refused.mismatches, [
            "client:1: cannot connect to the service's port",
            "client:2: not run: the connection failed at line 1; skipped up to the next connect",
            "client:3: cannot connect to the service's port",
            "client:4: not run: the connection failed at line 3; skipped up to the next connect",
        ])
    }

    func testRepliesAreComparedBetweenPlatforms() {
        var same = ClientOutcome()
        same.replies = ["2: got OK\\n", "4: got VALUE 1\\n"]
        same.stepsRun = 4
        let agree = CompareCommand.compareReplies(file: "Compat/kv/client", microvm: same, legacy: same)
        XCTAssertTrue(agree.matches)
        XCTAssertEqual(agree.report, ["match: microvm's replies are what Compat/kv/client expects (4 steps)",
                                      "match: legacy's replies are what Compat/kv/client expects (4 steps)",
                                      "match: microvm and legacy replies are identical (2 lines)"])

        var other = same
        other.replies[1] = "4: got NOT_FOUND\\n"
        other.mismatches = ["Compat/kv/client:4: expected 'VALUE 1\\n', got 'NOT_FOUND\\n'"]
        let differ = CompareCommand.compareReplies(file: "Compat/kv/client", microvm: same, legacy: other)
        XCTAssertFalse(differ.matches)
        XCTAssertEqual(Array(differ.report.prefix(4)), [
            "match: microvm's replies are what Compat/kv/client expects (4 steps)",
            "DIFFER: legacy's replies are not what Compat/kv/client expects (1 step):",
            "    Compat/kv/client:4: expected 'VALUE 1\\n', got 'NOT_FOUND\\n'",
            "DIFFER: microvm and legacy replies differ:",
        ])
        XCTAssertTrue(differ.report[4].contains("\n-4: got VALUE 1\\n\n+4: got NOT_FOUND\\n"), differ.report[4])

        // Both platforms wrong alike is still no match: the script is the judge.
        let bothWrong = CompareCommand.compareReplies(file: "f", microvm: other, legacy: other)
        XCTAssertFalse(bothWrong.matches)
        XCTAssertEqual(bothWrong.report.last, "match: microvm and legacy replies are identical (2 lines)")
    }

    func testTheVerdictWithAClient() {
        let transcript = ["ready: kv", CompareNetwork.stoppedLine]
        var good = ClientOutcome()
        good.replies = ["2: got OK\\n"]
        good.stepsRun = 2
        var bad = good
        bad.mismatches = ["f:2: expected 'OK\\n', got 'ERROR full\\n'"]
        let expected = (name: "Compat/kv/expected", lines: transcript)

        let all = CompareCommand.compare(microvm: transcript, legacy: transcript, expected: expected,
                                         clients: (file: "f", microvm: good, legacy: good))
        XCTAssertTrue(all.matches)
        XCTAssertEqual(all.report.last, "compare: everything matches")

        let replies = CompareCommand.compare(microvm: transcript, legacy: transcript, expected: expected,
                                             clients: (file: "f", microvm: good, legacy: bad))
        XCTAssertFalse(replies.matches)
        XCTAssertEqual(replies.report.last, "compare: replies differ")

        let both = CompareCommand.compare(microvm: transcript, legacy: ["kv: no socket device", "exit status: 1"], expected: expected,
                                          clients: (file: "f", microvm: good, legacy: bad))
        XCTAssertEqual(both.report.last, "compare: transcripts and replies differ")

        // Without an expected transcript, stopping after the client is not a failure...
        let noExpected = CompareCommand.compare(microvm: transcript, legacy: transcript, expected: nil,
                                                clients: (file: "f", microvm: good, legacy: good))
        XCTAssertTrue(noExpected.matches, noExpected.report.joined(separator: "\n"))
        // ...but two "no socket device" failures are, with or without a client.
        let failedAlike = ["kv: no socket device (on <platform>, start with -p HOSTPORT:80)", "exit status: 1"]
        let failed = CompareCommand.compare(microvm: failedAlike, legacy: failedAlike, expected: nil)
        XCTAssertFalse(failed.matches)
        XCTAssertEqual(failed.report.last, "compare: the service failed (no expected transcript records that status)")
        XCTAssertTrue(failed.report.contains("FAILED: on legacy the service never printed ready: and ended with exit status 1"))
    }

    func testForwardsForTheClient() throws {
        XCTAssertEqual(try CompareNetwork.forwards(given: [PortForward(host: 8080, guest: 80)], clientPort: nil),
                       [PortForward(host: 8080, guest: 80)])
        XCTAssertEqual(try CompareNetwork.forwards(given: [], clientPort: nil), [])
        let given = [PortForward(host: 9000, guest: 22), PortForward(host: 8080, guest: 80)]
        XCTAssertEqual(try CompareNetwork.forwards(given: given, clientPort: 80), given)
        let chosen = try CompareNetwork.forwards(given: [], clientPort: 8000)
        XCTAssertEqual(chosen.count, 1)
        XCTAssertEqual(chosen.first?.guest, 8000)
        XCTAssertGreaterThan(chosen.first?.host ?? 0, 0)
        XCTAssertThrowsError(try CompareNetwork.forwards(given: [PortForward(host: 8080, guest: 81)], clientPort: 80)) { error in
            let failure = error as! ToolFailure
            XCTAssertEqual(failure.status, .badArgument)
            XCTAssertEqual(failure.message,
                           "-p 8080:81: the client script connects to guest port 80, which no -p forwards (add -p HOSTPORT:80)")
        }
        // The command refuses it before building anything.
        XCTAssertEqual(CLI.main(["compare", "--service", "kv", "-p", "8080:81"]), ToroStatus.badArgument.rawValue)
    }

    func testTheTranscriptOfAStoppedGuest() {
        let output = "SeaBIOS\n[    0.001000] boot: hi\nready: kv\n[    0.002000] kv: idle\n"
        let stopped = CompareNetwork.Run(output: output, status: nil, message: nil, client: ClientOutcome())
        XCTAssertEqual(CompareNetwork.transcript(stopped), ["ready: kv", "exit status: stopped after the client"])
        let exited = CompareNetwork.Run(output: output, status: .serviceFailed, message: nil, client: ClientOutcome())
        XCTAssertEqual(CompareNetwork.transcript(exited), ["ready: kv", "exit status: 1"])
    }
}

/// CRC-32 for the tests' expectations, computed bit by bit (independent of Wire's tables).
enum CRC32Check {
    static func value(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
