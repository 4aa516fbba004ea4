// The relay between a legacy guest's NIC and a tap device: a link that loses, duplicates and
// reorders frames on purpose (this machine's kernel has no netem qdisc to do it).
//
//   QEMU -netdev stream,server=off,addr.type=unix,addr.path=P   (`toro run --net-socket P`)
//        connects to the relay's Unix stream socket at P; each Ethernet frame travels behind
//        a 4-byte big-endian length (QEMU's net/stream.c framing, as DESIGN.md notes)
//   the tap (LinkNamespace): one read or write per frame (IFF_NO_PI: no header)
//
// Every frame, in either direction, meets a seeded draw (TestSupport's SplitMix64, so a run
// replays): with `Impairment.lossy`, 2% are dropped, 1% are sent twice, and 2% are held back
// and sent right after the next frame in the same direction (reordered); a held frame with
// no successor within 10 ms goes out alone. The counters say what happened, per direction,
// for failure messages and for the test's own check that the link really was impaired. The
// relay also reads (never changes) each IPv4 TCP header it passes, counting zero-window
// advertisements and resets, so a test can show that a peer's window really closed, and
// (with `tracing`) keeps a one-line summary of each segment for a failure's post-mortem.
//
// The relay distrusts the socket: a frame length of 0 or above 65,535 ends the relay with
// a reason (`state`), never a trap. It runs on one thread (poll over the socket, the tap
// and a wake-up pipe) from `start` to `stop`, or until QEMU closes its end.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TestSupport

final class FrameRelay: @unchecked Sendable {
    /// How often (per thousand frames) each impairment strikes.
    struct Impairment: Sendable {
        var dropPerMille: Int
        var duplicatePerMille: Int
        var reorderPerMille: Int

        static let none = Impairment(dropPerMille: 0, duplicatePerMille: 0, reorderPerMille: 0)
        /// ~2% dropped, ~1% duplicated, ~2% reordered.
        static let lossy = Impairment(dropPerMille: 20, duplicatePerMille: 10, reorderPerMille: 20)
    }

    /// Which way a frame goes.
    enum Direction: Int, CaseIterable, Sendable {
        /// From the tap (Linux) to the socket (the guest).
        case toGuest = 0
        /// From the socket (the guest) to the tap (Linux).
        case fromGuest = 1

        var name: String { self == .toGuest ? "Linux -> guest" : "guest -> Linux" }
    }

    /// What the relay did, per direction (indexed by `Direction.rawValue`).
    struct Counters: Sendable {
        var frames = [0, 0]
        var dropped = [0, 0]
        var duplicated = [0, 0]
        var reordered = [0, 0]
        /// Held frames that went out alone (no successor within the hold time).
        var heldAlone = [0, 0]
        /// TCP segments with ACK set, neither SYN nor RST, advertising a zero window.
        var zeroWindows = [0, 0]
        /// TCP segments with RST set.
        var resets = [0, 0]

        var description: String {
            Direction.allCases.map { d in
                let i = d.rawValue
                return "\(d.name): \(frames[i]) frames, \(dropped[i]) dropped, \(duplicated[i]) duplicated, "
                    + "\(reordered[i]) reordered (\(heldAlone[i]) of them sent alone), "
                    + "\(zeroWindows[i]) zero-window segments, \(resets[i]) resets"
            }.joined(separator: "\n")
        }
    }

    let socketPath: String
    private let impairment: Impairment
    private let tapFD: Int32
    private var listenFD: Int32 = -1
    private var guestFD: Int32 = -1
    private var wake: [Int32] = [-1, -1]
    private var generator: RNG
    private let lock = NSLock()
    private var counts = Counters()
    private var status = "waiting for QEMU to connect"
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)
    private var running = false
    private var held: [[UInt8]?] = [nil, nil]
    private var heldSince: [Double] = [0, 0]
    static let holdSeconds = 0.010
    static let maximumFrame = 65535

    /// Listens on `socketPath` (a fresh path) for QEMU; relays to and from `tapFD` once started.
    init(socketPath: String, tapFD: Int32, impairment: Impairment, seed: UInt64, tracing: Bool = false) throws(LinkSetupError) {
        self.socketPath = socketPath
        self.tracing = tracing
        self.tapFD = tapFD
        self.impairment = impairment
        generator = RNG(seed: seed)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw LinkSetupError(description: "socket path too long: \(socketPath)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in pathBytes.enumerated() { raw[index] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LinkSetupError(description: "socket(AF_UNIX): \(String(cString: strerror(errno)))") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 1) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw LinkSetupError(description: "listening on \(socketPath): \(why)")
        }
        listenFD = fd
        guard pipe(&wake) == 0 else {
            close(fd)
            throw LinkSetupError(description: "pipe: \(String(cString: strerror(errno)))")
        }
        for end in wake { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
    }

    deinit {
        for fd in [listenFD, guestFD, wake[0], wake[1]] where fd >= 0 { close(fd) }
        unlink(socketPath)
    }

    var counters: Counters { lock.lock(); defer { lock.unlock() }; return counts }
    /// What the relay is doing, or why it stopped.
    var state: String { lock.lock(); defer { lock.unlock() }; return status }

    /// Starts relaying on a thread of its own.
    func start() {
        running = true
        Thread.detachNewThread { [self] in
            loop()
            finished.signal()
        }
    }

    /// Stops the relay and waits for its thread (at most 5 s).
    func stop() {
        guard running else { return }
        running = false
        lock.lock(); stopping = true; lock.unlock()
        var byte: UInt8 = 1
        _ = write(wake[1], &byte, 1)
        _ = finished.wait(timeout: .now() + 5)
    }

    private func setStatus(_ text: String) { lock.lock(); status = text; lock.unlock() }
    private var isStopping: Bool { lock.lock(); defer { lock.unlock() }; return stopping }

    private func loop() {
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536 + 4)
        while !isStopping {
            var fds = [pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0)]
            if guestFD >= 0 {
                fds.append(pollfd(fd: guestFD, events: Int16(POLLIN), revents: 0))
                fds.append(pollfd(fd: tapFD, events: Int16(POLLIN), revents: 0))
            } else {
                fds.append(pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0))
            }
            let waiting = held[0] != nil || held[1] != nil
            let ready = poll(&fds, nfds_t(fds.count), waiting ? 5 : 200)
            if ready < 0 && errno != EINTR { return setStatus("poll: \(String(cString: strerror(errno)))") }
            flushHeld(olderThan: Self.holdSeconds)
            if ready <= 0 { continue }
            if fds[0].revents != 0 { break }
            if guestFD < 0 {
                if fds[1].revents != 0 {
                    guestFD = accept(listenFD, nil, nil)
                    if guestFD < 0 { return setStatus("accept: \(String(cString: strerror(errno)))") }
                    _ = fcntl(guestFD, F_SETFD, FD_CLOEXEC)
                    setStatus("relaying")
                }
                continue
            }
            if fds[1].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(guestFD, $0.baseAddress, $0.count) }
                if count == 0 { return setStatus("QEMU closed the link") }
                if count < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return setStatus("reading the socket: \(String(cString: strerror(errno)))")
                }
                pending.append(contentsOf: buffer[0..<count])
                var offset = 0
                while pending.count - offset >= 4 {
                    let length = Int(pending[offset]) << 24 | Int(pending[offset + 1]) << 16
                        | Int(pending[offset + 2]) << 8 | Int(pending[offset + 3])
                    guard length > 0 && length <= Self.maximumFrame else {
                        return setStatus("QEMU sent a frame length of \(length)")
                    }
                    guard pending.count - offset >= 4 + length else { break }
                    let frame = Array(pending[(offset + 4)..<(offset + 4 + length)])
                    offset += 4 + length
                    guard pass(frame, .fromGuest) else { return }
                }
                pending.removeSubrange(0..<offset)
            }
            if fds[2].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(tapFD, $0.baseAddress, $0.count) }
                if count < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return setStatus("reading the tap: \(String(cString: strerror(errno)))")
                }
                if count > 0 { guard pass(Array(buffer[0..<count]), .toGuest) else { return } }
            }
        }
        setStatus("stopped")
    }

    /// One frame through the impairments; false once the relay must stop.
    private func pass(_ frame: [UInt8], _ direction: Direction) -> Bool {
        let d = direction.rawValue
        let draw = generator.below(1000)
        lock.lock()
        counts.frames[d] += 1
        observe(frame, d)
        lock.unlock()
        var copies = 1
        if draw < impairment.dropPerMille {
            lock.lock(); counts.dropped[d] += 1; lock.unlock()
            return true
        } else if draw < impairment.dropPerMille + impairment.duplicatePerMille {
            lock.lock(); counts.duplicated[d] += 1; lock.unlock()
            copies = 2
        } else if draw < impairment.dropPerMille + impairment.duplicatePerMille + impairment.reorderPerMille && held[d] == nil {
            lock.lock(); counts.reordered[d] += 1; lock.unlock()
            held[d] = frame
            heldSince[d] = Self.now()
            return true
        }
        for _ in 0..<copies { guard send(frame, direction) else { return false } }
        if let late = held[d] {
            held[d] = nil
            guard send(late, direction) else { return false }
        }
        return true
    }

    /// Sends held frames that waited longer than `seconds` for a successor.
    private func flushHeld(olderThan seconds: Double) {
        for direction in Direction.allCases {
            let d = direction.rawValue
            guard let late = held[d], Self.now() - heldSince[d] >= seconds else { continue }
            held[d] = nil
            lock.lock(); counts.heldAlone[d] += 1; lock.unlock()
            _ = send(late, direction)
        }
    }

    private func send(_ frame: [UInt8], _ direction: Direction) -> Bool {
        switch direction {
        case .fromGuest:
            // The tap takes a frame per write; one it cannot take is a lost frame.
            _ = frame.withUnsafeBytes { write(tapFD, $0.baseAddress, $0.count) }
            return true
        case .toGuest:
            let length = UInt32(frame.count)
            let message = [UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)] + frame
            var offset = 0
            while offset < message.count {
                let sent = message.withUnsafeBytes { Glibc.send(guestFD, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
                if sent < 0 {
                    if errno == EINTR { continue }
                    setStatus("writing the socket: \(String(cString: strerror(errno)))")
                    return false
                }
                offset += sent
            }
            return true
        }
    }

    /// One TCP segment as the relay saw it (before any impairment), for `trace`.
    struct Segment: Sendable {
        var direction: Direction
        var time: Double
        var sourcePort: Int
        var destinationPort: Int
        var sequence: UInt32
        var acknowledgment: UInt32
        var flags: UInt8
        var window: Int
        var payload: Int

        var description: String {
            let names: [(UInt8, String)] = [(0x02, "S"), (0x10, "."), (0x08, "P"), (0x01, "F"), (0x04, "R")]
            let flagText = names.filter { flags & $0.0 != 0 }.map(\.1).joined()
            return String(format: "%10.3f ", time) + "\(direction == .toGuest ? "->" : "<-") \(sourcePort)>\(destinationPort) [\(flagText)] "
                + "seq \(sequence) ack \(acknowledgment) win \(window) len \(payload)"
        }
    }

    /// Keeps every TCP segment's summary (at most `traceLimit`; set at init).
    private let tracing: Bool
    static let traceLimit = 500_000
    private var segments: [Segment] = []

    /// The traced segments of the connection whose Linux-side port is `port` (every one when nil).
    func trace(port: Int? = nil) -> [Segment] {
        lock.lock(); defer { lock.unlock() }
        guard let port else { return segments }
        return segments.filter { $0.sourcePort == port || $0.destinationPort == port }
    }

    /// Counts zero windows and resets in an IPv4 TCP frame (the caller holds the lock).
    private func observe(_ frame: [UInt8], _ d: Int) {
        guard frame.count >= 14 + 20, frame[12] == 0x08, frame[13] == 0x00, frame[14] >> 4 == 4, frame[23] == 6 else { return }
        let ipHeader = Int(frame[14] & 0x0f) * 4
        let tcp = 14 + ipHeader
        guard frame.count >= tcp + 20 else { return }
        let flags = frame[tcp + 13]
        let window = Int(frame[tcp + 14]) << 8 | Int(frame[tcp + 15])
        if flags & 0x04 != 0 { counts.resets[d] += 1 }
        if window == 0 && flags & 0x10 != 0 && flags & 0x06 == 0 { counts.zeroWindows[d] += 1 }
        guard tracing && segments.count < Self.traceLimit else { return }
        func word(_ at: Int) -> UInt32 {
            UInt32(frame[at]) << 24 | UInt32(frame[at + 1]) << 16 | UInt32(frame[at + 2]) << 8 | UInt32(frame[at + 3])
        }
        let total = Int(frame[16]) << 8 | Int(frame[17])
        let payload = max(0, total - ipHeader - Int(frame[tcp + 12] >> 4) * 4)
        segments.append(Segment(direction: d == 0 ? .toGuest : .fromGuest, time: Self.now(),
                                sourcePort: Int(frame[tcp]) << 8 | Int(frame[tcp + 1]),
                                destinationPort: Int(frame[tcp + 2]) << 8 | Int(frame[tcp + 3]),
                                sequence: word(tcp + 4), acknowledgment: word(tcp + 8), flags: flags, window: window,
                                payload: payload))
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
