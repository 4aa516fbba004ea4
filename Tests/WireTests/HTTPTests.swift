import XCTest
@testable import Wire

/// The HTTP/1.1 request side of `static-web`: parser, target decoding, response heads.
final class HTTPTests: XCTestCase {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// All events from feeding `text` at once, through the first `.needMore` or `.failure`.
    private func events(_ text: String, limits: HTTPLimits = HTTPLimits()) -> [HTTPParseEvent] {
        var parser = HTTPRequestParser(limits: limits)
        parser.feed(bytes(text))
        return drain(&parser)
    }

    private func drain(_ parser: inout HTTPRequestParser) -> [HTTPParseEvent] {
        var out: [HTTPParseEvent] = []
        while true {
            let event = parser.next()
            out.append(event)
            if case .request = event { continue }
            return out
        }
    }

    private func request(_ text: String) -> HTTPRequest? {
        if case .request(let request) = events(text).first { return request }
        return nil
    }

    private func failure(_ text: String, limits: HTTPLimits = HTTPLimits()) -> HTTPRequestError? {
        if case .failure(let error) = events(text, limits: limits).last { return error }
        return nil
    }

    // MARK: parser

    func testSimpleGetAndHead() {
        let get = request("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(get, HTTPRequest(method: .get, target: bytes("/index.html"), minorVersion: 1,
                                        keepAlive: true, contentLength: 0))
        XCTAssertEqual(request("HEAD / HTTP/1.1\r\nhost: x\r\n\r\n")?.method, .head)
        XCTAssertEqual(events("GET / HTTP/1.1\r\nHost: x\r\n"), [.needMore])
    }

    func testOtherMethodsAreParsedForA405() {
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "get", "Head", "PATCH"] {
            let parsed = request("\(method) / HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(parsed?.method, .other, method)
        }
    }

    func testPipelinedRequestsInOneBuffer() {
        let text = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"
            + "DELETE /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /d HTTP/1.0\r\n\r\nGET /e"
        let got = events(text)
        XCTAssertEqual(got.count, 5)
        let targets = got.compactMap { event -> [UInt8]? in
            if case .request(let request) = event { return request.target } else { return nil }
        }
        XCTAssertEqual(targets, [bytes("/a"), bytes("/b"), bytes("/c"), bytes("/d")])
        XCTAssertEqual(got.last, .needMore)
    }

    func testRequestSplitByteByByte() {
        let text = bytes("GET /x%20y HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\nzzGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
        var parser = HTTPRequestParser()
        var requests: [HTTPRequest] = []
        for byte in text {
            parser.feed([byte])
            for event in drain(&parser) {
                if case .request(let request) = event { requests.append(request) }
                if case .failure = event { XCTFail("failed at byte \(byte)") }
            }
        }
        XCTAssertEqual(requests.map(\.target), [bytes("/x%20y"), bytes("/2")])
        XCTAssertEqual(requests.map(\.keepAlive), [false, true])
        XCTAssertEqual(parser.buffered, 0)
    }

    func testBodyDiscardedAcrossReads() {
        var parser = HTTPRequestParser()
        parser.feed(bytes("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345"))
        XCTAssertEqual(parser.next(), .request(HTTPRequest(method: .get, target: bytes("/"), minorVersion: 1,
                                                           keepAlive: true, contentLength: 10)))
        XCTAssertEqual(parser.next(), .needMore)
        parser.feed(bytes("67890GET /n HTTP/1.1\r\nHost: x\r\n\r\n"))
        guard case .request(let second) = parser.next() else { return XCTFail("no second request") }
        XCTAssertEqual(second.target, bytes("/n"))
    }

    func testKeepAliveRules() {
        XCTAssertEqual(request("GET / HTTP/1.1\r\nHost: x\r\n\r\n")?.keepAlive, true)
        XCTAssertEqual(request("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?.keepAlive, false)
        XCTAssertEqual(request("GET / HTTP/1.1\r\nHost: x\r\nCONNECTION: Keep-Alive, CLOSE\r\n\r\n")?.keepAlive, false)
        XCTAssertEqual(request("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n")?.keepAlive, true)
        XCTAssertEqual(request("GET / HTTP/1.0\r\n\r\n")?.keepAlive, false)
        XCTAssertEqual(request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")?.keepAlive, true)
        XCTAssertEqual(request("GET / HTTP/1.0\r\nconnection:keep-alive , close\r\n\r\n")?.keepAlive, false)
        XCTAssertEqual(request("GET / HTTP/1.0\r\n\r\n")?.minorVersion, 0)
        XCTAssertEqual(request("GET / HTTP/1.9\r\nHost: x\r\n\r\n")?.keepAlive, true)
    }

    func testLineEndingsAndLeadingEmptyLines() {
        XCTAssertEqual(request("\r\n\r\nGET / HTTP/1.1\nHost: x\n\n")?.target, bytes("/"))
        XCTAssertEqual(failure("GET / HTTP/1.1\rHost: x\r\n\r\n"), .badRequest)
        XCTAssertEqual(failure("GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n"), .badRequest)
    }

    func testMalformedRequestLines() {
        for line in ["GET /", "GET  / HTTP/1.1", "GET / HTTP/1.1 ", " GET / HTTP/1.1", "GET / http/1.1",
                     "GET / HTTP/2.0", "GET / HTTP/1", "GET / HTTP/1.10", "GET / HTTP/1.x", "G(T / HTTP/1.1",
                     "GET /\u{7F} HTTP/1.1", "GET /\u{E9} HTTP/1.1", "GET\t/ HTTP/1.1", "GET /a\0 HTTP/1.1",
                     "/ HTTP/1.1", "GET"] {
            XCTAssertEqual(failure(line + "\r\nHost: x\r\n\r\n"), .badRequest, line)
        }
    }

    func testMalformedHeaders() {
        for header in ["Host : x", "NoColon", ": empty-name", "Bad Name: x", "X: a\u{1}b", "X: a\u{7F}",
                       "Content-Length: -1", "Content-Length: 1 2", "Content-Length: 0x10", "Content-Length:",
                       "Content-Length: 65537", "Content-Length: 99999999999999999999999999"] {
            XCTAssertEqual(failure("GET / HTTP/1.1\r\nHost: x\r\n\(header)\r\n\r\n"), .badRequest, header)
        }
        // obs-fold (RFC 9112 §5.2) is rejected.
        XCTAssertEqual(failure("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n"), .badRequest)
        XCTAssertEqual(failure("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tfolded\r\n\r\n"), .badRequest)
        // Host: required once in HTTP/1.1, at most once in 1.0.
        XCTAssertEqual(failure("GET / HTTP/1.1\r\n\r\n"), .badRequest)
        XCTAssertEqual(failure("GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n"), .badRequest)
        XCTAssertEqual(failure("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), .badRequest)
        // Content-Length duplicates must agree.
        XCTAssertEqual(request("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n")?.contentLength, 2)
        XCTAssertEqual(failure("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"), .badRequest)
        XCTAssertEqual(request("GET / HTTP/1.1\r\nHost: x\r\nX-UTF8: caf\u{E9}\r\n\r\n")?.target, bytes("/"))
        XCTAssertEqual(request("GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\n\r\n")?.target, bytes("/"))
    }

    func testTransferEncoding() {
        XCTAssertEqual(failure("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"), .notImplemented)
        XCTAssertEqual(failure("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"), .badRequest)
        XCTAssertEqual(HTTPRequestError.notImplemented.status, .notImplemented)
    }

    func testContentLengthLimitExactly() {
        let limit = HTTPLimits().maximumBody
        XCTAssertEqual(request("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \(limit)\r\n\r\n")?.contentLength, limit)
        XCTAssertEqual(failure("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \(limit + 1)\r\n\r\n"), .badRequest)
    }

    func testRequestLineLimit() {
        let limit = HTTPLimits().maximumRequestLine
        let fixed = "GET  HTTP/1.1".utf8.count
        let atLimit = "GET /" + String(repeating: "a", count: limit - fixed - 1) + " HTTP/1.1"
        XCTAssertEqual(atLimit.utf8.count, limit)
        XCTAssertEqual(request(atLimit + "\r\nHost: x\r\n\r\n")?.target.count, limit - fixed)
        let over = "GET /" + String(repeating: "a", count: limit - fixed) + " HTTP/1.1"
        XCTAssertEqual(failure(over + "\r\nHost: x\r\n\r\n"), .uriTooLong)
        // Detected before any terminator arrives; a CR alone at the limit is not yet too long.
        XCTAssertEqual(events(atLimit + "\r"), [.needMore])
        XCTAssertEqual(failure(over + "\r"), .uriTooLong)
        XCTAssertEqual(failure("GET /" + String(repeating: "a", count: limit)), .uriTooLong)
        XCTAssertEqual(failure(String(repeating: "G", count: limit + 2)), .badRequest)
        // The failure sticks.
        var parser = HTTPRequestParser()
        parser.feed(bytes(over))
        XCTAssertEqual(parser.next(), .failure(.uriTooLong))
        parser.feed(bytes("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        XCTAssertEqual(parser.next(), .failure(.uriTooLong))
    }

    func testHeaderLineLimit() {
        let limit = HTTPLimits().maximumHeaderLine
        let atLimit = "X: " + String(repeating: "v", count: limit - 3)
        XCTAssertNotNil(request("GET / HTTP/1.1\r\nHost: x\r\n\(atLimit)\r\n\r\n"))
        XCTAssertEqual(failure("GET / HTTP/1.1\r\nHost: x\r\n\(atLimit)v\r\n\r\n"), .headersTooLarge)
        XCTAssertEqual(failure("GET / HTTP/1.1\r\nHost: x\r\n\(atLimit)vv"), .headersTooLarge)
    }

    func testHeaderSectionLimit() {
        var limits = HTTPLimits()
        limits.maximumHeaderSection = 100
        // "Host: x\r\n" is 9 bytes; "X: " + 88 + CRLF is 93: 102 in all, and 2 fewer fits.
        let fits = "GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "v", count: 86) + "\r\n\r\n"
        if case .request = events(fits, limits: limits).first {} else { XCTFail("at the limit") }
        let over = "GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "v", count: 87) + "\r\n\r\n"
        XCTAssertEqual(failure(over, limits: limits), .headersTooLarge)
        // Many small headers add up.
        let many = "GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "A: b\r\n", count: 4000) + "\r\n"
        XCTAssertEqual(failure(many), .headersTooLarge)
    }

    // MARK: target

    private func path(_ target: String) -> [String]? {
        guard let parsed = try? HTTPTarget.parse(bytes(target)) else { return nil }
        return parsed.components.map { String(decoding: $0, as: UTF8.self) }
    }

    private func targetError(_ target: String) -> HTTPTargetError? {
        do throws(HTTPTargetError) { _ = try HTTPTarget.parse(bytes(target)); return nil } catch { return error }
    }

    func testTargetForms() throws {
        XCTAssertEqual(path("/"), [])
        XCTAssertEqual(path("/a/b.html"), ["a", "b.html"])
        XCTAssertEqual(path("/a/b.html?x=1/../../etc#f"), ["a", "b.html"])
        XCTAssertEqual(path("http://example.com/a/b"), ["a", "b"])
        XCTAssertEqual(path("HTTPS://example.com:8080/a?q"), ["a"])
        XCTAssertEqual(path("http://example.com"), [])
        XCTAssertEqual(path("http://example.com?q=/x"), [])
        XCTAssertEqual(path("//a///b//"), ["a", "b"])
        for bad in ["*", "a/b", "", "ftp://x/y", "http:///a", "http://", "%2Fa", "?x", "/a b", "/a\u{0}"] {
            XCTAssertEqual(targetError(bad), .badRequest, bad)
        }
        let directory = try HTTPTarget.parse(bytes("/docs/"))
        XCTAssertTrue(directory.isDirectory)
        XCTAssertNil(directory.fileName)
        let file = try HTTPTarget.parse(bytes("/docs/a.css"))
        XCTAssertFalse(file.isDirectory)
        XCTAssertEqual(file.fileName, bytes("a.css"))
        XCTAssertTrue(try HTTPTarget.parse(bytes("/docs/.")).isDirectory)
        XCTAssertTrue(try HTTPTarget.parse(bytes("/docs/a/..")).isDirectory)
        XCTAssertTrue(try HTTPTarget.parse(bytes("/")).isDirectory)
    }

    func testTraversalNeverLeavesTheRoot() {
        for attack in ["/..", "/../", "/../etc/passwd", "/a/../../etc", "/./../x", "/%2e%2e/x", "/%2E%2E/x",
                       "/.%2e/x", "/%2e./x", "/a/%2e%2e/%2e%2e/x", "/..%2fetc", "/..%2Fetc", "/%2e%2e%2fetc",
                       "/a/..%2f..%2fetc", "/%2f..", "/a%2f..%2f..", "http://h/../x", "/a/b/../../../x",
                       "/%2e%2e", "/%2e%2e?x", "/..#x", "/x/%2e%2e/%2e%2e"] {
            XCTAssertEqual(targetError(attack), .badRequest, attack)
        }
        // Dot segments inside the root resolve; encoded or literal makes no difference.
        XCTAssertEqual(path("/a/../b"), ["b"])
        XCTAssertEqual(path("/a/%2e%2e/b"), ["b"])
        XCTAssertEqual(path("/a/./b/."), ["a", "b"])
        XCTAssertEqual(path("/a/%2E/b"), ["a", "b"])
        XCTAssertEqual(path("/a/b/../.."), [])
        // Backslashes are ordinary bytes, never separators.
        XCTAssertEqual(path("/..\\..\\etc\\passwd"), ["..\\..\\etc\\passwd"])
        XCTAssertEqual(path("/%5c..%5c"), ["\\..\\"])
        XCTAssertEqual(path("/a\\..\\.."), ["a\\..\\.."])
        // Double encoding decodes once: a literal name, not a dot segment.
        XCTAssertEqual(path("/%252e%252e/x"), ["%2e%2e", "x"])
        XCTAssertEqual(path("/%252e%252e%252fetc"), ["%2e%2e%2fetc"])
        // Names that merely contain dots are names.
        XCTAssertEqual(path("/.../..a/a../.hidden"), ["...", "..a", "a..", ".hidden"])
        // No component of any accepted path is empty, ".", ".." or holds "/" or NUL.
        for target in ["/a/./b/../c", "/%2e%2e%2e", "/x/%2E%2e/y", "/a//b"] {
            for component in (try? HTTPTarget.parse(bytes(target)))?.components ?? [] {
                XCTAssertFalse(component.isEmpty || component == [0x2E] || component == [0x2E, 0x2E])
                XCTAssertFalse(component.contains(0x2F) || component.contains(0))
            }
        }
    }

    func testPercentDecoding() {
        XCTAssertEqual(path("/a%20b.txt"), ["a b.txt"])
        XCTAssertEqual(path("/%41%62%7e"), ["Ab~"])
        XCTAssertEqual(path("/caf%C3%A9/%E2%82%AC.html"), ["caf\u{E9}", "\u{20AC}.html"])
        XCTAssertEqual(try? HTTPTarget.parse(bytes("/%C3%A9%FF")).components, [[0xC3, 0xA9, 0xFF]])
        XCTAssertEqual(path("/a+b"), ["a+b"])
        XCTAssertEqual(path("/%25"), ["%"])
        XCTAssertEqual(path("/%3F%23"), ["?#"])
        for bad in ["/%", "/%2", "/a%", "/%g0", "/%0g", "/%%20", "/% 1", "/%00", "/a%00.html", "/%0a", "/%0D",
                    "/%1f", "/%7F", "/%2f", "/%2F", "/%C3%A9%00"] {
            XCTAssertEqual(targetError(bad), .badRequest, bad)
        }
    }

    func testComponentLengthLimit() {
        let limit = HTTPTarget.maximumComponent
        XCTAssertEqual(path("/" + String(repeating: "n", count: limit))?.first?.utf8.count, limit)
        XCTAssertEqual(targetError("/" + String(repeating: "n", count: limit + 1)), .notFound)
        XCTAssertEqual(targetError("/" + String(repeating: "%41", count: limit + 1)), .notFound)
        XCTAssertEqual(path("/" + String(repeating: "%41", count: limit))?.first?.utf8.count, limit)
        XCTAssertEqual(HTTPTargetError.notFound.status, .notFound)
        XCTAssertEqual(HTTPTargetError.badRequest.status, .badRequest)
    }

    // MARK: response

    private func text(_ response: [UInt8]) -> String { String(decoding: response, as: UTF8.self) }

    func testOkHead() {
        let head = HTTPResponse.head(.ok, contentLength: 1234, contentType: ContentType.forExtension(bytes("html")),
                                     keepAlive: true)
        XCTAssertEqual(text(head), "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n"
                       + "Content-Type: text/html; charset=utf-8\r\nConnection: keep-alive\r\n\r\n")
        let empty = HTTPResponse.head(.ok, contentLength: 0, contentType: ContentType.fallback, keepAlive: false)
        XCTAssertEqual(text(empty), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                       + "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n")
    }

    func testErrorResponses() {
        let expected: [(HTTPStatus, String)] = [
            (.badRequest, "400 Bad Request"), (.notFound, "404 Not Found"), (.methodNotAllowed, "405 Method Not Allowed"),
            (.uriTooLong, "414 URI Too Long"), (.headersTooLarge, "431 Request Header Fields Too Large"),
            (.internalServerError, "500 Internal Server Error"), (.notImplemented, "501 Not Implemented"),
        ]
        for (status, line) in expected {
            let body = line + "\n"
            let allow = status == .methodNotAllowed ? "Allow: GET, HEAD\r\n" : ""
            let head = "HTTP/1.1 \(line)\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\(allow)\r\n"
            XCTAssertEqual(text(HTTPResponse.error(status, keepAlive: false)), head + body)
            XCTAssertEqual(text(HTTPResponse.error(status, isHead: true, keepAlive: false)), head)
        }
        XCTAssertTrue(text(HTTPResponse.error(.notFound, keepAlive: true)).contains("Connection: keep-alive\r\n"))
    }

    func testContentTypes() {
        let table: [(String, String)] = [
            ("html", "text/html; charset=utf-8"), ("HTM", "text/html; charset=utf-8"), ("css", "text/css; charset=utf-8"),
            ("js", "text/javascript; charset=utf-8"), ("Json", "application/json"), ("txt", "text/plain; charset=utf-8"),
            ("png", "image/png"), ("jpg", "image/jpeg"), ("JPEG", "image/jpeg"), ("gif", "image/gif"),
            ("svg", "image/svg+xml"), ("ico", "image/vnd.microsoft.icon"), ("wasm", "application/wasm"),
            ("PDF", "application/pdf"), ("", "application/octet-stream"), ("bin", "application/octet-stream"),
            ("htmlx", "application/octet-stream"), ("averylongextension", "application/octet-stream"),
            ("ht", "application/octet-stream"), ("h\u{0}tml", "application/octet-stream"),
        ]
        for (ext, type) in table {
            XCTAssertEqual(ContentType.forExtension(bytes(ext)).description, type, ext)
        }
        XCTAssertEqual(ContentType.forName(bytes("index.HTML")).description, "text/html; charset=utf-8")
        XCTAssertEqual(ContentType.forName(bytes("a.tar.gz")).description, "application/octet-stream")
        XCTAssertEqual(ContentType.forName(bytes("x.min.js")).description, "text/javascript; charset=utf-8")
        XCTAssertEqual(ContentType.forName(bytes("README")).description, "application/octet-stream")
        XCTAssertEqual(ContentType.forName(bytes("png")).description, "application/octet-stream")
    }
}

extension HTTPTests {
    func testConveniences() throws {
        var parser = HTTPRequestParser()
        bytes("GET /a/page.HTM?x HTTP/1.1\r\nHost: x\r\n\r\n").withUnsafeBytes { parser.feed(raw: $0) }
        guard case .request(let request) = parser.next() else { return XCTFail("no request") }
        let target = try request.path()
        XCTAssertEqual(target.components, [bytes("a"), bytes("page.HTM")])
        XCTAssertEqual(target.contentType.description, "text/html; charset=utf-8")
        XCTAssertEqual(try HTTPTarget.parse(bytes("/a/")).contentType.description, "application/octet-stream")
    }
}
