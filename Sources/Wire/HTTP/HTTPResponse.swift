// HTTP/1.1 response heads for the `static-web` service (RFC 9110 §15, RFC 9112 §4).
//
// Everything is bytes: a response is a status line, `Content-Length`, `Content-Type`,
// `Connection` (and `Allow` on 405), then an empty line. The caller writes the body (a file)
// after `head(...)`, except for HEAD, whose response carries the same headers and no body
// (RFC 9110 §9.3.2). `error(...)` builds a complete small response for an error status.
// No `String` is used: `String ==` would pull Unicode tables into the kernel.

/// The statuses `static-web` answers with.
public enum HTTPStatus: UInt16, Sendable {
    /// The file follows.
    case ok = 200
    /// A malformed request line, header, version or target (RFC 9112 §3, §5).
    case badRequest = 400
    /// No such file, or a target that cannot name one.
    case notFound = 404
    /// A method other than GET or HEAD; answered with `Allow: GET, HEAD` (RFC 9110 §15.5.6).
    case methodNotAllowed = 405
    /// The request line is longer than the parser's limit (RFC 9110 §15.5.15).
    case uriTooLong = 414
    /// A header line or the header section is too large (RFC 6585 §5).
    case headersTooLarge = 431
    /// The service failed (for example a disk read error).
    case internalServerError = 500
    /// `Transfer-Encoding` on a request: bodies are only accepted with Content-Length.
    case notImplemented = 501
    /// Memory is short (the kernel's budget refused the body's buffer): try again later
    /// (RFC 9110 §15.6.4).
    case serviceUnavailable = 503

    /// The reason phrase sent after the code.
    public var reason: StaticString {
        switch self {
        case .ok: return "OK"
        case .badRequest: return "Bad Request"
        case .notFound: return "Not Found"
        case .methodNotAllowed: return "Method Not Allowed"
        case .uriTooLong: return "URI Too Long"
        case .headersTooLarge: return "Request Header Fields Too Large"
        case .internalServerError: return "Internal Server Error"
        case .notImplemented: return "Not Implemented"
        case .serviceUnavailable: return "Service Unavailable"
        }
    }
}

/// Media types by file-name extension.
public enum ContentType {
    public static let fallback: StaticString = "application/octet-stream"

    /// The media type for an extension (without the dot), compared ASCII-case-insensitively;
    /// `application/octet-stream` for anything unknown.
    public static func forExtension<C: Collection<UInt8>>(_ ext: C) -> StaticString {
        var key: UInt64 = 0   // up to 8 lowercased bytes packed big-endian
        guard ext.count >= 1 && ext.count <= 8 else { return fallback }
        for byte in ext { key = key << 8 | UInt64(HTTPBytes.lower(byte)) }
        switch key {
        case pack("html"), pack("htm"): return "text/html; charset=utf-8"
        case pack("css"): return "text/css; charset=utf-8"
        case pack("js"): return "text/javascript; charset=utf-8"
        case pack("json"): return "application/json"
        case pack("txt"): return "text/plain; charset=utf-8"
        case pack("png"): return "image/png"
        case pack("jpg"), pack("jpeg"): return "image/jpeg"
        case pack("gif"): return "image/gif"
        case pack("svg"): return "image/svg+xml"
        case pack("ico"): return "image/vnd.microsoft.icon"
        case pack("wasm"): return "application/wasm"
        case pack("pdf"): return "application/pdf"
        default: return fallback
        }
    }

    /// The media type for a file name: the bytes after its last "." (none: the fallback).
    public static func forName<C: BidirectionalCollection<UInt8>>(_ name: C) -> StaticString {
        guard let dot = name.lastIndex(of: 0x2E) else { return fallback }
        return forExtension(name[name.index(after: dot)...])
    }

    private static func pack(_ text: StaticString) -> UInt64 {
        var key: UInt64 = 0
        text.withUTF8Buffer { for byte in $0 { key = key << 8 | UInt64(byte) } }
        return key
    }
}

public enum HTTPResponse {
    /// The status line and headers, through the empty line. `contentLength` is the body's
    /// length, also for HEAD (RFC 9110 §8.6). `keepAlive: false` sends `Connection: close`.
    public static func head(_ status: HTTPStatus, contentLength: Int, contentType: StaticString,
                            keepAlive: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160)
        append("HTTP/1.1 ", to: &out)
        appendDecimal(Int(status.rawValue), to: &out)
        out.append(0x20)
        append(status.reason, to: &out)
        append("\r\nContent-Length: ", to: &out)
        appendDecimal(contentLength, to: &out)
        append("\r\nContent-Type: ", to: &out)
        append(contentType, to: &out)
        append(keepAlive ? "\r\nConnection: keep-alive" : "\r\nConnection: close", to: &out)
        if status == .methodNotAllowed { append("\r\nAllow: GET, HEAD", to: &out) }
        append("\r\n\r\n", to: &out)
        return out
    }

    /// A complete response for an error status: the head and a one-line `text/plain` body
    /// ("404 Not Found\n"), without the body when `isHead`.
    public static func error(_ status: HTTPStatus, isHead: Bool = false, keepAlive: Bool) -> [UInt8] {
        var body: [UInt8] = []
        appendDecimal(Int(status.rawValue), to: &body)
        body.append(0x20)
        append(status.reason, to: &body)
        body.append(0x0A)
        var out = head(status, contentLength: body.count, contentType: "text/plain; charset=utf-8",
                       keepAlive: keepAlive)
        if !isHead { out.append(contentsOf: body) }
        return out
    }

    public static func append(_ text: StaticString, to out: inout [UInt8]) {
        text.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    public static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        precondition(value >= 0, "negative length")
        var digits: [UInt8] = []
        var rest = value
        repeat {
            digits.append(0x30 + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        out.append(contentsOf: digits.reversed())
    }
}
