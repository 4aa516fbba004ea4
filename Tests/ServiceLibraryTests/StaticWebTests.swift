// static-web's request handling (StaticFileHandler) over a MemoryFileSystem and a scripted
// socket (TestSupport's ScriptedSocket, whose writes take 7,000 bytes at a time, so the
// handler's partial-write loop runs): exact response bytes, methods, errors, keep-alive,
// pipelining, index files, percent-encoded names and traversal attempts.

import XCTest
import TestSupport
@testable import Core
@testable import StaticFiles

final class StaticWebTests: XCTestCase {
    var fs: MemoryFileSystem!
    var big: [UInt8] = []

    override func setUp() {
        fs = MemoryFileSystem(clock: { 0 })
        put("/hello.txt", Array("Hello, world!\n".utf8))
        put("/empty", [])
        put("/index.html", Array("<h1>root</h1>".utf8))
        try! fs.makeDirectory(try! VFSPath(parsing: Array("/docs".utf8)), mode: 0o755)
        put("/docs/index.html", Array("<p>docs</p>".utf8))
        try! fs.makeDirectory(try! VFSPath(parsing: Array("/noindex".utf8)), mode: 0o755)
        put("/a b.txt", Array("spaces".utf8))
        put("/caf\u{e9}.json", Array("{}".utf8))
        var rng = RNG(seed: 80)
        big = (0..<200_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        put("/big.bin", big)
    }

    func put(_ path: String, _ bytes: [UInt8]) {
        let handle = try! fs.open(try! VFSPath(parsing: Array(path.utf8)), flags: [.write, .create], mode: 0o644)
        _ = bytes.withUnsafeBytes { try! fs.write(handle, offset: 0, from: $0) }
        try! fs.close(handle)
    }

    func serve(_ socket: ScriptedSocket, chunk: Int = 4096) -> Int {
        StaticFileHandler(fileSystem: fs, chunkSize: chunk).serve(socket)
    }

    func get(_ target: String, method: String = "GET", extra: String = "") -> ScriptedSocket {
        let socket = ScriptedSocket("\(method) \(target) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\(extra)\r\n")
        serve(socket)
        return socket
    }

    func status(_ socket: ScriptedSocket) -> String {
        socket.text.components(separatedBy: "\r\n").first ?? ""
    }

    func testGetFileExactBytes() {
        let socket = get("/hello.txt")
        XCTAssertEqual(socket.text, "HTTP/1.1 200 OK\r\nContent-Length: 14\r\nContent-Type: text/plain; charset=utf-8\r\n"
                       + "Connection: close\r\n\r\nHello, world!\n")
        XCTAssertTrue(socket.closed)
        XCTAssertEqual(fs.openHandleCount, 0)
    }

    func testLargeFileStreamsInChunks() {
        let socket = get("/big.bin")
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
        XCTAssertEqual(Array(socket.written.prefix(head.utf8.count)), Array(head.utf8))
        XCTAssertEqual(Array(socket.written.dropFirst(head.utf8.count)), big)
        XCTAssertEqual(fs.openHandleCount, 0)
    }

    func testEmptyFileAndHead() {
        XCTAssertEqual(get("/empty").text, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(get("/big.bin", method: "HEAD").text,
                       "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(get("/missing", method: "HEAD").text,
                       "HTTP/1.1 404 Not Found\r\nContent-Length: 14\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")
    }

    func testErrors() {
        XCTAssertEqual(get("/missing").text, "HTTP/1.1 404 Not Found\r\nContent-Length: 14\r\nContent-Type: text/plain; charset=utf-8\r\n"
                       + "Connection: close\r\n\r\n404 Not Found\n")
        let post = get("/hello.txt", method: "POST", extra: "Content-Length: 3\r\n")
        XCTAssertEqual(post.text, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 23\r\nContent-Type: text/plain; charset=utf-8\r\n"
                       + "Connection: close\r\nAllow: GET, HEAD\r\n\r\n405 Method Not Allowed\n")
        XCTAssertEqual(status(get("/noindex/")), "HTTP/1.1 404 Not Found")
        XCTAssertEqual(status(get("/hello.txt/")), "HTTP/1.1 404 Not Found")
        XCTAssertEqual(status(get("/hello.txt/x")), "HTTP/1.1 404 Not Found")
        XCTAssertEqual(status(get("/%zz")), "HTTP/1.1 400 Bad Request")
        XCTAssertEqual(status(get("/" + String(repeating: "n", count: 300))), "HTTP/1.1 404 Not Found")

        let malformed = ScriptedSocket("GET /hello.txt HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(serve(malformed), 1)
        XCTAssertTrue(malformed.text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        XCTAssertTrue(malformed.text.contains("Connection: close\r\n"))
        XCTAssertFalse(malformed.text.contains("200 OK"), "nothing after a framing error")

        let longTarget = ScriptedSocket("GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: x\r\n\r\n")
        serve(longTarget)
        XCTAssertEqual(status(longTarget), "HTTP/1.1 414 URI Too Long")
        let longHeader = ScriptedSocket("GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "b", count: 9000) + "\r\n\r\n")
        serve(longHeader)
        XCTAssertEqual(status(longHeader), "HTTP/1.1 431 Request Header Fields Too Large")
        XCTAssertEqual(fs.openHandleCount, 0)
    }

    func testKeepAliveThreeRequestsInSeparateReads() {
        let requests = ["GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD /empty HTTP/1.1\r\nHost: x\r\n\r\n",
                        "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"].map { Array($0.utf8) }
        let socket = ScriptedSocket(requests)
        XCTAssertEqual(serve(socket), 3)
        XCTAssertEqual(socket.text,
                       "HTTP/1.1 200 OK\r\nContent-Length: 14\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: keep-alive\r\n\r\nHello, world!\n"
                       + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Type: application/octet-stream\r\nConnection: keep-alive\r\n\r\n"
                       + "HTTP/1.1 404 Not Found\r\nContent-Length: 14\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: keep-alive\r\n\r\n404 Not Found\n")
        XCTAssertTrue(socket.closed, "closed when the client ends the stream")
    }

    func testPipelinedRequestsInOneReadThenClose() {
        let socket = ScriptedSocket("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /a%20b.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                                    + "GET /empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(serve(socket), 3, "nothing is answered after Connection: close")
        XCTAssertEqual(socket.text.components(separatedBy: "HTTP/1.1 ").count - 1, 3)
        XCTAssertEqual(socket.text.components(separatedBy: "HTTP/1.1 200 OK\r\n").count - 1, 3)
        XCTAssertTrue(socket.text.contains("Hello, world!\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n"))
        XCTAssertTrue(socket.text.hasSuffix("Connection: close\r\n\r\n"))
    }

    func testHTTP10ClosesByDefault() {
        let socket = ScriptedSocket("GET /hello.txt HTTP/1.0\r\n\r\nGET /hello.txt HTTP/1.0\r\n\r\n")
        XCTAssertEqual(serve(socket), 1)
        XCTAssertTrue(socket.text.contains("Connection: close"))
    }

    func testIndexAndRedirect() {
        XCTAssertEqual(get("/").text, "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/html; charset=utf-8\r\n"
                       + "Connection: close\r\n\r\n<h1>root</h1>")
        XCTAssertTrue(get("/docs/").text.hasSuffix("text/html; charset=utf-8\r\nConnection: close\r\n\r\n<p>docs</p>"))
        XCTAssertEqual(get("/docs?x=1").text, "HTTP/1.1 301 Moved Permanently\r\nLocation: /docs/?x=1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(status(get("/docs/./")), "HTTP/1.1 200 OK")
    }

    func testPercentEncodedNames() {
        XCTAssertTrue(get("/a%20b.txt").text.hasSuffix("\r\n\r\nspaces"))
        let utf8 = get("/caf%C3%A9.json")
        XCTAssertTrue(utf8.text.contains("Content-Type: application/json\r\n"))
        XCTAssertTrue(utf8.text.hasSuffix("\r\n\r\n{}"))
        XCTAssertTrue(get("/docs/../hello.txt?q#f").text.hasSuffix("Hello, world!\n"), "a .. inside the root is resolved")
    }

    func testTraversalNeverLeavesTheRoot() {
        for target in ["/../hello.txt", "/%2e%2e/hello.txt", "/%2E%2E/%2e%2e/etc/passwd", "/docs/../../hello.txt",
                       "/..%2fhello.txt", "/docs%2findex.html", "/%00", "/a%0a"] {
            let socket = get(target)
            XCTAssertEqual(status(socket), "HTTP/1.1 400 Bad Request", target)
            XCTAssertFalse(socket.text.contains("Hello"), target)
        }
    }

    /// A back-end failure before the head is a 500; a failure after it ends the connection.
    func testIOErrors() {
        final class Failing: FileSystem {
            let inner: MemoryFileSystem
            var failReads = false, failStat = false
            init(_ inner: MemoryFileSystem) { self.inner = inner }
            func stat(_ path: VFSPath) throws(FileSystemError) -> FileAttributes { if failStat { throw .io }; return try inner.stat(path) }
            func open(_ path: VFSPath, flags: OpenFlags, mode: UInt32) throws(FileSystemError) -> FileHandleID { try inner.open(path, flags: flags, mode: mode) }
            func read(_ handle: FileHandleID, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
                if failReads && offset > 0 { throw .io }
                return try inner.read(handle, offset: offset, into: buffer)
            }
            func write(_ handle: FileHandleID, offset: UInt64, from buffer: UnsafeRawBufferPointer) throws(FileSystemError) -> Int { throw .readOnly }
            func attributes(_ handle: FileHandleID) throws(FileSystemError) -> FileAttributes {
                if failStat { throw .io }
                return try inner.attributes(handle)
            }
            func close(_ handle: FileHandleID) throws(FileSystemError) { try inner.close(handle) }
            func readDirectory(_ path: VFSPath) throws(FileSystemError) -> [DirectoryEntry] { try inner.readDirectory(path) }
            func makeDirectory(_ path: VFSPath, mode: UInt32) throws(FileSystemError) { throw .readOnly }
            func remove(_ path: VFSPath) throws(FileSystemError) { throw .readOnly }
            func removeDirectory(_ path: VFSPath) throws(FileSystemError) { throw .readOnly }
            func rename(from: VFSPath, to: VFSPath) throws(FileSystemError) { throw .readOnly }
            func truncate(_ path: VFSPath, size: UInt64) throws(FileSystemError) { throw .readOnly }
        }
        let failing = Failing(fs)
        failing.failStat = true
        let first = ScriptedSocket("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        StaticFileHandler(fileSystem: failing, chunkSize: 4096).serve(first)
        XCTAssertEqual(status(first), "HTTP/1.1 500 Internal Server Error")
        failing.failStat = false
        failing.failReads = true
        let second = ScriptedSocket("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(StaticFileHandler(fileSystem: failing, chunkSize: 4096).serve(second), 1)
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\nContent-Type: application/octet-stream\r\nConnection: keep-alive\r\n\r\n"
        XCTAssertEqual(second.written.count, head.utf8.count + 4096, "the head and the first chunk, then the connection ends")
        XCTAssertEqual(fs.openHandleCount, 0)
    }

    func testShortMemoryAnswers503AndTheConnectionGoesOn() {
        MemoryBudget.isEnforced = true
        MemoryBudget.reserveOverride = Int.max / 4
        defer { MemoryBudget.isEnforced = false; MemoryBudget.reserveOverride = nil }
        // The request buffer (4 KiB) already holds small bodies; the big file needs more.
        let socket = ScriptedSocket("GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /big.bin HTTP/1.1\r\nHost: t\r\n\r\nHEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(StaticFileHandler(fileSystem: fs).serve(socket), 3)
        XCTAssertTrue(socket.text.hasPrefix("HTTP/1.1 200 OK\r\n"), socket.text)
        XCTAssertTrue(socket.text.contains("Hello, world!\n"))
        XCTAssertTrue(socket.text.contains("HTTP/1.1 503 Service Unavailable\r\n"), socket.text)
        XCTAssertTrue(socket.text.hasSuffix("Content-Length: 200000\r\nContent-Type: application/octet-stream\r\nConnection: keep-alive\r\n\r\n"),
                      "HEAD needs no body buffer")
        XCTAssertEqual(fs.openHandleCount, 0)
    }
}
