// A listening vsock port: its pending connections (the accept backlog) and its table of
// live connections, admitted by Core's ListenerAdmission (limit, backlog, memory, eviction
// of the connection silent longest, and the log lines of each burst).
//
// Rules: CPU 0 only, with the driver. `admit` runs on the driver thread for each REQUEST;
// `accept` on the service's thread.
import Core
import Drivers

final class VsockListener: Listener {
    let port: UInt32
    unowned(unsafe) let sockets: VsockSockets
    var admission: ListenerAdmission<VsockStream>
    /// Admitted, answered, not yet accepted by the service (at most `limits.backlog`).
    let queue = AcceptQueue<VsockStream>()
    var closed: Bool { queue.closed }

    init(port: UInt32, sockets: VsockSockets, limits: ConnectionLimits) {
        self.port = port
        self.sockets = sockets
        admission = ListenerAdmission(port: port, limits: limits)
    }

    var limits: ConnectionLimits { admission.limits }

    func accept() throws(SocketError) -> any StreamSocket {
        try queue.next { sockets.driver.failed }
    }

    func close() {
        guard !closed else { return }
        for stream in queue.close() { stream.close() }
        sockets.removeListener(self)
    }

    /// Decides on a peer's new connection: true to admit it (after evicting a silent
    /// connection if that is what made room), false to refuse it with an RST.
    func admit(now: UInt64) -> Bool {
        switch admission.decide(pending: queue.pending.count, now: now) {
        case .refuse:
            return false
        case .evict(let victim):
            evict(victim)
        case .admit:
            break
        }
        return true
    }

    func add(_ stream: VsockStream) {
        stream.listener = self
        admission.table.add(stream)
        queue.push(stream)
    }

    /// The service closed `stream`: it leaves the table (an evicted one left it already,
    /// and its memory is now on its way back).
    func remove(_ stream: VsockStream) {
        if stream.evicted { admission.table.released() } else { admission.table.remove(stream) }
        stream.listener = nil
    }

    func noteIdleClose() {
        admission.noteIdleClose(now: Clock.monotonicNanoseconds())
    }

    private func evict(_ victim: VsockStream) {
        victim.evicted = true
        if queue.remove(victim) {
            // Never accepted: nobody else holds it.
            victim.close()
            return
        }
        victim.closeForSilence()
    }
}
