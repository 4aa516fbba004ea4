// One HTTP/1.1 connection of the `static-web` service: requests in, files out. Pure over
// `any StreamSocket` and `any FileSystem`, so the host tests drive exactly what the kernel
// runs with a fake socket and a MemoryFileSystem.
//
// What a request gets (RFC 9110, RFC 9112):
//   * GET and HEAD of a regular file: 200 with Content-Length (the size `stat` reported),
//     Content-Type by the name's extension (ContentType), Connection; HEAD sends no body.
//   * A folder named with a trailing "/" (or the root): its `index.html`, else 404.
//     A folder named without the "/": 301 to the same target with "/" appended (query kept),
//     so relative links in its index resolve as the browser expects (python's http.server
//     does the same).
//   * Other methods: 405 with `Allow: GET, HEAD`. A target HTTPTarget refuses (bad escape,
//     "..", "%2f", control bytes): 400; a name that cannot exist: 404; a missing file, a
//     symlink or device the back-end reports as such, or one it refuses (permission
//     denied: a symlink out of the share): 404. Any other back-end failure before the
//     head is sent: 500.
//   * Parser failures (malformed 400, 414, 431, 501) are answered with Connection: close
//     and the connection ends, since its framing can no longer be trusted.
//   * Keep-alive: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `keep-alive`.
//     Pipelined requests are answered in order from the parser's buffer.
// File bodies are streamed through one buffer per connection (the same buffer receives
// requests): a 64 MiB file never sits in memory. The buffer grows only when used: 4 KiB
// for requests, then at most `chunkSize` once a body needs it (an idle connection holds a
// page, not 64 KiB). The growth is admitted against the kernel's memory budget first;
// when memory is short the request gets 503 and the connection goes on. If a read fails or
// the file shrinks after the head went out, the connection is closed: the client sees a
// short body rather than a wrong one.
// Paths never leave the served root: HTTPTarget drops nothing but resolves "." and ".."
// and refuses a climb above the root; the back-end refuses symlinks that point out.
import Core
import Wire

public struct StaticFileHandler {
    /// The largest body buffer, also the largest socket read.
    public static let defaultChunkSize = 64 * 1024
    /// What a connection's buffer starts with: requests are read through it.
    public static let initialBuffer = 4096

    public let fileSystem: any FileSystem
    public let chunkSize: Int
    public let limits: HTTPLimits

    public init(fileSystem: any FileSystem, chunkSize: Int = StaticFileHandler.defaultChunkSize,
                limits: HTTPLimits = HTTPLimits()) {
        precondition(chunkSize >= 512, "static-web: chunk too small")
        self.fileSystem = fileSystem
        self.chunkSize = chunkSize
        self.limits = limits
    }

    /// Serves `socket` until the client leaves, asks to close, or breaks the protocol;
    /// closes the socket and returns the number of responses sent.
    @discardableResult
    public func serve(_ socket: any StreamSocket) -> Int {
        defer { socket.close() }
        var parser = HTTPRequestParser(limits: limits)
        var buffer = [UInt8](repeating: 0, count: min(chunkSize, Self.initialBuffer))
        var answered = 0
        while true {
            switch parser.next() {
            case .needMore:
                var failure: SocketError?
                let count = buffer.withUnsafeMutableBytes { raw -> Int in
                    do throws(SocketError) { return try socket.read(into: raw) } catch { failure = error; return 0 }
                }
                guard failure == nil, count > 0, count <= buffer.count else { return answered }
                parser.feed(buffer[0..<count])
            case .failure(let error):
                _ = try? socket.writeAll(HTTPResponse.error(error.status, keepAlive: false))
                return answered + 1
            case .request(let request):
                answered += 1
                guard respond(to: request, on: socket, buffer: &buffer) else { return answered }
                if !request.keepAlive { return answered }
            }
        }
    }

    /// Answers one request; false when the connection must end (a write failed, or the
    /// body could not be sent whole).
    func respond(to request: HTTPRequest, on socket: any StreamSocket, buffer: inout [UInt8]) -> Bool {
        let keepAlive = request.keepAlive
        let isHead = request.method == .head
        guard request.method != .other else {
            return send(HTTPResponse.error(.methodNotAllowed, keepAlive: keepAlive), on: socket)
        }
        let target: HTTPTarget
        do throws(HTTPTargetError) {
            target = try request.path()
        } catch {
            return send(HTTPResponse.error(error.status, isHead: isHead, keepAlive: keepAlive), on: socket)
        }
        switch resolve(target) {
        case .failure(let status):
            return send(HTTPResponse.error(status, isHead: isHead, keepAlive: keepAlive), on: socket)
        case .redirect:
            return send(Self.redirect(request.target, keepAlive: keepAlive), on: socket)
        case .file(let handle, let size, let name):
            defer { try? fileSystem.close(handle) }
            guard size <= UInt64(Int.max) else {
                return send(HTTPResponse.error(.internalServerError, isHead: isHead, keepAlive: keepAlive), on: socket)
            }
            // The body's buffer: as large as the file, at most `chunkSize`, if memory allows.
            let wanted = Int(min(UInt64(chunkSize), size))
            if !isHead && buffer.count < wanted {
                guard MemoryBudget.admit(wanted, for: "a file buffer") else {
                    return send(HTTPResponse.error(.serviceUnavailable, keepAlive: keepAlive), on: socket)
                }
                buffer = [UInt8](repeating: 0, count: wanted)
            }
            let head = HTTPResponse.head(.ok, contentLength: Int(size), contentType: ContentType.forName(name),
                                         keepAlive: keepAlive)
            guard send(head, on: socket) else { return false }
            return isHead || sendBody(handle, size: size, on: socket, buffer: &buffer)
        }
    }

    /// What a decoded target names.
    enum Resolution {
        /// An open regular file (the caller closes it), its size and the name its type comes from.
        case file(FileHandleID, size: UInt64, name: [UInt8])
        case redirect
        case failure(HTTPStatus)
    }

    /// Opens what `target` names. The file is opened first and its attributes are the
    /// handle's, so a request costs one lookup of the path, not a stat and then an open
    /// (on virtio-fs each is a round trip to the host). A folder target ("/docs/") opens
    /// its index.html directly; a file name that turns out to be a folder is closed again
    /// and redirected.
    func resolve(_ target: HTTPTarget) -> Resolution {
        var path = VFSPath.root
        for component in target.components {
            do throws(FileSystemError) { path = try path.appending(component) } catch { return .failure(.notFound) }
        }
        if target.isDirectory {
            do throws(FileSystemError) { path = try path.appending(Self.indexName) } catch { return .failure(.notFound) }
        }
        let handle: FileHandleID
        let attributes: FileAttributes
        do throws(FileSystemError) {
            handle = try fileSystem.open(path, flags: .read, mode: 0)
        } catch {
            return .failure(Self.status(for: error))
        }
        do throws(FileSystemError) {
            attributes = try fileSystem.attributes(handle)
        } catch {
            try? fileSystem.close(handle)
            return .failure(Self.status(for: error))
        }
        switch attributes.kind {
        case .file:
            return .file(handle, size: attributes.size, name: path.name ?? [])
        case .directory where !target.isDirectory:
            try? fileSystem.close(handle)
            return .redirect
        case .directory, .symlink, .other:
            try? fileSystem.close(handle)
            return .failure(.notFound)
        }
    }

    /// Streams `size` bytes of `handle`; false when the body could not be sent whole.
    func sendBody(_ handle: FileHandleID, size: UInt64, on socket: any StreamSocket, buffer: inout [UInt8]) -> Bool {
        var offset: UInt64 = 0
        while offset < size {
            let want = Int(min(UInt64(buffer.count), size - offset))
            var failed = false
            let count = buffer.withUnsafeMutableBytes { raw -> Int in
                let window = UnsafeMutableRawBufferPointer(rebasing: raw[0..<want])
                do throws(FileSystemError) { return try fileSystem.read(handle, offset: offset, into: window) } catch {
                    failed = true
                    return 0
                }
            }
            // A failed read, or a file that shrank: the head promised `size` bytes.
            guard !failed, count > 0, count <= want else { return false }
            var writeFailed = false
            buffer.withUnsafeBytes { raw in
                do throws(SocketError) { try socket.writeAll(UnsafeRawBufferPointer(rebasing: raw[0..<count])) } catch {
                    writeFailed = true
                }
            }
            guard !writeFailed else { return false }
            offset += UInt64(count)
        }
        return true
    }

    func send(_ bytes: [UInt8], on socket: any StreamSocket) -> Bool {
        (try? socket.writeAll(bytes)) != nil
    }

    static let indexName: [UInt8] = [UInt8]("index.html")

    /// The status for a back-end error met before the head went out.
    static func status(for error: FileSystemError) -> HTTPStatus {
        switch error {
        // permissionDenied: what virtio-fs answers for a symlink out of the share; 404
        // rather than 403, so a client learns nothing about what lies outside.
        case .notFound, .notADirectory, .invalidPath, .nameTooLong, .isADirectory, .permissionDenied: return .notFound
        default: return .internalServerError
        }
    }

    /// `301 Moved Permanently` to `target` with "/" after its path (before any query),
    /// and an empty body. `target` is visible ASCII (the parser checked), so it is a safe
    /// header value as it stands.
    static func redirect(_ target: [UInt8], keepAlive: Bool) -> [UInt8] {
        let end = target.firstIndex { $0 == HTTPBytes.question || $0 == HTTPBytes.hash } ?? target.endIndex
        var out: [UInt8] = []
        HTTPResponse.append("HTTP/1.1 301 Moved Permanently\r\nLocation: ", to: &out)
        out.append(contentsOf: target[..<end])
        out.append(HTTPBytes.slash)
        out.append(contentsOf: target[end...])
        HTTPResponse.append("\r\nContent-Length: 0", to: &out)
        HTTPResponse.append(keepAlive ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n", to: &out)
        return out
    }
}
