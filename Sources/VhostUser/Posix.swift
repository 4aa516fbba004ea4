// The few POSIX socket calls the back-end makes: Unix and TCP listeners, non-blocking
// Unix connects (the Firecracker `<uds>_<port>` convention), eventfd signalling.
import Glibc

/// A failed system call: which one and errno.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let code: Int32

    public init(_ operation: String, _ code: Int32 = errno) {
        self.operation = operation
        self.code = code
    }

    public var description: String { "\(operation): \(String(cString: strerror(code)))" }
}

public enum Posix {
    /// A `sockaddr_un` for `path`, or nil when the path does not fit.
    static func unixAddress(_ path: String) -> sockaddr_un? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        return address
    }

    /// Removes `path` if it is a (stale) socket; refuses to remove anything else.
    static func removeStaleSocket(_ path: String) throws(SystemError) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else { throw SystemError("\(path) exists and is not a socket", EEXIST) }
        unlink(path)
    }

    /// A listening Unix stream socket at `path`. It is bound under a temporary name and
    /// renamed into place, so once `path` exists it accepts connections.
    public static func listenUnix(path: String, backlog: Int32 = 64) throws(SystemError) -> Int32 {
        let temporary = path + ".\(getpid()).tmp"
        guard var address = unixAddress(temporary) else { throw SystemError("socket path too long: \(path)", ENAMETOOLONG) }
        try removeStaleSocket(path)
        unlink(temporary)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { let e = errno; close(fd); throw SystemError("bind \(path)", e) }
        guard listen(fd, backlog) == 0 else { let e = errno; close(fd); unlink(temporary); throw SystemError("listen \(path)", e) }
        guard rename(temporary, path) == 0 else { let e = errno; close(fd); unlink(temporary); throw SystemError("rename to \(path)", e) }
        setNonBlocking(fd)
        return fd
    }

    /// A listening TCP socket on 127.0.0.1:`port`.
    public static func listenTCP(port: UInt16, backlog: Int32 = 64) throws(SystemError) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { let e = errno; close(fd); throw SystemError("bind 127.0.0.1:\(port)", e) }
        guard listen(fd, backlog) == 0 else { let e = errno; close(fd); throw SystemError("listen 127.0.0.1:\(port)", e) }
        setNonBlocking(fd)
        return fd
    }

    /// Connects to the Unix socket at `path` without blocking; nil (errno set) on failure.
    /// A connect that would block (the listener's backlog is full) counts as a failure.
    public static func connectUnix(path: String) -> Int32? {
        guard var address = unixAddress(path) else { errno = ENAMETOOLONG; return nil }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return nil }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else { let e = errno; close(fd); errno = e; return nil }
        return fd
    }

    /// Accepts one connection, non-blocking and close-on-exec; nil when none is waiting.
    public static func accept(_ listener: Int32) -> Int32? {
        let fd = Glibc.accept(listener, nil, nil)
        guard fd >= 0 else { return nil }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        setNonBlocking(fd)
        return fd
    }

    /// Turns Nagle's algorithm off on a TCP socket. A bridged connection carries the guest's
    /// writes as they come (an HTTP head, then its body); with Nagle on, the second small
    /// write waits for the client's delayed ACK, about 40 ms per response.
    public static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    public static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    /// Raises the soft RLIMIT_NOFILE towards `wanted` (never past the hard limit, never
    /// lowering it); the soft limit in force afterwards.
    @discardableResult
    public static func raiseDescriptorLimit(to wanted: Int) -> Int {
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &limit) == 0 else { return 1024 }
        let target = rlim_t(max(0, wanted))
        if limit.rlim_cur < target {
            var raised = limit
            raised.rlim_cur = min(target, limit.rlim_max)
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }

    /// Seconds on the monotonic clock: the back-ends' deadlines and poll timeouts.
    public static func monotonicNow() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Adds 1 to an eventfd (a vhost-user call: the guest's interrupt).
    public static func signal(eventFD fd: Int32) {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    /// Reads (and so resets) an eventfd's counter; 0 when it was not signalled.
    @discardableResult
    public static func drain(eventFD fd: Int32) -> UInt64 {
        var value: UInt64 = 0
        return read(fd, &value, 8) == 8 ? value : 0
    }

    /// Writes as much of `bytes` as the socket takes now; the count, or nil on a hard error.
    public static func writeSome(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Int? {
        if bytes.isEmpty { return 0 }
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n >= 0 { return n }
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : nil
    }

    /// The result of a non-blocking read.
    public enum ReadResult: Equatable {
        case data([UInt8])
        case wouldBlock
        case endOfStream
        case failed(Int32)
    }

    /// Reads up to `limit` bytes without blocking.
    public static func readSome(_ fd: Int32, limit: Int) -> ReadResult {
        guard limit > 0 else { return .wouldBlock }
        var buffer = [UInt8](repeating: 0, count: limit)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, limit, Int32(MSG_DONTWAIT)) }
        if n > 0 { return .data(Array(buffer[..<n])) }
        if n == 0 { return .endOfStream }
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? .wouldBlock : .failed(errno)
    }
}
