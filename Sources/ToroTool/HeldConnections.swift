// Plain TCP connections opened and held without a byte sent: the idle-connection flood of
// the soak (`toro bench soak`) and of the connection-limit boot tests.
//
// Rules: one thread uses an instance at a time. Raising this process's descriptor limit
// to its hard limit is the caller's choice (`raiseDescriptorLimit`).

#if canImport(Glibc)
import Glibc
#endif
import Foundation

public final class HeldConnections {
    public private(set) var descriptors: [Int32] = []
    public let port: Int

    public init(port: Int) {
        self.port = port
    }

    deinit { closeAll() }

    /// Sets RLIMIT_NOFILE's soft limit to its hard limit; returns the new soft limit.
    @discardableResult
    public static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return Int(limit.rlim_cur)
    }

    /// Opens connections to 127.0.0.1:`port` until `count` are held; each connect has
    /// 10 s. Stops at the first connect that fails. Returns how many it opened.
    @discardableResult
    public func open(upTo count: Int) -> Int {
        var opened = 0
        while descriptors.count < count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { break }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { Glibc.close(fd); break }
            descriptors.append(fd)
            opened += 1
        }
        return opened
    }

    /// How many held connections the far side has closed (end of stream or reset).
    public func closedByPeer() -> Int {
        descriptors.filter(isClosedByPeer).count
    }

    /// Closes and forgets the connections the far side closed; returns how many.
    @discardableResult
    public func dropClosed() -> Int {
        let closed = descriptors.filter(isClosedByPeer)
        for fd in closed { Glibc.close(fd) }
        descriptors.removeAll { closed.contains($0) }
        return closed.count
    }

    public func closeAll() {
        for fd in descriptors { Glibc.close(fd) }
        descriptors = []
    }

    private func isClosedByPeer(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
        return count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    }
}
