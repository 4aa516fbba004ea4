// A small blocking TCP client for line protocols such as the `kv` service's (SET, GET,
// DEL, QUIT; see Sources/Core/Services/KVProtocol.swift): `bench kv`, the kv boot test and
// the host tests speak to a server through it.
//
// Rules for callers: one client belongs to one thread at a time. Every read and write
// obeys the timeout given at connect (SO_RCVTIMEO/SO_SNDTIMEO), so a silent server ends in
// `.timedOut`, never in a hang. Lines are bytes: a reply is returned as sent, without its
// "\n" (and without a "\r" before it). TCP_NODELAY is set, so a request goes out at once.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Why a client call failed.
public enum KVClientError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The connection could not be made (the text says why).
    case connect(String)
    /// Nothing arrived (or could be sent) within the timeout.
    case timedOut
    /// The server closed the connection before a whole line arrived.
    case closed
    /// A socket call failed (the text names it and errno).
    case io(String)

    public var description: String {
        switch self {
        case .connect(let why): "cannot connect: \(why)"
        case .timedOut: "no reply within the timeout"
        case .closed: "the server closed the connection"
        case .io(let why): why
        }
    }
}

public final class KVClient {
    /// The socket; -1 once closed.
    public private(set) var fd: Int32
    /// Received bytes not yet returned; those before `start` are consumed.
    private var buffer: [UInt8] = []
    private var start = 0
    private var chunk = [UInt8](repeating: 0, count: 16384)

    /// Connects to `host`:`port` (an IPv4 address) with `timeout` seconds for the connect
    /// and for every later read or write.
    public init(port: Int, host: String = "127.0.0.1", timeout: Double = 30) throws(KVClientError) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(truncatingIfNeeded: port).bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw .connect("bad IPv4 address '\(host)'") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .connect("socket: \(errnoText())") }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        // A blocking connect honours SO_SNDTIMEO on Linux.
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let why = "\(host):\(port): \(errnoText())"
            Glibc.close(fd)
            throw .connect(why)
        }
        self.fd = fd
    }

    deinit { close() }

    /// Sends every byte of `bytes`.
    public func send(_ bytes: [UInt8]) throws(KVClientError) {
        guard fd >= 0 else { throw .closed }
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut }
                if errno == EPIPE || errno == ECONNRESET { throw .closed }
                throw .io("send: \(errnoText())")
            }
            offset += sent
        }
    }

    /// Sends `line` and a "\n".
    public func send(line: String) throws(KVClientError) { try send(Array(line.utf8) + [10]) }

    /// The next line's bytes (without "\n" or "\r\n"), or nil when the server closed the
    /// connection with nothing pending. Bytes left without a "\n" at the end are `.closed`.
    public func readLineBytes() throws(KVClientError) -> [UInt8]? {
        var scanned = start
        while true {
            if let newline = buffer[scanned...].firstIndex(of: 10) {
                var end = newline
                if end > start && buffer[end - 1] == 13 { end -= 1 }
                let line = Array(buffer[start..<end])
                start = newline + 1
                if start > 65536 || start == buffer.count {
                    buffer.removeSubrange(0..<start)
                    start = 0
                }
                return line
            }
            scanned = buffer.count
            guard fd >= 0 else { throw .closed }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut }
                if errno == ECONNRESET { throw .closed }
                throw .io("recv: \(errnoText())")
            }
            if count == 0 {
                if start == buffer.count { return nil }
                throw .closed
            }
            buffer.append(contentsOf: chunk[0..<count])
        }
    }

    /// The next line as text (invalid UTF-8 repaired), or nil at the end of the stream.
    public func readLine() throws(KVClientError) -> String? {
        try readLineBytes().map { String(decoding: $0, as: UTF8.self) }
    }

    /// Sends `line` and returns the reply line; `.closed` if the connection ends first.
    public func request(_ line: String) throws(KVClientError) -> String {
        try send(line: line)
        guard let reply = try readLine() else { throw .closed }
        return reply
    }

    /// Sends `bytes` as they are and returns the reply line's bytes.
    public func request(bytes: [UInt8]) throws(KVClientError) -> [UInt8] {
        try send(bytes)
        guard let reply = try readLineBytes() else { throw .closed }
        return reply
    }

    /// Ends the sending direction (the server sees the end of the stream); replies can
    /// still be read.
    public func shutdownWrite() {
        if fd >= 0 { shutdown(fd, Int32(SHUT_WR)) }
    }

    /// Closes the connection. With `reset`, the peer gets a RST instead of a FIN (SO_LINGER
    /// 0): an abrupt disconnect, as a crashed client would leave.
    public func close(reset: Bool = false) {
        guard fd >= 0 else { return }
        if reset {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        Glibc.close(fd)
        fd = -1
    }

    /// Tries to connect until it works or `seconds` pass (a server that is still starting).
    public static func connect(port: Int, host: String = "127.0.0.1", within seconds: Double,
                               timeout: Double = 30) throws(KVClientError) -> KVClient {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            do throws(KVClientError) {
                return try KVClient(port: port, host: host, timeout: timeout)
            } catch {
                if Date() >= deadline { throw error }
                usleep(50_000)
            }
        }
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's pick for an
    /// ephemeral bind), or nil. Another process could take it before the caller does.
    public static func freePort() -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { return nil }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
