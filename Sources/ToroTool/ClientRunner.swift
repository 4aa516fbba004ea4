// Runs a client script (ClientScript.swift) against a TCP port on 127.0.0.1 and returns
// two things:
//
//   * `replies`: what the service sent, one or more lines per reading step, each starting
//     with the script's line number: `7: got VALUE 1\n`, `9: closed`, `12: HTTP/1.1 200 OK`,
//     `12: header Content-Length: 5`, `12: body 5 bytes, crc32 3610a686`, `4: error ...`.
//     Nothing in it depends on the platform or the port, so two platforms' replies can be
//     compared line by line (CompareNetwork.swift);
//   * `mismatches`: one line per step whose expectation failed,
//     `Compat/kv/client:7: expected 'VALUE 1\n', got 'NOT_FOUND\n'`.
//
// Every wait has the script's timeout (default 20 s) and every buffer a cap: a reply that
// does not match is read to the end of its line (or for half a second) so the report shows
// it whole; an HTTP head may hold 64 KiB and a body 256 MiB. When a connection fails
// (refused, reset, timed out), its remaining steps are skipped, with one line saying so,
// up to the next `connect`.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Wire

public struct ClientOutcome: Equatable, Sendable {
    public var replies: [String] = []
    public var mismatches: [String] = []
    /// The steps that ran (skipped ones not counted).
    public var stepsRun = 0

    public init() {}
}

public enum ClientRunner {
    /// The largest HTTP head and body read.
    static let maximumHead = 64 * 1024
    static let maximumBody = 256 << 20
    /// How much of an unexpected reply is kept for the report.
    static let maximumMismatch = 4096

    /// Runs `script` against `host`:`port`; a connection is retried for `connectWithin`
    /// seconds (a forward that is still being set up).
    public static func run(_ script: ClientScript, port: Int, host: String = "127.0.0.1",
                           connectWithin: Double = 10) -> ClientOutcome {
        var outcome = ClientOutcome()
        var timeout = Double(ClientScript.defaultTimeout)
        var connection: ScriptConnection? = nil
        var broken: Int? = nil          // the line where the current connection failed
        var response: HTTPReply? = nil
        defer { connection?.close() }

        func mismatch(_ line: Int, _ text: String) { outcome.mismatches.append("\(script.file):\(line): \(text)") }
        func failed(_ line: Int, _ error: ScriptIOError) {
            outcome.replies.append("\(line): error \(error)")
            mismatch(line, "\(error)")
            connection?.close()
            connection = nil
            broken = line
        }
        func open(_ line: Int) -> ScriptConnection? {
            if let connection { return connection }
            switch ScriptConnection.connect(host: host, port: port, within: connectWithin) {
            case .success(let opened): connection = opened; return opened
            case .failure(let error): failed(line, error); return nil
            }
        }

        for line in script.lines {
            let number = line.number
            switch line.step {
            case .connect:
                connection?.close()
                connection = nil
                broken = nil
                response = nil
                outcome.stepsRun += 1
                _ = open(number)
                continue
            case .timeout(let seconds):
                timeout = Double(seconds)
                continue
            case .close:
                connection?.close()
                connection = nil
                broken = nil
                response = nil
                outcome.stepsRun += 1
                continue
            default:
                break
            }
            if let at = broken {
                // Only the first skipped step says so.
                if outcome.mismatches.last?.hasSuffix("skipped up to the next connect") != true {
                    mismatch(number, "not run: the connection failed at line \(at); skipped up to the next connect")
                }
                continue
            }
            outcome.stepsRun += 1
            switch line.step {
            case .send(let bytes):
                guard let connection = open(number) else { continue }
                if case .failure(let error) = connection.send(bytes, timeout: timeout) { failed(number, error) }
            case .expect(let expected):
                guard let connection = open(number) else { continue }
                switch connection.read(expecting: expected, timeout: timeout) {
                case .success(let got):
                    outcome.replies.append("\(number): got " + ClientScript.escape(got))
                    if got != expected {
                        mismatch(number, "expected \(ClientScript.quote(expected)), got \(ClientScript.quote(got))")
                    }
                case .failure(let error):
                    failed(number, error)
                }
            case .closed:
                guard let connection = open(number) else { continue }
                switch connection.readToEnd(timeout: timeout, limit: maximumMismatch) {
                case .success(let rest) where rest.isEmpty:
                    outcome.replies.append("\(number): closed")
                case .success(let rest):
                    outcome.replies.append("\(number): got " + ClientScript.escape(rest) + " then closed")
                    mismatch(number, "expected the service to close the connection, got \(ClientScript.quote(rest)) first")
                case .failure(.timedOut(let seconds)):
                    outcome.replies.append("\(number): still open")
                    mismatch(number, "expected the service to close the connection; it was still open after \(Int(seconds)) s")
                case .failure(let error):
                    failed(number, error)
                }
            case .response(let status, let hasBody):
                guard let connection = open(number) else { continue }
                switch connection.readHTTP(hasBody: hasBody, timeout: timeout) {
                case .success(let reply):
                    response = reply
                    outcome.replies.append("\(number): \(reply.statusLine)")
                    outcome.replies += reply.headers.map { "\(number): header \($0.name): \($0.value)" }
                    if hasBody {
                        outcome.replies.append("\(number): body \(reply.body.count) bytes, crc32 \(hex(CRC32.checksum(reply.body)))")
                    }
                    if reply.status != status {
                        mismatch(number, "expected status \(status), got \(reply.status) ('\(reply.statusLine)')")
                    }
                case .failure(let error):
                    response = nil
                    failed(number, error)
                }
            case .header(let name, let value):
                guard let response else { mismatch(number, "no response was read"); continue }
                let fields = response.headers.filter { $0.name.lowercased() == name.lowercased() }
                if fields.isEmpty {
                    mismatch(number, "expected a field '\(name): \(value)', the response has no \(name)")
                } else if !fields.contains(where: { $0.value == value }) {
                    mismatch(number, "expected '\(name): \(value)', got '\(name): \(fields[0].value)'")
                }
            case .body(let expected):
                guard let response else { mismatch(number, "no response was read"); continue }
                if response.body != expected {
                    mismatch(number, "expected the body \(ClientScript.quote(expected)), got \(ClientScript.quote(response.body))")
                }
            case .bodySize(let size):
                guard let response else { mismatch(number, "no response was read"); continue }
                if response.body.count != size {
                    mismatch(number, "expected a body of \(size) bytes, got \(response.body.count)")
                }
            case .bodyCRC32(let crc):
                guard let response else { mismatch(number, "no response was read"); continue }
                let got = CRC32.checksum(response.body)
                if got != crc { mismatch(number, "expected the body's crc32 \(hex(crc)), got \(hex(got))") }
            case .connect, .close, .timeout:
                break
            }
        }
        return outcome
    }

    static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}

/// Why a step could not talk to the service; the text is the same on every platform.
enum ScriptIOError: Error, Equatable, CustomStringConvertible {
    case refused
    case timedOut(Double)
    case closedEarly([UInt8])
    case reset
    case badHTTP(String)
    case tooLarge(String)

    var description: String {
        switch self {
        case .refused: "cannot connect to the service's port"
        case .timedOut(let seconds): "no reply within \(Int(seconds)) s"
        case .closedEarly(let bytes): bytes.isEmpty ? "the service closed the connection"
            : "the service closed the connection after \(ClientScript.quote(bytes))"
        case .reset: "the connection was reset"
        case .badHTTP(let why): "not an HTTP response: \(why)"
        case .tooLarge(let what): "\(what) is too large"
        }
    }
}

/// One HTTP response as the script read it.
struct HTTPReply {
    var statusLine: String
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]
}

/// A TCP connection whose every read and write has a deadline (poll), with the bytes
/// received but not yet used.
final class ScriptConnection {
    private var fd: Int32
    private var pending: [UInt8] = []
    private var atEnd = false

    private init(fd: Int32) { self.fd = fd }

    deinit { close() }

    static func connect(host: String, port: Int, within seconds: Double) -> Result<ScriptConnection, ScriptIOError> {
        do throws(KVClientError) {
            let client = try KVClient.connect(port: port, host: host, within: seconds, timeout: seconds)
            // Take the descriptor over: reads below wait with poll, not SO_RCVTIMEO.
            let fd = dup(client.fd)
            client.close()
            guard fd >= 0 else { return .failure(.refused) }
            return .success(ScriptConnection(fd: fd))
        } catch {
            return .failure(.refused)
        }
    }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    func send(_ bytes: [UInt8], timeout: Double) -> Result<Void, ScriptIOError> {
        var offset = 0
        let deadline = BackgroundProcess.monotonicNow() + timeout
        while offset < bytes.count {
            guard wait(for: Int16(POLLOUT), until: deadline) else { return .failure(.timedOut(timeout)) }
            let sent = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if sent < 0 {
                if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
                return .failure(errno == EPIPE ? .closedEarly([]) : .reset)
            }
            offset += sent
        }
        return .success(())
    }

    /// Waits until `fd` is ready for `events` or the deadline passes.
    private func wait(for events: Int16, until deadline: Double) -> Bool {
        while true {
            let left = deadline - BackgroundProcess.monotonicNow()
            if left <= 0 { return false }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, Int32(min(left * 1000, 1000).rounded(.up)))
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { return true }   // let the read or write report it
        }
    }

    /// Reads what has arrived into `pending`; false at the deadline. Sets `atEnd` when the
    /// service closed its side.
    private func fill(until deadline: Double) -> Result<Bool, ScriptIOError> {
        if atEnd { return .success(true) }
        guard fd >= 0 else { return .failure(.closedEarly([])) }
        guard wait(for: Int16(POLLIN), until: deadline) else { return .success(false) }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if count > 0 { pending += chunk[0..<count]; return .success(true) }
        if count == 0 { atEnd = true; return .success(true) }
        if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { return .success(true) }
        return .failure(.reset)
    }

    private func take(_ count: Int) -> [UInt8] {
        let bytes = Array(pending.prefix(count))
        pending.removeFirst(min(count, pending.count))
        return bytes
    }

    /// The next `expected.count` bytes. Once they diverge from `expected`, the rest of
    /// that line (up to a "\n", the end of the stream, half a second of quiet or the
    /// report's cap) instead, so the report shows the whole wrong reply.
    func read(expecting expected: [UInt8], timeout: Double) -> Result<[UInt8], ScriptIOError> {
        let deadline = BackgroundProcess.monotonicNow() + timeout
        while true {
            let compared = min(pending.count, expected.count)
            if let wrong = (0..<compared).first(where: { pending[$0] != expected[$0] }) {
                return .success(readRestOfLine(from: wrong, deadline: deadline))
            }
            if pending.count >= expected.count { return .success(take(expected.count)) }
            if atEnd { return .failure(.closedEarly(take(pending.count))) }
            switch fill(until: deadline) {
            case .success(true): continue
            case .success(false):
                return pending.isEmpty ? .failure(.timedOut(timeout)) : .success(take(pending.count))
            case .failure(let error): return .failure(error)
            }
        }
    }

    private func readRestOfLine(from index: Int, deadline: Double) -> [UInt8] {
        let quiet = min(deadline, BackgroundProcess.monotonicNow() + 0.5)
        while true {
            if let newline = pending[index...].firstIndex(of: 10) { return take(newline + 1) }
            if atEnd || pending.count >= ClientRunner.maximumMismatch { return take(pending.count) }
            guard case .success(true) = fill(until: quiet) else { return take(pending.count) }
        }
    }

    /// Everything until the service closes the connection (at most `limit` bytes kept).
    func readToEnd(timeout: Double, limit: Int) -> Result<[UInt8], ScriptIOError> {
        let deadline = BackgroundProcess.monotonicNow() + timeout
        while !atEnd {
            if pending.count > limit { return .success(take(limit)) }
            switch fill(until: deadline) {
            case .success(true): continue
            case .success(false):
                return pending.isEmpty ? .failure(.timedOut(timeout)) : .success(take(pending.count))
            case .failure(let error):
                return pending.isEmpty ? .failure(error) : .success(take(pending.count))
            }
        }
        return .success(take(pending.count))
    }

    /// One HTTP/1.x response: the head, then the body by Content-Length (or to the end of
    /// the stream without one), none when `hasBody` is false.
    func readHTTP(hasBody: Bool, timeout: Double) -> Result<HTTPReply, ScriptIOError> {
        let deadline = BackgroundProcess.monotonicNow() + timeout
        let separator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int? = nil
        var searched = 0
        while headEnd == nil {
            if pending.count >= 4 {
                headEnd = (max(0, searched - 3)...(pending.count - 4)).first { pending[$0..<$0 + 4].elementsEqual(separator) }
                searched = pending.count
            }
            if headEnd != nil { break }
            if pending.count > ClientRunner.maximumHead { return .failure(.tooLarge("the response head")) }
            if atEnd { return .failure(.closedEarly(take(pending.count))) }
            switch fill(until: deadline) {
            case .success(true): continue
            case .success(false): return .failure(.timedOut(timeout))
            case .failure(let error): return .failure(error)
            }
        }
        let head = String(decoding: take(headEnd!), as: UTF8.self)
        _ = take(4)
        let lines = head.components(separatedBy: "\r\n")
        let words = lines[0].split(separator: " ", maxSplits: 2)
        guard words.count >= 2, words[0].hasPrefix("HTTP/1."), words[1].count == 3, let status = Int(words[1]) else {
            return .failure(.badHTTP("status line '\(lines[0])'"))
        }
        var reply = HTTPReply(statusLine: lines[0], status: status, headers: [], body: [])
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { return .failure(.badHTTP("header line '\(line)'")) }
            reply.headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingSpaces()))
        }
        guard hasBody, status >= 200, status != 204, status != 304 else { return .success(reply) }
        let field = reply.headers.first { $0.name.lowercased() == "content-length" }?.value
        if reply.headers.contains(where: { $0.name.lowercased() == "transfer-encoding" }) {
            return .failure(.badHTTP("a Transfer-Encoding body, which scripts do not read"))
        }
        if let field {
            guard let length = Int(field), length >= 0 else { return .failure(.badHTTP("Content-Length '\(field)'")) }
            guard length <= ClientRunner.maximumBody else { return .failure(.tooLarge("a body of \(length) bytes")) }
            while pending.count < length {
                if atEnd { return .failure(.closedEarly([])) }
                switch fill(until: deadline) {
                case .success(true): continue
                case .success(false): return .failure(.timedOut(timeout))
                case .failure(let error): return .failure(error)
                }
            }
            reply.body = take(length)
        } else {
            switch readToEnd(timeout: timeout, limit: ClientRunner.maximumBody) {
            case .success(let body): reply.body = body
            case .failure(let error): return .failure(error)
            }
        }
        return .success(reply)
    }
}
