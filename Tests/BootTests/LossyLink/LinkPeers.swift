// The Linux-side peers of the lossy-link tests (LossyLinkBootTests.swift): a slow HTTP
// reader, a splice joining two relays' sockets, and Linux's own echo server in a namespace
// (the far end of the relay's self-check).

#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Reads one HTTP response slowly: `chunk` bytes every `interval` seconds for the first
/// `slowFor` seconds, then as fast as it comes.
struct SlowHTTPReader {
    let fd: Int32

    struct Result {
        var status = 0
        var body: [UInt8] = []
        var failure: String?
        var slowBytes = 0
        var seconds = 0.0

        var summary: String {
            "status \(status), \(body.count) body bytes in \(String(format: "%.1f", seconds)) s, "
                + "\(slowBytes) of them read slowly" + (failure.map { "; \($0)" } ?? "")
        }
    }

    func fetch(_ path: String, slowFor: Double, chunk: Int, interval: Double, deadline: Double) -> Result {
        var result = Result()
        let begin = Date()
        var limit = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET \(path) HTTP/1.1\r\nHost: toro\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            result.failure = "send: \(String(cString: strerror(errno)))"
            return result
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var expected: Int? = nil
        var headerEnd: Int? = nil
        while true {
            let elapsed = Date().timeIntervalSince(begin)
            if elapsed > deadline { result.failure = "the deadline of \(Int(deadline)) s passed"; break }
            let slow = elapsed < slowFor
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, slow ? chunk : $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                result.failure = "recv after \(received.count) bytes: \(String(cString: strerror(errno)))"
                break
            }
            if count == 0 { break }
            received.append(contentsOf: buffer[0..<count])
            if slow { result.slowBytes += count }
            if headerEnd == nil, let end = Self.find([13, 10, 13, 10], in: received) {
                headerEnd = end + 4
                let head = String(decoding: received[0..<end], as: UTF8.self)
                let lines = head.components(separatedBy: "\r\n")
                result.status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
                for line in lines.dropFirst() where line.lowercased().hasPrefix("content-length:") {
                    expected = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
                }
            }
            if let headerEnd, let expected, received.count - headerEnd >= expected { break }
            if slow { usleep(UInt32(interval * 1e6)) }
        }
        if let headerEnd { result.body = Array(received[headerEnd...]) }
        result.seconds = Date().timeIntervalSince(begin)
        return result
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        return (0...(haystack.count - needle.count)).first { start in
            (0..<needle.count).allSatisfy { haystack[start + $0] == needle[$0] }
        }
    }
}

/// Two Unix stream sockets (each a relay's) joined byte for byte, both ways.
final class SocketSplice: @unchecked Sendable {
    private var fds: [Int32] = []
    private let done = DispatchGroup()

    init(_ first: String, _ second: String) throws(LinkSetupError) {
        for path in [first, second] {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
            }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard connected == 0 else {
                close(fd)
                throw LinkSetupError(description: "connect \(path): \(String(cString: strerror(errno)))")
            }
            fds.append(fd)
        }
        for (from, to) in [(fds[0], fds[1]), (fds[1], fds[0])] {
            done.enter()
            Thread.detachNewThread { [done] in
                var buffer = [UInt8](repeating: 0, count: 65536)
                copying: while true {
                    let count = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
                    if count < 0 && errno == EINTR { continue }
                    if count <= 0 { break }
                    var offset = 0
                    while offset < count {
                        let sent = buffer.withUnsafeBytes { send(to, $0.baseAddress! + offset, count - offset, Int32(MSG_NOSIGNAL)) }
                        if sent < 0 && errno == EINTR { continue }
                        if sent <= 0 { break copying }
                        offset += sent
                    }
                }
                shutdown(to, Int32(SHUT_WR))
                done.leave()
            }
        }
    }

    func stop() {
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
        _ = done.wait(timeout: .now() + 5)
        for fd in fds { close(fd) }
        fds = []
    }
}

/// Linux's own echo server inside a namespace: one connection at a time, every byte back,
/// its sending side shut at the client's end of stream.
final class LinuxEchoServer: @unchecked Sendable {
    private let listenFD: Int32
    private let done = DispatchSemaphore(value: 0)

    init(in namespace: LinkNamespace, port: Int) throws(LinkSetupError) {
        let made = try namespace.inNamespace { () -> Int32 in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0, listen(fd, 4) == 0 else { close(fd); return -1 }
            return fd
        }
        guard made >= 0 else { throw LinkSetupError(description: "cannot listen on port \(port) in \(namespace.name)") }
        listenFD = made
        Thread.detachNewThread { [listenFD, done] in
            defer { done.signal() }
            while true {
                let client = accept(listenFD, nil, nil)
                if client < 0 { if errno == EINTR { continue }; return }
                var buffer = [UInt8](repeating: 0, count: 65536)
                echoing: while true {
                    let count = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                    if count < 0 && errno == EINTR { continue }
                    if count <= 0 { break }
                    var offset = 0
                    while offset < count {
                        let sent = buffer.withUnsafeBytes { send(client, $0.baseAddress! + offset, count - offset, Int32(MSG_NOSIGNAL)) }
                        if sent < 0 && errno == EINTR { continue }
                        if sent <= 0 { break echoing }
                        offset += sent
                    }
                }
                shutdown(client, Int32(SHUT_WR))
                close(client)
            }
        }
    }

    func stop() {
        shutdown(listenFD, Int32(SHUT_RDWR))
        _ = done.wait(timeout: .now() + 5)
        close(listenFD)
    }
}
