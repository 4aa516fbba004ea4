// A host-native server that speaks the `kv` service's line protocol, one thread per
// connection: the yardstick `bench kv` measures Toro against (the same client, the same
// requests, the host's own TCP stack and threads), and the server the host tests run
// KVClient against.
//
// The protocol and the line framing follow the kernel's (Sources/Core/Services/KVProtocol.swift
// and Sources/Core/Network/LineReader.swift) reply for reply; ToroTool does not link Core,
// so they are restated here in `HostKVTable` and `HostLineFramer`:
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

/// The kv table and its reply to one request line (KVTable's behaviour, on the host).
public struct HostKVTable: Sendable {
    public static let maxKey = 250
    public private(set) var entries: [[UInt8]: [UInt8]] = [:]
    public init() {}

    /// The reply (with "\n") to `line` (without its "\n"), and whether the client quits.
    public mutating func handle(_ line: ArraySlice<UInt8>) -> (reply: [UInt8], quit: Bool) {
        var line = line
        if line.last == 13 { line = line.dropLast() }
        let commandEnd = line.firstIndex(of: 32) ?? line.endIndex
        let command = line[line.startIndex..<commandEnd]
        let rest = commandEnd < line.endIndex ? line[(commandEnd + 1)...] : line[line.endIndex...]
        func reply(_ text: String) -> [UInt8] { Array(text.utf8) + [10] }
        if command.elementsEqual("SET".utf8) {
            guard let keyEnd = rest.firstIndex(of: 32) else { return (reply("ERROR usage: SET key value"), false) }
            let key = rest[rest.startIndex..<keyEnd]
            guard Self.valid(key) else { return (reply("ERROR bad key"), false) }
            entries[Array(key)] = Array(rest[(keyEnd + 1)...])
            return (reply("OK"), false)
        }
        if command.elementsEqual("GET".utf8) {
            guard Self.valid(rest) else { return (reply("ERROR usage: GET key"), false) }
            guard let value = entries[Array(rest)] else { return (reply("NOT_FOUND"), false) }
            return (Array("VALUE ".utf8) + value + [10], false)
        }
        if command.elementsEqual("DEL".utf8) {
            guard Self.valid(rest) else { return (reply("ERROR usage: DEL key"), false) }
            return (reply(entries.removeValue(forKey: Array(rest)) != nil ? "DELETED" : "NOT_FOUND"), false)
        }
        if command.elementsEqual("QUIT".utf8) { return (reply("BYE"), true) }
        return (reply("ERROR unknown command"), false)
    }

    static func valid(_ key: ArraySlice<UInt8>) -> Bool {
        !key.isEmpty && key.count <= maxKey && !key.contains(32)
    }
}

/// Line framing with a length limit, as the kernel's LineReader frames (see its header).
public struct HostLineFramer: Sendable {
    public enum Event: Equatable, Sendable {
        case line([UInt8])
        case tooLong
        case end
    }

    public let maximumLength: Int
    private var pending: [UInt8] = []
    private var start = 0
    private var scanned = 0
    private var discarding = false
    private var ended = false

    public init(maximumLength: Int = 1024) { self.maximumLength = maximumLength }

    public mutating func append(_ bytes: ArraySlice<UInt8>) {
        if start > 0 { pending.removeSubrange(0..<start); start = 0 }
        pending.append(contentsOf: bytes)
    }

    public mutating func finish() { ended = true }

    /// The next event, or nil when more bytes are needed.
    public mutating func next() -> Event? {
        if discarding {
            guard let newline = pending[start...].firstIndex(of: 10) else {
                start = pending.count; scanned = 0
                return ended ? .end : nil
            }
            start = newline + 1; scanned = 0; discarding = false
        }
        if let newline = pending[(start + scanned)...].firstIndex(of: 10) {
            var end = newline
            if end > start && pending[end - 1] == 13 { end -= 1 }
            let line = Array(pending[start..<end])
            start = newline + 1; scanned = 0
            return line.count > maximumLength ? .tooLong : .line(line)
        }
        let length = pending.count - start
        scanned = length
        if length > maximumLength + 1 || (length == maximumLength + 1 && pending[pending.count - 1] != 13) {
            start = pending.count; scanned = 0
            discarding = !ended
            return .tooLong
        }
        guard ended else { return nil }
        if length == 0 { return .end }
        let line = Array(pending[start...])
        start = pending.count; scanned = 0
        return .line(line)
    }
}

public final class HostKVServer: @unchecked Sendable {
    public static let maximumLine = 1024

    /// The port it listens on (127.0.0.1).
    public let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var table = HostKVTable()
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
        var framer = HostLineFramer(maximumLength: Self.maximumLine)
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
            guard let event = framer.next() else {
                let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count < 0 && errno == EINTR { continue }
                if count < 0 { return }
                if count == 0 { framer.finish() } else { framer.append(chunk[0..<count]) }
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
