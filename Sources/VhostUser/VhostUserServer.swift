// A vhost-user back-end's event loop, shared by `toro-vsock` and `toro-fs`: one thread,
// one poll() over the vhost-user socket, the rings' kick eventfds and whatever host-side
// descriptors the device has (`HostSidePoller`: vsock's hybrid and forward listeners and
// bridged sockets; virtio-fs has none and answers each FUSE request in the turn it arrives).
//
// Order inside one turn (DESIGN.md, "vhost-user under TCG works"): first every vhost-user
// message already waiting (QEMU can make a kick readable before the SET_VRING_ENABLE that
// gives it meaning is read), then the kicks (an eventfd read may count 2: one drain serves
// them all), then the host sockets, then deadlines. QEMU closing the socket ends the loop
// (exit 0); a malformed message is logged and ends it too (exit 1): vhost-user.rst gives
// no way to resynchronise a stream after a bad message. SIGTERM/SIGINT stop it (exit 0).
//
// The vhost-user socket is listened on last, once the device's host side is open, so
// once `--socket` exists everything accepts; the server removes it when released. When
// accepting QEMU fails for want of descriptors the listener rests (AcceptBackoff) instead
// of spinning; rate-limited log lines' closing counts are flushed once a turn.
//
// The poll wakes at least every `ringRecheckInterval`: the session rechecks every running
// ring for chains no kick announced (a lost kick costs at most two intervals, and is
// logged: VhostUserSession.recheckRings), and a SIGTERM that lands between the loop's
// check and poll() is seen within that interval instead of never. A turn that takes
// longer than `slowTurn` is logged too: kicks wait while it runs.
import Glibc

nonisolated(unsafe) private var stopRequested: sig_atomic_t = 0

/// The descriptors a device serves besides the vhost-user socket and the kicks. The
/// defaults are "nothing to poll, no deadlines" (virtio-fs).
public protocol HostSidePoller: AnyObject {
    /// The descriptors to poll and for what.
    func pollEntries() -> [pollfd]
    /// Acts on `revents` for `fd` (one of `pollEntries`); `now` is `Posix.monotonicNow()`.
    func handleEvent(fd: Int32, revents: Int16, now: Double)
    /// Acts on every deadline at or before `now`; called once a turn.
    func expire(now: Double)
    /// The earliest deadline on `Posix.monotonicNow()`'s clock, for the poll timeout.
    var nextDeadline: Double? { get }
}

extension HostSidePoller {
    public func pollEntries() -> [pollfd] { [] }
    public func handleEvent(fd: Int32, revents: Int16, now: Double) {}
    public func expire(now: Double) {}
    public var nextDeadline: Double? { nil }
}

public final class VhostUserServer<Device: VhostUserDevice & HostSidePoller> {
    public let device: Device
    public let socketPath: String
    /// Other paths this server created and removes when released (vsock's `--uds`).
    let alsoRemoves: [String]
    var listener: Int32 = -1
    var channel: VhostUserChannel?
    var session: VhostUserSession?
    var frontEndBackoff = AcceptBackoff()
    /// Seconds between two rechecks of the running rings (see the header).
    public static var ringRecheckInterval: Double { 1 }
    /// A turn longer than this (seconds) is logged.
    public static var slowTurn: Double { 1 }

    /// Runs `openHostSide` (the device's own listeners), then listens on `socketPath`.
    public init(device: Device, socketPath: String, alsoRemoves: [String] = [],
                openHostSide: (Device) throws(SystemError) -> Void = { _ in }) throws(SystemError) {
        self.device = device
        self.socketPath = socketPath
        self.alsoRemoves = alsoRemoves
        try openHostSide(device)
        listener = try Posix.listenUnix(path: socketPath, backlog: 1)
    }

    deinit {
        if listener >= 0 { close(listener) }
        unlink(socketPath)
        for path in alsoRemoves { unlink(path) }
    }

    /// Stops `run` at its next turn (from a signal handler: SIGTERM, SIGINT).
    public static func installSignalHandlers() {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGTERM) { _ in stopRequested = 1 }
        signal(SIGINT) { _ in stopRequested = 1 }
    }

    /// An executable's life after its options are parsed: signal handlers, `make` (its
    /// error logged, exit 1), `run`, then exit with its status once the server (and with
    /// it the socket) is gone.
    public static func serve(_ make: () throws(SystemError) -> VhostUserServer) -> Never {
        installSignalHandlers()
        let status: Int32
        do {
            let server = try make()
            status = server.run()
        } catch {
            BackendLog.line("\(error)")
            status = 1
        }
        exit(status)
    }

    /// Serves until QEMU disconnects; returns the exit status.
    public func run() -> Int32 {
        var nextRecheck = Posix.monotonicNow() + Self.ringRecheckInterval
        while stopRequested == 0 {
            let now = Posix.monotonicNow()
            frontEndBackoff.expire(now)
            // While the listener rests its slot is polled as fd -1, which poll ignores.
            let front = channel?.fd ?? (frontEndBackoff.isPaused(now) ? -1 : listener)
            var entries = [pollfd(fd: front, events: Int16(POLLIN), revents: 0)]
            let kicks = session?.kickFDs ?? []
            for kick in kicks { entries.append(pollfd(fd: kick.fd, events: Int16(POLLIN), revents: 0)) }
            let hostStart = entries.count
            entries += device.pollEntries()
            var timeout: Int32 = -1
            let deadlines = [device.nextDeadline, channel == nil ? frontEndBackoff.resumeAt : nil, nextRecheck].compactMap { $0 }
            if let deadline = deadlines.min() {
                timeout = Int32(max(0, min(60_000, (deadline - Posix.monotonicNow()) * 1000 + 1)))
            }
            let ready = poll(&entries, nfds_t(entries.count), timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                BackendLog.line("poll failed: \(SystemError("poll"))")
                return 1
            }
            let turnStart = Posix.monotonicNow()
            if entries[0].revents != 0 {
                if channel == nil {
                    acceptFrontEnd()
                } else if let status = serviceMessages() {
                    return status
                }
            }
            for (offset, kick) in kicks.enumerated() where entries[1 + offset].revents != 0 {
                if session?.isKickFD(kick.fd, of: kick.index) == true { session?.serviceKick(index: kick.index) }
            }
            for entry in entries[hostStart...] where entry.revents != 0 {
                device.handleEvent(fd: entry.fd, revents: entry.revents, now: Posix.monotonicNow())
            }
            device.expire(now: Posix.monotonicNow())
            let turnEnd = Posix.monotonicNow()
            if turnEnd >= nextRecheck {
                session?.recheckRings()
                nextRecheck = turnEnd + Self.ringRecheckInterval
            }
            if turnEnd - turnStart > Self.slowTurn {
                BackendLog.limited("slow-turn", "one turn of the event loop took \(Int((turnEnd - turnStart) * 1000)) ms "
                                   + "(\(entries.count) descriptors polled); kicks waited meanwhile")
            }
            BackendLog.flushSuppressed()
        }
        BackendLog.line("stopped by a signal")
        return 0
    }

    func acceptFrontEnd() {
        guard let fd = Posix.accept(listener) else {
            _ = frontEndBackoff.failed(errno, now: Posix.monotonicNow(), listener: "the vhost-user socket")
            return
        }
        frontEndBackoff.succeeded()
        // Messages are read whole, so the vhost-user socket blocks.
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
        channel = VhostUserChannel(fd: fd)
        session = VhostUserSession(device: device)
        BackendLog.debug("QEMU connected")
    }

    /// Handles every message waiting; an exit status when the conversation is over.
    func serviceMessages() -> Int32? {
        guard let channel, let session else { return nil }
        repeat {
            do throws(VhostUserError) {
                let message = try channel.receive()
                BackendLog.debug("<- \(VhostUserRequest.name(of: message.header.request))")
                if let reply = try session.handle(message) { try channel.send(reply) }
            } catch .closed {
                BackendLog.debug("QEMU disconnected")
                return 0
            } catch {
                BackendLog.line("vhost-user: \(error); dropping the connection")
                return 1
            }
        } while Self.readable(channel.fd)
        return nil
    }

    static func readable(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0 && entry.revents != 0
    }
}
