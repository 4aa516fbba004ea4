// A private network for one test: a network namespace of its own holding a tap device, the
// Linux end of the link a legacy guest's NIC reaches through FrameRelay.
//
//   test process:  /dev/net/tun (IFF_TAP | IFF_NO_PI) -> fd  <- FrameRelay -> Unix socket <- QEMU -netdev stream
//   namespace NS:  the tap, 10.0.3.1/24, up; lo up; no other device and no route out
//
// The tap is created in the test's own namespace (the descriptor is ours), then moved into
// NS (`ip link set TAP netns NS`; the descriptor stays attached). Nothing in NS routes
// anywhere but 10.0.3.0/24, so traffic never leaves the namespace; the guest is 10.0.3.15
// (kernel arguments `ip=10.0.3.15/24 gateway=10.0.3.1`).
//
// Linux clients run in NS without a child process: `inNamespace` runs a closure on a
// thread of its own that first joins NS (setns(2) with CLONE_NEWNET changes that thread
// only), so a socket made there belongs to NS's TCP/IP and keeps doing so on any thread.
//
// Rules for callers: `create` needs root, /dev/net/tun and `ip` (iproute2); it throws the
// reason otherwise, and the test fails with it (never skips). Call `remove` (in a defer):
// it closes the tap (a non-persistent tap goes with its last descriptor) and deletes NS,
// and reports anything that outlived it. Names carry the test's pid and a random tag; a
// namespace whose test process died before its `remove` is deleted by the next `create`.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ToroTool

struct LinkSetupError: Error, CustomStringConvertible {
    var description: String
    /// The errno of the failed call, when one failed (a connect's ECONNREFUSED).
    var code: Int32 = 0
}

final class LinkNamespace: @unchecked Sendable {
    /// The namespace's name (`ip netns`), e.g. `toro-lossy-1234-a1b2`.
    let name: String
    /// The tap device's name, at most 15 bytes.
    let tap: String
    /// The tap's descriptor (frames in and out, no packet-information header).
    private(set) var tapFD: Int32
    static let hostAddress = "10.0.3.1"
    static let guestAddress = "10.0.3.15"
    /// The kernel arguments that put the guest on this link.
    static let guestArguments = ["ip=\(guestAddress)/24", "gateway=\(hostAddress)"]

    private init(name: String, tap: String, tapFD: Int32) {
        self.name = name
        self.tap = tap
        self.tapFD = tapFD
    }

    /// Why this machine cannot host the link, or nil when it can.
    static func unavailableReason() -> String? {
        if getuid() != 0 {
            return "the lossy-link test needs root (a network namespace and a tap device); run ./toro test as root"
        }
        if access("/dev/net/tun", R_OK | W_OK) != 0 {
            return "the lossy-link test needs /dev/net/tun (the tun module), which this machine lacks"
        }
        if Installer.which("ip") == nil {
            return "the lossy-link test needs the ip command (apt-get install iproute2)"
        }
        return nil
    }

    /// Makes the namespace and the tap inside it, with `address`/24, up.
    static func create(tag: String, address: String = hostAddress) throws(LinkSetupError) -> LinkNamespace {
        if let reason = unavailableReason() { throw LinkSetupError(description: reason) }
        removeStale()
        let random = String(UInt32.random(in: 0...0xffff), radix: 16)
        let name = "toro-\(tag)-\(getpid())-\(random)"
        let tap = "tt\(getpid() % 100_000)x\(random)"
        try ip(["netns", "add", name])
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            _ = try? ip(["netns", "del", name])
            throw LinkSetupError(description: "open /dev/net/tun: \(String(cString: strerror(errno)))")
        }
        let link = LinkNamespace(name: name, tap: tap, tapFD: fd)
        do throws(LinkSetupError) {
            try link.attachTap()
            try ip(["link", "set", tap, "netns", name])
            try ip(["-n", name, "link", "set", "lo", "up"])
            try ip(["-n", name, "addr", "add", "\(address)/24", "dev", tap])
            try ip(["-n", name, "link", "set", tap, "up"])
        } catch {
            link.remove()
            throw error
        }
        return link
    }

    /// TUNSETIFF on the descriptor: a tap named `tap`, frames without the 4-byte header.
    private func attachTap() throws(LinkSetupError) {
        // struct ifreq: the name (IFNAMSIZ = 16 bytes), then the flags (a short) in the union.
        var request = [UInt8](repeating: 0, count: 40)
        for (index, byte) in tap.utf8.prefix(15).enumerated() { request[index] = byte }
        let flags = UInt16(0x0002 | 0x1000)              // IFF_TAP | IFF_NO_PI (linux/if_tun.h)
        request[16] = UInt8(flags & 0xff)
        request[17] = UInt8(flags >> 8)
        let tunSetIff: UInt = 0x4004_54ca                // _IOW('T', 202, int)
        let result = request.withUnsafeMutableBytes { ioctl(tapFD, tunSetIff, $0.baseAddress!) }
        guard result == 0 else {
            throw LinkSetupError(description: "TUNSETIFF \(tap): \(String(cString: strerror(errno)))")
        }
    }

    /// Closes the tap and deletes the namespace; returns what could not be cleaned up
    /// (empty when nothing is left).
    @discardableResult
    func remove() -> [String] {
        if tapFD >= 0 {
            close(tapFD)
            tapFD = -1
        }
        var problems: [String] = []
        if LinkNamespace.namespaces().contains(name) {
            do throws(LinkSetupError) { try LinkNamespace.ip(["netns", "del", name]) } catch { problems.append(error.description) }
        }
        if LinkNamespace.namespaces().contains(name) { problems.append("namespace \(name) is still there") }
        if FileManager.default.fileExists(atPath: "/sys/class/net/\(tap)") { problems.append("tap \(tap) is still there") }
        return problems
    }

    /// Deletes namespaces a test process that no longer runs left behind (killed before
    /// its `remove`): `toro-<tag>-<pid>-<random>` with no process `pid`. Their taps went
    /// with that process's descriptors.
    static func removeStale() {
        for name in namespaces() where name.hasPrefix("toro-") {
            let parts = name.split(separator: "-")
            guard parts.count >= 4, let pid = pid_t(parts[parts.count - 2]), pid != getpid(),
                  kill(pid, 0) != 0 && errno == ESRCH else { continue }
            _ = try? ip(["netns", "del", name])
        }
    }

    /// The names `ip netns list` shows.
    static func namespaces() -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns")) ?? []
        return entries.sorted()
    }

    /// Runs `body` on a thread that has joined the namespace, and returns its result.
    func inNamespace<T>(_ body: @escaping @Sendable () -> T) throws(LinkSetupError) -> T {
        let path = "/var/run/netns/\(name)"
        let box = NamespaceResult<T>()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            defer { done.signal() }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { box.failure = "open \(path): \(String(cString: strerror(errno)))"; return }
            defer { close(fd) }
            guard let setns = LinkNamespace.setns, setns(fd, 0x4000_0000) == 0 else {      // CLONE_NEWNET
                box.failure = "setns \(path): \(String(cString: strerror(errno)))"
                return
            }
            box.value = body()
        }
        done.wait()
        guard let value = box.value else { throw LinkSetupError(description: box.failure ?? "the namespace thread returned nothing") }
        return value
    }

    /// glibc's setns(2), which the Glibc module does not import (it is a GNU extension).
    static let setns: (@convention(c) (Int32, Int32) -> Int32)? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "setns") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
    }()

    /// Runs `ip arguments`; throws its output when it fails.
    @discardableResult
    static func ip(_ arguments: [String]) throws(LinkSetupError) -> String {
        var process = Subprocess(["ip"] + arguments)
        process.timeout = 30
        process.mergeStderr = true
        let result = process.run()
        guard result.termination == .exited(0) else {
            throw LinkSetupError(description: "ip \(arguments.joined(separator: " ")): \(result.termination): \(result.output)")
        }
        return result.output
    }

    /// A TCP connection made inside the namespace to `host`:`port`, with `receiveBuffer`
    /// (SO_RCVBUF, before the connect, so the window Linux offers is small from the first
    /// segment) when given. Returns the descriptor, or the connect's error.
    func connect(host: String, port: Int, receiveBuffer: Int? = nil,
                 timeout: Double = 30) throws(LinkSetupError) -> Result<Int32, LinkSetupError> {
        try inNamespace { () -> Result<Int32, LinkSetupError> in
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(truncatingIfNeeded: port).bigEndian
            guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return .failure(LinkSetupError(description: "bad address \(host)")) }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return .failure(LinkSetupError(description: "socket: \(String(cString: strerror(errno)))")) }
            if var size = receiveBuffer.map(Int32.init) {
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            var limit = timeval(tv_sec: Int(timeout), tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                let code = errno
                close(fd)
                return .failure(LinkSetupError(description: "connect \(host):\(port): \(String(cString: strerror(code)))", code: code))
            }
            return .success(fd)
        }
    }
}

private final class NamespaceResult<T>: @unchecked Sendable {
    var value: T?
    var failure: String?
}
