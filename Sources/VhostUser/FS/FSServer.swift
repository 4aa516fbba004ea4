// `toro-fs`'s event loop: one thread, one poll() over the vhost-user socket and the rings'
// kick eventfds. The same turn order as VsockServer (every vhost-user message waiting
// first, then kicks); there are no host sockets: FUSE requests are answered in the turn
// they arrive. QEMU closing the socket ends the loop (exit 0); a malformed vhost-user
// message ends it too (exit 1); SIGTERM/SIGINT stop it (exit 0).
import Glibc

nonisolated(unsafe) private var fsStopRequested: sig_atomic_t = 0

public final class FSServer {
    public let options: FSOptions
    public let device: FSDevice
    var listener: Int32 = -1
    var channel: VhostUserChannel?
    var session: VhostUserSession?

    /// Opens the share, then listens on the socket (so once it exists, the share is open).
    public init(options: FSOptions) throws(SystemError) {
        self.options = options
        device = FSDevice(server: try FUSEServer(root: options.sharePath, readOnly: options.readOnly))
        listener = try Posix.listenUnix(path: options.socketPath, backlog: 1)
    }

    deinit {
        if listener >= 0 { close(listener) }
        unlink(options.socketPath)
    }

    /// Stops `run` at its next turn (from a signal handler: SIGTERM, SIGINT).
    public static func installSignalHandlers() {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGTERM) { _ in fsStopRequested = 1 }
        signal(SIGINT) { _ in fsStopRequested = 1 }
    }

    /// Serves one QEMU connection until it ends; returns the exit status.
    public func run() -> Int32 {
        while fsStopRequested == 0 {
            var entries: [pollfd] = [pollfd(fd: channel?.fd ?? listener, events: Int16(POLLIN), revents: 0)]
            let kicks = session?.kickFDs ?? []
            for kick in kicks { entries.append(pollfd(fd: kick.fd, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&entries, nfds_t(entries.count), -1)
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
        }
        BackendLog.line("stopped by a signal")
        return 0
    }

    func acceptFrontEnd() {
        guard let fd = Posix.accept(listener) else { return }
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
}
