// A TCP front of toro's own: it listens on 127.0.0.1 ports with a full backlog and relays
// every connection to a target port on 127.0.0.1, connecting to the target one connection
// at a time. Legacy `-p H:G` puts one in front of QEMU's user networking (LegacyFront.swift).
//
// Why: slirp (libslirp 4.7) listens on a hostfwd port with a backlog of 1, so the host
// kernel's accept queue for it holds two connections. When many clients connect at once
// the queue overflows: SYNs are dropped and retried after 1, 3, 7… s, and a client whose
// final ACK was dropped believes it is connected while the listener still retransmits its
// SYN-ACK; some wait a minute. toro-vsock on microvm listens with a proper backlog.
//
// How it talks to the target: the front is the target's only client (an internal port
// only toro knows), so the queue can only fill through its own connects. It makes one
// non-blocking connect at a time; a connect that completes while the target has not yet
// accepted is fine (the queue holds two). One that does not complete within a few
// milliseconds found the queue full (Linux drops the SYN, nothing is left behind): it is
// closed and tried again, with the wait doubling from 2 ms up to 250 ms, for up to
// `giveUpSeconds`; then, or when the target refuses (QEMU not up yet, or gone), the client
// is reset. Clients waiting for their turn stay in the front's accept order.
//
// Relaying: one thread runs a poll loop over the listeners, a wake pipe and each
// connection's two sockets (non-blocking, TCP_NODELAY: a byte read is sent at once). Each
// direction has one fixed buffer; a side is read only while its buffer has room, so a
// slow reader slows its writer and nothing grows. A side that ends (end of stream) is
// passed on as shutdown(SHUT_WR) once its buffer is drained (half-close); a connection
// ends, and both descriptors are closed, when both directions have. A reset or error on
// either side resets the other (SO_LINGER 0) and closes both.
//
// Bounds: at most `maxConnections` connections held (waiting or relaying), further capped
// by the descriptor limit; a newcomer beyond that is accepted and closed at once, and
// counted. When accept runs out of descriptors anyway, the listeners rest for 100 ms.
//
// Rules for callers: `init` binds (throws the user's error when a port is taken), `start`
// runs the loop, `stop` closes the listeners and every connection and returns once the
// thread is gone; call `stop` exactly once you are done (it is idempotent). Every
// descriptor is CLOEXEC, so QEMU, started after the front, inherits none.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

public final class PortFront: @unchecked Sendable {
    /// What the front has done so far; `open` is what it holds now.
    public struct Counts: Equatable, Sendable {
        /// Connections taken in under the cap.
        public var accepted = 0
        /// Newcomers closed at once because the cap was reached.
        public var refused = 0
        /// Connections that reached the target.
        public var relayed = 0
        /// Connections whose target refused or never accepted; their client was reset.
        public var failed = 0
        /// Connects to the target abandoned and tried again (its accept queue was full).
        public var retries = 0
        /// Connections held now, waiting for their turn or relaying.
        public var open = 0
        public init() {}
    }

    public static let defaultMaxConnections = 1024
    public static let defaultBufferSize = 16 * 1024
    /// The backlog of the front's own listeners.
    public static let backlog: Int32 = 128
    /// How long a connection may wait for the target to accept before its client is reset.
    public static let giveUpSeconds = 20.0

    /// The ports listened on, in the order of the routes (a route's 0 is the port picked).
    public let ports: [Int]
    /// The effective cap: `maxConnections`, or less when the descriptor limit is lower.
    public let maxConnections: Int

    private let listeners: [(fd: Int32, target: Int)]
    private let bufferSize: Int
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let lock = NSLock()
    private var shared = Counts()
    private var state = Lifecycle.created
    private let finished = DispatchSemaphore(value: 0)

    private enum Lifecycle { case created, running, stopped }

    /// Listens on 127.0.0.1:`route.listen` for each route (0 picks a free port), relaying
    /// to 127.0.0.1:`route.target`. Throws `.qemuFailed` naming the port when one is taken.
    public init(routes: [(listen: Int, target: Int)], maxConnections: Int = defaultMaxConnections,
                bufferSize: Int = defaultBufferSize) throws(ToolFailure) {
        var opened: [(fd: Int32, target: Int)] = []
        var ports: [Int] = []
        for route in routes {
            switch Self.listen(port: route.listen) {
            case .success(let (fd, port)):
                opened.append((fd, route.target))
                ports.append(port)
            case .failure(let error):
                for listener in opened { Glibc.close(listener.fd) }
                throw error
            }
        }
        // Swift's Glibc module has no pipe2; nothing is spawned while the front is made.
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else {
            let why = String(cString: strerror(errno))
            for listener in opened { Glibc.close(listener.fd) }
            throw ToolFailure(.qemuFailed, "the port front could not make its wake pipe: \(why)")
        }
        for fd in pipeEnds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let byDescriptors = max(1, (Int(clamping: limit.rlim_cur) - 64) / 2)
        self.listeners = opened
        self.ports = ports
        self.maxConnections = max(1, min(maxConnections, byDescriptors))
        self.bufferSize = bufferSize
        self.wakeRead = pipeEnds[0]
        self.wakeWrite = pipeEnds[1]
    }

    /// Starts the relay thread.
    public func start() {
        lock.lock()
        guard state == .created else { lock.unlock(); return }
        state = .running
        lock.unlock()
        let thread = Thread { [self] in
            var loop = Loop(front: self)
            loop.run()
            loop.closeAll()
            closeOwnDescriptors()
            finished.signal()
        }
        thread.name = "toro port front"
        thread.start()
    }

    /// Closes the listeners and every connection; returns once the relay thread is gone.
    public func stop() {
        lock.lock()
        let was = state
        state = .stopped
        lock.unlock()
        switch was {
        case .created: closeOwnDescriptors()
        case .running:
            var byte: UInt8 = 1
            _ = Glibc.write(wakeWrite, &byte, 1)
            finished.wait()
        case .stopped: break
        }
    }

    public var counts: Counts {
        lock.lock(); defer { lock.unlock() }
        return shared
    }

    fileprivate var stopRequested: Bool {
        lock.lock(); defer { lock.unlock() }
        return state == .stopped
    }

    fileprivate func update(_ change: (inout Counts) -> Void) {
        lock.lock(); change(&shared); lock.unlock()
    }

    private func closeOwnDescriptors() {
        for listener in listeners { Glibc.close(listener.fd) }
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
    }

    /// A listening, non-blocking socket on 127.0.0.1:`port` and the port it got.
    private static func listen(port: Int) -> Result<(Int32, Int), ToolFailure> {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            return .failure(ToolFailure(.qemuFailed, "cannot open a socket for 127.0.0.1:\(port): \(String(cString: strerror(errno)))"))
        }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = loopback(port: port)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, Glibc.listen(fd, backlog) == 0 else {
            let why = String(cString: strerror(errno))
            Glibc.close(fd)
            return .failure(ToolFailure(.qemuFailed, "cannot listen on 127.0.0.1:\(port): \(why); choose another host port"))
        }
        return .success((fd, Int(UInt16(bigEndian: address.sin_port))))
    }

    /// The address 127.0.0.1:`port`.
    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }

    /// The loop's own state: touched by the relay thread only.
    private struct Loop {
        let front: PortFront
        var relays: [PortRelay] = []
        /// Accepted connections waiting for their connect to the target, oldest first.
        var waiting: [PortRelay] = []
        /// The one connection whose connect to the target is in flight.
        var connecting: PortRelay? = nil
        /// While accept is out of descriptors: when the listeners are polled again.
        var listenersRestUntil = 0.0

        init(front: PortFront) { self.front = front }

        mutating func run() {
            var fds: [pollfd] = []
            while !front.stopRequested {
                fds.removeAll(keepingCapacity: true)
                fds.append(pollfd(fd: front.wakeRead, events: Int16(POLLIN), revents: 0))
                let now = BackgroundProcess.monotonicNow()
                let listening = now >= listenersRestUntil
                for listener in front.listeners {
                    fds.append(pollfd(fd: listening ? listener.fd : -1, events: Int16(POLLIN), revents: 0))
                }
                let first = fds.count
                for relay in relays {
                    let (client, upstream) = relay.events
                    fds.append(pollfd(fd: client == 0 ? -1 : relay.client, events: client, revents: 0))
                    fds.append(pollfd(fd: upstream == 0 ? -1 : relay.upstream, events: upstream, revents: 0))
                }
                // Sleep until something is ready, or the connect in flight or the listeners'
                // rest is due (rounded up to the next millisecond).
                var due: Double? = listening ? nil : listenersRestUntil
                if let connecting { due = min(due ?? connecting.deadline, connecting.deadline) }
                let timeout = due.map { Int32((max(0, $0 - now) * 1000).rounded(.up)) } ?? -1
                let ready = poll(&fds, nfds_t(fds.count), timeout)
                if ready < 0 && errno != EINTR { break }
                if front.stopRequested { break }
                if ready > 0 {
                    // Relays first: the indexes in `fds` are those of the relays polled.
                    let polled = relays
                    for (index, relay) in polled.enumerated() {
                        let client = fds[first + 2 * index].revents, upstream = fds[first + 2 * index + 1].revents
                        if client != 0 || upstream != 0 { serve(relay, client: client, upstream: upstream) }
                    }
                    for (index, listener) in front.listeners.enumerated() where fds[1 + index].revents != 0 {
                        accept(listener.fd, target: listener.target)
                    }
                }
                advanceConnect()
                let held = relays.count + waiting.count + (connecting == nil ? 0 : 1)
                front.update { $0.open = held }
            }
        }

        /// Takes in what a listener has queued (at most 64 at a time, for fairness).
        mutating func accept(_ listener: Int32, target: Int) {
            for _ in 0..<64 {
                let fd = PortFront.acceptNonBlocking(listener)
                if fd < 0 {
                    if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
                        listenersRestUntil = BackgroundProcess.monotonicNow() + 0.1
                    }
                    return
                }
                let held = relays.count + waiting.count + (connecting == nil ? 0 : 1)
                if held >= front.maxConnections {
                    front.update { $0.refused += 1 }
                    Glibc.close(fd)
                    continue
                }
                noDelay(fd)
                waiting.append(PortRelay(client: fd, target: target))
                front.update { $0.accepted += 1 }
            }
        }

        /// Moves the connect in flight on: done, refused, timed out (tried again), or the
        /// next waiting connection's turn.
        mutating func advanceConnect() {
            while true {
                if let relay = connecting {
                    let now = BackgroundProcess.monotonicNow()
                    var check = pollfd(fd: relay.upstream, events: Int16(POLLOUT), revents: 0)
                    if poll(&check, 1, 0) > 0 {
                        var error: Int32 = 0
                        var length = socklen_t(MemoryLayout<Int32>.size)
                        getsockopt(relay.upstream, SOL_SOCKET, SO_ERROR, &error, &length)
                        connecting = nil
                        if error == 0 { connected(relay) } else { fail(relay) }
                        continue
                    }
                    guard now >= relay.deadline else { return }
                    Glibc.close(relay.upstream)
                    relay.upstream = -1
                    front.update { $0.retries += 1 }
                    if now - relay.firstTry >= PortFront.giveUpSeconds {
                        connecting = nil
                        fail(relay)
                        continue
                    }
                    relay.attempt += 1
                    if !startConnect(relay) { connecting = nil; fail(relay) }
                    return
                }
                guard !waiting.isEmpty else { return }
                let relay = waiting.removeFirst()
                relay.firstTry = BackgroundProcess.monotonicNow()
                if startConnect(relay) { connecting = relay } else { fail(relay) }
            }
        }

        /// A non-blocking connect to the relay's target; false when it failed at once.
        func startConnect(_ relay: PortRelay) -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return false }
            var address = PortFront.loopback(port: relay.target)
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard result == 0 || errno == EINPROGRESS else { Glibc.close(fd); return false }
            relay.upstream = fd
            relay.deadline = BackgroundProcess.monotonicNow() + min(0.002 * Double(1 << min(relay.attempt, 8)), 0.25)
            return true
        }

        mutating func connected(_ relay: PortRelay) {
            noDelay(relay.upstream)
            relay.toTarget.buffer = [UInt8](repeating: 0, count: front.bufferSize)
            relay.toClient.buffer = [UInt8](repeating: 0, count: front.bufferSize)
            relays.append(relay)
            front.update { $0.relayed += 1 }
        }

        /// The target could not be reached: the client is reset.
        func fail(_ relay: PortRelay) {
            front.update { $0.failed += 1 }
            PortFront.reset(relay.client)
            if relay.upstream >= 0 { Glibc.close(relay.upstream) }
        }

        /// One relay's sockets were ready: read what may be read, write what is buffered,
        /// pass ends on; a reset or error on either side resets both.
        mutating func serve(_ relay: PortRelay, client: Int16, upstream: Int16) {
            let readable = Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)
            var healthy = true
            if client & readable != 0 && relay.toTarget.wantsRead { healthy = relay.toTarget.fill(from: relay.client) }
            if healthy && upstream & readable != 0 && relay.toClient.wantsRead { healthy = relay.toClient.fill(from: relay.upstream) }
            if healthy { healthy = relay.toTarget.drain(to: relay.upstream) }
            if healthy { healthy = relay.toClient.drain(to: relay.client) }
            if !healthy {
                PortFront.reset(relay.client)
                PortFront.reset(relay.upstream)
            } else if relay.toTarget.shutDown && relay.toClient.shutDown {
                Glibc.close(relay.client)
                Glibc.close(relay.upstream)
            } else {
                return
            }
            relays.removeAll { $0 === relay }
        }

        /// Closes every connection (the front is stopping).
        mutating func closeAll() {
            for relay in relays + waiting + (connecting.map { [$0] } ?? []) {
                Glibc.close(relay.client)
                if relay.upstream >= 0 { Glibc.close(relay.upstream) }
            }
            relays = []
            waiting = []
            connecting = nil
            front.update { $0.open = 0 }
        }

        func noDelay(_ fd: Int32) {
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC (Swift's Glibc module hides accept4, so it
    /// is looked up), or accept and fcntl where the C library has none.
    fileprivate static func acceptNonBlocking(_ listener: Int32) -> Int32 {
        if let accept4 = acceptWithFlags {
            return accept4(listener, nil, nil, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
        }
        let fd = Glibc.accept(listener, nil, nil)
        if fd >= 0 {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        return fd
    }

    private typealias Accept4 = @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32
    private static let acceptWithFlags: Accept4? = {
        guard let symbol = dlsym(nil, "accept4") else { return nil }
        return unsafeBitCast(symbol, to: Accept4.self)
    }()

    /// Closes `fd` with a reset (SO_LINGER 0) rather than an orderly end.
    fileprivate static func reset(_ fd: Int32) {
        var abortive = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, socklen_t(MemoryLayout<linger>.size))
        Glibc.close(fd)
    }
}
