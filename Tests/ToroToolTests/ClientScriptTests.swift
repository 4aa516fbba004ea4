// Client scripts (Compat/<scenario>/<client>): the parser and its escapes, every error
// naming its file and line, and the scenario keys `client:` and `port:` that name a script.

import XCTest
@testable import ToroTool

final class ClientScriptTests: XCTestCase {
    func parse(_ text: String) throws -> ClientScript { try ClientScript.parse(text, file: "c") }

    func assertRefused(_ text: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try ClientScript.parse(text, file: "c")
            XCTFail("expected an error for \(text)", file: file, line: line)
        } catch {
            XCTAssertEqual(error.status, .badArgument, file: file, line: line)
            XCTAssertEqual(error.message, message, file: file, line: line)
        }
    }

    func testEveryStepWithItsLine() throws {
        let script = try parse("""
            # a comment, then a blank line

            connect
            send SET a 1\\n
            expect OK\\n
            timeout 5
            send GET / HTTP/1.1\\r\\n\\r\\n
            response 200
            header Content-Type:  text/html; charset=utf-8
            body <h1>hi</h1>\\n
            body-size 12
            body-crc32 0000ABCD
            send HEAD / HTTP/1.1\\r\\n\\r\\n
            head-response 404
            closed
            close
            """)
        XCTAssertEqual(script.file, "c")
        XCTAssertEqual(script.lines.map(\.number), Array(3...16))
        XCTAssertEqual(script.lines.map(\.step), [
            .connect, .send(Array("SET a 1\n".utf8)), .expect(Array("OK\n".utf8)), .timeout(5),
            .send(Array("GET / HTTP/1.1\r\n\r\n".utf8)), .response(status: 200, hasBody: true),
            .header(name: "Content-Type", value: "text/html; charset=utf-8"), .body(Array("<h1>hi</h1>\n".utf8)),
            .bodySize(12), .bodyCRC32(0xABCD), .send(Array("HEAD / HTTP/1.1\r\n\r\n".utf8)),
            .response(status: 404, hasBody: false), .closed, .close,
        ])
    }

    func testTextRunsVerbatimToTheEndOfTheLine() throws {
        // Spaces after the verb's one separating space are the text's own.
        let script = try parse("send  two  spaces \nexpect x\\s\n")
        XCTAssertEqual(script.lines[0].step, .send(Array(" two  spaces ".utf8)))
        XCTAssertEqual(script.lines[1].step, .expect(Array("x ".utf8)))
        // A file written with CRLF line ends means the same.
        XCTAssertEqual(try parse("send a\\n\r\nexpect b\r\n").lines.map(\.step), [.send(Array("a\n".utf8)), .expect(Array("b".utf8))])
    }

    func testEscapes() throws {
        XCTAssertEqual(try ClientScript.unescape("a\\n\\r\\t\\s\\\\\\x00\\xfF\\x41z", place: "p"),
                       [97, 10, 13, 9, 32, 92, 0, 255, 65, 122])
        XCTAssertEqual(ClientScript.escape([97, 10, 13, 9, 32, 92, 0, 255, 65, 32]), "a\\n\\r\\t \\\\\\x00\\xffA\\s")
        // What escape writes, unescape reads back, for every byte.
        let all = (0...255).map { UInt8($0) } + [32]
        XCTAssertEqual(try ClientScript.unescape(Substring(ClientScript.escape(all)), place: "p"), all)
        XCTAssertEqual(ClientScript.quote(Array("OK\n".utf8)), "'OK\\n'")
        XCTAssertEqual(ClientScript.quote([UInt8](repeating: 97, count: 300), limit: 5), "'aaaaa…' (300 bytes)")
    }

    func testMistakesNameTheFileAndLine() {
        assertRefused("send x\nfrob y\n", "c:2: unknown step 'frob' (known: connect, send, expect, closed, close, response, "
                      + "head-response, header, body, body-size, body-crc32, timeout)")
        assertRefused("send\n", "c:1: 'send' needs an argument")
        assertRefused("send \n", "c:1: 'send' needs an argument")
        assertRefused("send x\nexpect\n", "c:2: 'expect' needs an argument")
        assertRefused("send x\nclosed now\n", "c:2: 'closed' takes no argument, got 'now'")
        assertRefused("connect me\n", "c:1: 'connect' takes no argument, got 'me'")
        assertRefused("send a\\q\n", "c:1: unknown escape '\\q' (known: \\n \\r \\t \\s \\\\ \\xHH)")
        assertRefused("send a\\\n", "c:1: a backslash ends the line (write \\\\ for one)")
        assertRefused("send \\x4\n", "c:1: \\x needs two hex digits")
        assertRefused("send \\xzz\n", "c:1: \\x needs two hex digits")
        assertRefused("send x\nresponse 99\n", "c:2: response must be between 100 and 599, got 99")
        assertRefused("send x\nresponse ok\n", "c:2: response needs an HTTP status code, got 'ok'")
        assertRefused("send x\nheader A: b\n", "c:2: 'header' checks the last response, and no response or head-response comes before it")
        assertRefused("send x\nresponse 200\nclose\nbody x\n",
                      "c:4: 'body' checks the last response, and no response or head-response comes before it")
        assertRefused("send x\nresponse 200\nheader nocolon\n", "c:3: header needs 'NAME: VALUE', got 'nocolon'")
        assertRefused("send x\nresponse 200\nheader : v\n", "c:3: header needs 'NAME: VALUE', got ': v'")
        assertRefused("send x\nresponse 200\nbody-crc32 123\n", "c:3: body-crc32 needs 8 hex digits, got '123'")
        assertRefused("send x\nresponse 200\nbody-size -1\n", "c:3: body-size needs a number of bytes, got '-1'")
        assertRefused("timeout 0\nsend x\n", "c:1: timeout must be between 1 and 600, got 0")
        assertRefused("# nothing to send\nconnect\nexpect x\n", "c: the script sends nothing (see Compat/README.md for the format)")
        assertRefused("", "c: the script sends nothing (see Compat/README.md for the format)")
    }

    func testTheShippedScriptsParse() throws {
        let compat = Paths.fromEnvironment().compat
        for name in ["kv", "static-web"] {
            let text = try String(contentsOfFile: "\(compat)/\(name)/scenario", encoding: .utf8)
            let scenario = try Scenario.parse(text, file: "Compat/\(name)/scenario")
            XCTAssertEqual(scenario.client, "client", name)
            XCTAssertEqual(scenario.clientPort, 80, name)
            let script = try XCTUnwrap(try scenario.clientScript(folder: "\(compat)/\(name)", name: name))
            XCTAssertEqual(script.file, "Compat/\(name)/client")
            XCTAssertGreaterThan(script.lines.count, 20, name)
        }
    }

    /// Compat/README.md documents every step and both scenario keys.
    func testTheFormatIsDocumented() throws {
        let readme = try String(contentsOfFile: Paths.fromEnvironment().compat + "/README.md", encoding: .utf8)
        for verb in ClientScript.verbs {
            XCTAssertTrue(readme.contains("| `\(verb)"), "Compat/README.md does not document '\(verb)'")
        }
        XCTAssertTrue(readme.contains("| `client:` |"))
        XCTAssertTrue(readme.contains("| `port:` |"))
        XCTAssertTrue(readme.contains(CompareNetwork.stoppedLine))
    }

    func testScenarioKeys() throws {
        let scenario = try Scenario.parse("client: talk\nport: 8080\n", file: "s")
        XCTAssertEqual(scenario.client, "talk")
        XCTAssertEqual(scenario.clientPort, 8080)
        XCTAssertNil(try Scenario.parse("service: hello\n", file: "s").clientScript(folder: "/nowhere", name: "x"))
        for (text, message) in [
            ("port: 80\n", "s: 'port' is the port the client script connects to, and there is no 'client'"),
            ("client: ../kv/client\n", "s:1: client needs a file inside the scenario's folder, got '../kv/client'"),
            ("client: /etc/passwd\n", "s:1: client needs a file inside the scenario's folder, got '/etc/passwd'"),
            ("client: a\nport: 0\n", "s:2: port must be between 1 and 65535, got 0"),
            ("client: a\nclient: b\n", "s:2: 'client' given twice"),
        ] {
            XCTAssertThrowsError(try Scenario.parse(text, file: "s"), text) { error in
                XCTAssertEqual((error as! ToolFailure).message, message)
            }
        }
        XCTAssertThrowsError(try Scenario.parse("client: missing\n", file: "s").clientScript(folder: "/nowhere", name: "x")) { error in
            XCTAssertEqual((error as! ToolFailure).message, "Compat/x/scenario: client: cannot read 'missing' in Compat/x")
            XCTAssertEqual((error as! ToolFailure).status, .badArgument)
        }
    }
}
