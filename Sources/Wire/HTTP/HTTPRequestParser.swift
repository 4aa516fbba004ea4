// Incremental HTTP/1.1 request parser (RFC 9112) for `static-web`.
//
// Callers `feed` bytes as they arrive and call `next()` until it answers `.needMore`: one
// read may hold part of a request, or several pipelined requests (RFC 9112 §9.3). A request
// is delivered once its header section is complete; its body (Content-Length, at most
// `limits.maximumBody` bytes) is then read and discarded before the next request line.
// After `.failure` the parser stays failed: the service answers the status with
// `Connection: close` and closes, since the message framing can no longer be trusted.
// Feed only after `.needMore` so the buffer stays bounded by one read.
//
// Rules (the peer is hostile, STYLE principle 7):
//   * a line ends at LF; a CR is allowed only just before it (RFC 9112 §2.2). Empty lines
//     before a request line are ignored (§2.2).
//   * request-line = method SP request-target SP HTTP-version (§3), single spaces, method a
//     token, target visible ASCII only, version `HTTP/1.d` (another major: 400). Longer than
//     `maximumRequestLine` bytes: 414, or 400 if no method-and-space start it.
//   * field-line = name ":" OWS value OWS (§5); whitespace before ":" and obs-fold (a line
//     starting with SP/HTAB, §5.2) are 400. A line over `maximumHeaderLine`, or field lines
//     over `maximumHeaderSection` bytes in total: 431.
//   * HTTP/1.1 needs exactly one Host (RFC 9112 §3.2), else 400.
//   * Connection: `close` closes, `keep-alive` keeps an HTTP/1.0 connection open; the
//     default is keep-alive for 1.1 and close for 1.0 (§9.3).
//   * Content-Length: digits only; duplicates must agree; over `maximumBody`: 400.
//   * Transfer-Encoding: 501 (no chunked bodies on GET/HEAD); with Content-Length too: 400,
//     the request-smuggling case of §6.3.
//   * Other methods are parsed normally and delivered as `.other`; the service answers 405.

/// GET and HEAD are served; anything else is `.other` (answered 405).
public enum HTTPMethod: Equatable, Sendable {
    case get, head, other
}

/// A parsed request head.
public struct HTTPRequest: Equatable, Sendable {
    public var method: HTTPMethod
    /// The request-target exactly as sent (decode it with `HTTPTarget`).
    public var target: [UInt8]
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1 (and later 1.x).
    public var minorVersion: UInt8
    /// Whether the connection stays open after the response.
    public var keepAlive: Bool
    /// The body length the parser discards before the next request.
    public var contentLength: Int

    /// The decoded, normalised path of `target`.
    public func path() throws(HTTPTargetError) -> HTTPTarget {
        try HTTPTarget.parse(target)
    }
}

/// Why a request was refused; each maps to the status to answer.
public enum HTTPRequestError: Error, Equatable, Sendable {
    /// Malformed request line, header or version, bad Content-Length, missing Host: 400.
    case badRequest
    /// The request line exceeds `maximumRequestLine`: 414.
    case uriTooLong
    /// A header line or the header section exceeds its limit: 431.
    case headersTooLarge
    /// A Transfer-Encoding the service does not implement: 501.
    case notImplemented

    public var status: HTTPStatus {
        switch self {
        case .badRequest: return .badRequest
        case .uriTooLong: return .uriTooLong
        case .headersTooLarge: return .headersTooLarge
        case .notImplemented: return .notImplemented
        }
    }
}

/// What `next()` found.
public enum HTTPParseEvent: Equatable, Sendable {
    case request(HTTPRequest)
    /// Feed more bytes.
    case needMore
    /// The request is refused; answer `error.status` and close.
    case failure(HTTPRequestError)
}

public struct HTTPLimits: Sendable {
    /// Longest request line, without its CRLF.
    public var maximumRequestLine = 8192
    /// Longest field line, without its CRLF.
    public var maximumHeaderLine = 8192
    /// All field lines of one request, CRLFs included.
    public var maximumHeaderSection = 16384
    /// Longest Content-Length accepted (and discarded).
    public var maximumBody = 65536
    public init() {}
}

public struct HTTPRequestParser {
    public let limits: HTTPLimits
    private var buffer: [UInt8] = []
    /// Bytes before `start` are consumed.
    private var start = 0
    /// Bytes after `start` already searched for LF.
    private var scanned = 0
    private var phase = Phase.requestLine
    private var request = HTTPRequest(method: .other, target: [], minorVersion: 1, keepAlive: true, contentLength: 0)
    private var headerBytes = 0
    private var hosts = 0
    private var sawContentLength = false
    private var sawTransferEncoding = false
    private var sawClose = false
    private var sawKeepAlive = false

    private enum Phase: Equatable {
        case requestLine, headers, body(Int), failed(HTTPRequestError)
    }

    public init(limits: HTTPLimits = HTTPLimits()) {
        self.limits = limits
    }

    /// Appends received bytes.
    public mutating func feed<C: Collection<UInt8>>(_ bytes: C) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Appends one socket read.
    public mutating func feed(raw bytes: UnsafeRawBufferPointer) {
        feed(bytes)
    }

    /// Bytes fed but not yet consumed.
    public var buffered: Int { buffer.count - start }

    /// The next request, `.needMore`, or the failure that ended the connection.
    public mutating func next() -> HTTPParseEvent {
        while true {
            switch phase {
            case .failed(let error):
                return .failure(error)
            case .body(let remaining):
                let count = min(remaining, buffer.count - start)
                start += count
                if remaining > count {
                    phase = .body(remaining - count)
                    return .needMore
                }
                phase = .requestLine
            case .requestLine, .headers:
                let limit = phase == .requestLine ? limits.maximumRequestLine : limits.maximumHeaderLine
                guard let line = takeLine(limit: limit) else {
                    if case .failed(let error) = phase { return .failure(error) }
                    return .needMore
                }
                if phase == .requestLine {
                    if line.isEmpty { continue }
                    guard parseRequestLine(line) else { return fail(.badRequest) }
                    phase = .headers
                } else if line.isEmpty {
                    return finishHead()
                } else {
                    headerBytes += line.count + 2
                    guard headerBytes <= limits.maximumHeaderSection else { return fail(.headersTooLarge) }
                    if let error = parseFieldLine(line) { return fail(error) }
                }
            }
        }
    }

    private mutating func fail(_ error: HTTPRequestError) -> HTTPParseEvent {
        phase = .failed(error)
        return .failure(error)
    }

    /// The next line without its terminator, or nil (more bytes needed, or `phase` failed).
    private mutating func takeLine(limit: Int) -> ArraySlice<UInt8>? {
        var index = start + scanned
        while index < buffer.count && buffer[index] != HTTPBytes.lf { index += 1 }
        scanned = index - start
        guard index < buffer.count else {
            // Past the limit, unless the one extra byte is a CR that an LF may still follow.
            if scanned > limit + 1 || (scanned == limit + 1 && buffer[index - 1] != HTTPBytes.cr) {
                _ = overLimit()
            }
            return nil
        }
        var end = index
        if end > start && buffer[end - 1] == HTTPBytes.cr { end -= 1 }
        if end - start > limit { _ = overLimit(); return nil }
        let line = buffer[start ..< end]
        start = index + 1
        scanned = 0
        if line.contains(HTTPBytes.cr) { phase = .failed(.badRequest); return nil }   // bare CR, §2.2
        return line
    }

    private mutating func overLimit() -> HTTPParseEvent {
        guard phase == .requestLine else { return fail(.headersTooLarge) }
        // Too long a line that starts with a method and a space is too long a target.
        let head = buffer[start ..< min(buffer.count, start + 33)]
        guard let space = head.firstIndex(of: HTTPBytes.space), space > start,
              buffer[start ..< space].allSatisfy(HTTPBytes.isTokenChar) else { return fail(.badRequest) }
        return fail(.uriTooLong)
    }

    private mutating func parseRequestLine(_ line: ArraySlice<UInt8>) -> Bool {
        request = HTTPRequest(method: .other, target: [], minorVersion: 1, keepAlive: true, contentLength: 0)
        headerBytes = 0
        hosts = 0
        sawContentLength = false
        sawTransferEncoding = false
        sawClose = false
        sawKeepAlive = false
        guard let firstSpace = line.firstIndex(of: HTTPBytes.space),
              let secondSpace = line[(firstSpace + 1)...].firstIndex(of: HTTPBytes.space) else { return false }
        let method = line[line.startIndex ..< firstSpace]
        let target = line[(firstSpace + 1) ..< secondSpace]
        let version = line[(secondSpace + 1)...]
        guard !method.isEmpty, method.allSatisfy(HTTPBytes.isTokenChar),
              !target.isEmpty, target.allSatisfy(HTTPBytes.isVisible) else { return false }
        // "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3); only major version 1.
        guard version.count == 8, HTTPBytes.equals(version.prefix(7), "HTTP/1."),
              let minor = version.last, minor >= 0x30 && minor <= 0x39 else { return false }
        request.minorVersion = minor - 0x30
        if HTTPBytes.equals(method, "GET") {
            request.method = .get
        } else if HTTPBytes.equals(method, "HEAD") {
            request.method = .head
        }
        request.target = Array(target)
        return true
    }

    private mutating func parseFieldLine(_ line: ArraySlice<UInt8>) -> HTTPRequestError? {
        guard let colon = line.firstIndex(of: HTTPBytes.colon) else { return .badRequest }
        let name = line[line.startIndex ..< colon]
        // Empty names, whitespace before the colon and obs-fold fail the token check.
        guard !name.isEmpty, name.allSatisfy(HTTPBytes.isTokenChar) else { return .badRequest }
        let value = HTTPBytes.trimmed(line[(colon + 1)...])
        guard value.allSatisfy(HTTPBytes.isFieldValueChar) else { return .badRequest }
        if HTTPBytes.equalsIgnoringCase(name, "host") {
            hosts += 1
        } else if HTTPBytes.equalsIgnoringCase(name, "connection") {
            for option in value.split(separator: HTTPBytes.comma) {
                let token = HTTPBytes.trimmed(option)
                if HTTPBytes.equalsIgnoringCase(token, "close") { sawClose = true }
                if HTTPBytes.equalsIgnoringCase(token, "keep-alive") { sawKeepAlive = true }
            }
        } else if HTTPBytes.equalsIgnoringCase(name, "content-length") {
            guard let length = Self.decimal(value, limit: limits.maximumBody) else { return .badRequest }
            if sawContentLength && length != request.contentLength { return .badRequest }
            sawContentLength = true
            request.contentLength = length
        } else if HTTPBytes.equalsIgnoringCase(name, "transfer-encoding") {
            sawTransferEncoding = true
        }
        return nil
    }

    private mutating func finishHead() -> HTTPParseEvent {
        if sawTransferEncoding { return fail(sawContentLength ? .badRequest : .notImplemented) }
        if request.minorVersion >= 1 && hosts != 1 { return fail(.badRequest) }
        if hosts > 1 { return fail(.badRequest) }
        request.keepAlive = !sawClose && (request.minorVersion >= 1 || sawKeepAlive)
        phase = request.contentLength > 0 ? .body(request.contentLength) : .requestLine
        return .request(request)
    }

    /// 1*DIGIT not above `limit`, or nil.
    static func decimal(_ bytes: ArraySlice<UInt8>, limit: Int) -> Int? {
        guard !bytes.isEmpty else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            value = value * 10 + Int(byte - 0x30)
            if value > limit { return nil }
        }
        return value
    }
}
