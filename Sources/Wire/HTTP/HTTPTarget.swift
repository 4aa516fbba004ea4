// The file path a request-target names, made safe to look up under the web root.
//
// Steps, in order:
//   1. Form (RFC 9112 §3.2): origin-form "/path?query" is the normal case; absolute-form
//      "http://host/path" (or https) is accepted and its authority ignored. "*" and anything
//      else: 400.
//   2. The query ("?...") and a fragment ("#...") are dropped.
//   3. The path is split at "/" BEFORE decoding, so an encoded "%2F" can never become a
//      separator; empty segments ("//") are skipped.
//   4. Each segment is percent-decoded once (RFC 3986 §2.1): "%" must be followed by two hex
//      digits, else 400. "%252e" decodes to the literal bytes "%2e" and stays a name.
//      A decoded byte below 0x20, DEL, or "/" is 400 (no file name holds them; "%00" would
//      cut a C string). Other bytes, UTF-8 included, are kept as they are; "\" is an
//      ordinary byte, not a separator.
//   5. Dot segments (RFC 3986 §5.2.4), judged after decoding so "%2e%2e" is "..": "." is
//      dropped, ".." removes the previous component; a ".." with nothing left to remove
//      would leave the root and is 400 rather than clamped, so no path escapes.
//   6. A component longer than 255 bytes cannot exist on ext2: 404.
// The result holds only components that are neither empty, ".", ".." nor contain "/" or NUL.

/// Why a target names no file.
public enum HTTPTargetError: Error, Equatable, Sendable {
    /// Malformed target, bad escape, forbidden byte, or a path above the root: 400.
    case badRequest
    /// Well-formed, but no file can have this name: 404.
    case notFound

    public var status: HTTPStatus { self == .badRequest ? .badRequest : .notFound }
}

public struct HTTPTarget: Equatable, Sendable {
    /// The longest file name ext2 allows.
    public static let maximumComponent = 255

    /// The path below the root, one decoded name per element; empty for the root itself.
    public var components: [[UInt8]]
    /// The path ended in "/" (or named the root): the service looks for an index file.
    public var isDirectory: Bool

    public init(components: [[UInt8]], isDirectory: Bool) {
        self.components = components
        self.isDirectory = isDirectory
    }

    /// Decodes and normalises a request-target (see the file header).
    public static func parse<C: Collection<UInt8>>(_ target: C) throws(HTTPTargetError) -> HTTPTarget {
        let bytes = Array(target)
        guard bytes.allSatisfy(HTTPBytes.isVisible) else { throw .badRequest }
        var path = try pathPart(bytes[...])
        if let end = path.firstIndex(where: { $0 == HTTPBytes.question || $0 == HTTPBytes.hash }) {
            path = path[path.startIndex ..< end]
        }
        guard path.first == HTTPBytes.slash else { throw .badRequest }

        var components: [[UInt8]] = []
        var isDirectory = true
        for segment in path.split(separator: HTTPBytes.slash, omittingEmptySubsequences: false).dropFirst() {
            let name = try decode(segment)
            if name.isEmpty || isDot(name) {
                isDirectory = true
            } else if isDotDot(name) {
                guard !components.isEmpty else { throw .badRequest }
                components.removeLast()
                isDirectory = true
            } else {
                components.append(name)
                isDirectory = false
            }
        }
        for name in components where name.count > maximumComponent { throw .notFound }
        return HTTPTarget(components: components, isDirectory: isDirectory)
    }

    /// The last component, the name whose extension picks the content type.
    public var fileName: [UInt8]? { isDirectory ? nil : components.last }

    /// The media type for `fileName` (the fallback for a directory).
    public var contentType: StaticString {
        guard let name = fileName else { return ContentType.fallback }
        return ContentType.forName(name)
    }

    /// The path part of origin-form or absolute-form (with the query still attached).
    private static func pathPart(_ bytes: ArraySlice<UInt8>) throws(HTTPTargetError) -> ArraySlice<UInt8> {
        if bytes.first == HTTPBytes.slash { return bytes }
        var rest: ArraySlice<UInt8>
        if bytes.count >= 7 && HTTPBytes.equalsIgnoringCase(bytes.prefix(7), "http://") {
            rest = bytes.dropFirst(7)
        } else if bytes.count >= 8 && HTTPBytes.equalsIgnoringCase(bytes.prefix(8), "https://") {
            rest = bytes.dropFirst(8)
        } else {
            throw .badRequest
        }
        guard let end = rest.firstIndex(where: { $0 == HTTPBytes.slash || $0 == HTTPBytes.question || $0 == HTTPBytes.hash }) else {
            guard !rest.isEmpty else { throw .badRequest }   // no authority
            return [HTTPBytes.slash][...]
        }
        guard end > rest.startIndex else { throw .badRequest }
        rest = rest[end...]
        // "http://host?q": the path is empty, which means "/" (RFC 9112 §3.2.2).
        if rest.first != HTTPBytes.slash { return ([HTTPBytes.slash] + rest)[...] }
        return rest
    }

    /// One segment percent-decoded once; forbidden bytes are 400.
    static func decode(_ segment: ArraySlice<UInt8>) throws(HTTPTargetError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(segment.count)
        var index = segment.startIndex
        while index < segment.endIndex {
            var byte = segment[index]
            if byte == HTTPBytes.percent {
                guard segment.endIndex - index >= 3,
                      let high = HTTPBytes.hexValue(segment[index + 1]),
                      let low = HTTPBytes.hexValue(segment[index + 2]) else { throw .badRequest }
                byte = high << 4 | low
                index += 3
            } else {
                index += 1
            }
            guard byte >= 0x20 && byte != 0x7F && byte != HTTPBytes.slash else { throw .badRequest }
            out.append(byte)
        }
        return out
    }

    private static func isDot(_ name: [UInt8]) -> Bool {
        name.count == 1 && name[0] == HTTPBytes.dot
    }

    private static func isDotDot(_ name: [UInt8]) -> Bool {
        name.count == 2 && name[0] == HTTPBytes.dot && name[1] == HTTPBytes.dot
    }
}
