// A host-native server that speaks the `kv` service's line protocol, one thread per
// connection: the yardstick `bench kv` measures Toro against (the same client, the same
// requests, the host's own TCP stack and threads), and the server the host tests run
// KVClient against.
//
// The protocol and the line framing are the kernel's own code (Core's `KVTable` and
// `LineReader`, which build hosted too), so the two servers answer byte for byte alike:
//   SET <key> <value> -> OK            GET <key> -> VALUE <value> | NOT_FOUND
//   DEL <key>         -> DELETED | NOT_FOUND        QUIT -> BYE, then the server closes
//   anything else     -> ERROR <reason> (unknown command, usage, bad key)
//   a line over 1024 bytes -> ERROR line too long, and the connection goes on
// Keys are 1-250 bytes without spaces; a "\r" before "\n" is dropped; an unterminated last
// line before the end of the stream is still handled.
//
// Rules for callers: `start()` once, `stop()` once; `stop` closes the listener and every
// connection and waits for their threads.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Core
import KVProtocol

public final class HostKVServer: @unchecked Sendable {
    public static let maximumLine = 1024

    /// The port it listens on (127.0.0.1).
    public let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var table = KVTable()
    private var connections: Set<Int32> = []
    private var stopping = false
    private let threads = DispatchGroup()

    /// Binds 127.0.0.1:`port` (0: a free port the system picks) and listens.
    public init(port: Int = 0) throws(KVClientError) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .io("socket: \(errnoText())") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(truncatingIfNeeded: port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 256) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else {
            let why = "listen on 127.0.0.1:\(port): \(errnoText())"
            Glibc.close(fd)
            throw .io(why)
        }
        listener = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// How many keys the table holds.
    public var keyCount: Int { lock.lock(); defer { lock.unlock() }; return table.entries.count }

    /// How many connections are open.
    public var openConnections: Int { lock.lock(); defer { lock.unlock() }; return connections.count }

    /// Starts accepting connections on a thread of its own.
    public func start() {
        threads.enter()
        Thread.detachNewThread { [self] in
            acceptLoop()
            threads.leave()
        }
    }

    /// Stops accepting, closes every connection and waits (up to 10 s) for the threads.
    public func stop() {
        lock.lock()
        stopping = true
        for fd in connections { shutdown(fd, Int32(SHUT_RDWR)) }
        lock.unlock()
        _ = threads.wait(timeout: .now() + 10)
        Glibc.close(listener)
    }

    private var isStopping: Bool { lock.lock(); defer { lock.unlock() }; return stopping }

    private func acceptLoop() {
        while !isStopping {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            lock.lock()
            if stopping { lock.unlock(); Glibc.close(client); break }
            connections.insert(client)
            lock.unlock()
            threads.enter()
            Thread.detachNewThread { [self] in
                serve(client)
                lock.lock(); connections.remove(client); lock.unlock()
                Glibc.close(client)
                threads.leave()
            }
        }
    }

    /// One connection, as the kernel's `KV.serve` handles it.
    private func serve(_ fd: Int32) {
        var framer = LineReader(maximumLength: Self.maximumLine)
        var chunk = [UInt8](repeating: 0, count: 4096)
        func write(_ bytes: [UInt8]) -> Bool {
            var offset = 0
            while offset < bytes.count {
                let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
                if sent < 0 { if errno == EINTR { continue }; return false }
                offset += sent
            }
            return true
        }
        while true {
            guard let event = framer.nextEvent() else {
                let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count < 0 && errno == EINTR { continue }
                if count < 0 { return }
                if count == 0 { framer.finish() } else { chunk.withUnsafeBytes { framer.append(UnsafeRawBufferPointer(rebasing: $0[0..<count])) } }
                continue
            }
            switch event {
            case .end:
                return
            case .tooLong:
                guard write(Array("ERROR line too long\n".utf8)) else { return }
            case .line(let line):
                lock.lock()
                let (reply, quit) = table.handle(line[...])
                lock.unlock()
                guard write(reply) else { return }
                if quit { return }
            }
        }
    }
}
