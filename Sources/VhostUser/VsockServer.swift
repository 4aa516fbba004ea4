// `toro-vsock`'s event loop: one thread, one poll() over the vhost-user socket, the rings'
// kick eventfds, the hybrid and forward listeners and every bridged socket.
//
// Order inside one turn (DESIGN.md, "vhost-user under TCG works"): first every vhost-user
// message already waiting (QEMU can make a kick readable before the SET_VRING_ENABLE that
// gives it meaning is read), then the kicks (an eventfd read may count 2: one drain serves
// them all), then the host sockets, then deadlines. QEMU closing the socket ends the loop
// (exit 0); a malformed message is logged and ends it too (exit 1): vhost-user.rst gives
// no way to resynchronise a stream after a bad message.
import Glibc

nonisolated(unsafe) private var stopRequested: sig_atomic_t = 0

public final class VsockServer {
    public let options: VsockOptions
    public let device: VsockDevice
    var listener: Int32 = -1
    var channel: VhostUserChannel?
    var session: VhostUserSession?

    /// Opens every listener (the hybrid socket and forwards first, the vhost-user socket
    /// last, so that once `--socket` exists everything accepts).
    public init(options: VsockOptions) throws(SystemError) {
        self.options = options
        device = VsockDevice(guestCID: options.guestCID, udsPath: options.udsPath)
        try device.listenHybrid()
        for forward in options.forwards { try device.listenForward(forward) }
        listener = try Posix.listenUnix(path: options.socketPath, backlog: 1)
    }

    deinit {
        if listener >= 0 { close(listener) }
        unlink(options.socketPath)
        if let uds = options.udsPath { unlink(uds) }
    }

    /// Stops `run` at its next turn (from a signal handler: SIGTERM, SIGINT).
    public static func installSignalHandlers() {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGTERM) { _ in stopRequested = 1 }
        signal(SIGINT) { _ in stopRequested = 1 }
    }

    /// Serves until QEMU disconnects; returns the exit status.
    public func run() -> Int32 {
        while stopRequested == 0 {
            var entries: [pollfd] = []
            let vhostFD = channel?.fd ?? listener
            entries.append(pollfd(fd: vhostFD, events: Int16(POLLIN), revents: 0))
            let kicks = session?.kickFDs ?? []
            for kick in kicks { entries.append(pollfd(fd: kick.fd, events: Int16(POLLIN), revents: 0)) }
            let hostStart = entries.count
            entries += device.pollEntries()
            var timeout: Int32 = -1
            if let deadline = device.nextDeadline {
                timeout = Int32(max(0, min(60_000, (deadline - VsockDevice.now()) * 1000 + 1)))
            }
            let ready = poll(&entries, nfds_t(entries.count), timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                BackendLog.line("poll failed: \(SystemError("poll"))")
                return 1
            }
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
                device.handleEvent(fd: entry.fd, revents: entry.revents)
            }
            device.expire()
        }
        BackendLog.line("stopped by a signal")
        return 0
    }

    func acceptFrontEnd() {
        guard let fd = Posix.accept(listener) else { return }
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
        } while VsockServer.readable(channel.fd)
        return nil
    }

    static func readable(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0 && entry.revents != 0
    }
}
