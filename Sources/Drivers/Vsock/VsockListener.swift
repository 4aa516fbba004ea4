// A listening vsock port: its pending connections (the accept backlog) and its table of
// live connections, admitted by Core's ConnectionTable (limit, backlog, memory, eviction
// of the connection silent longest). Refusals, evictions and idle closes are logged once
// per burst (RefusalBurst), never once per connection.
//
// Rules: CPU 0 only, with the driver. `admit` runs on the driver thread for each REQUEST;
// `accept` on the service's thread.
import Core
import Drivers

final class VsockListener: Listener {
    let port: UInt32
    unowned(unsafe) let sockets: VsockSockets
    var table: ConnectionTable<VsockStream>
    /// Admitted, answered, not yet accepted by the service (at most `limits.backlog`).
    var pending: [VsockStream] = []
    let arrived = Event()
    var closed = false
    var evictionBurst = RefusalBurst()
    var idleBurst = RefusalBurst()

    init(port: UInt32, sockets: VsockSockets, limits: ConnectionLimits) {
        self.port = port
        self.sockets = sockets
        table = ConnectionTable(limits: limits)
    }

    var limits: ConnectionLimits { table.limits }

    func accept() throws(SocketError) -> any StreamSocket {
        while true {
            if closed { throw .closed }
            if sockets.driver.failed { throw .deviceFailed }
            if !pending.isEmpty {
                let stream = pending.removeFirst()
                if pending.isEmpty { pending = [] }
                return stream
            }
            arrived.reset()
            arrived.wait()
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        for stream in pending { stream.close() }
        pending.removeAll()
        sockets.removeListener(self)
        arrived.signal()
    }

    /// Decides on a peer's new connection: true to admit it (after evicting a silent
    /// connection if that is what made room), false to refuse it with an RST.
    func admit(now: UInt64) -> Bool {
        // Connections admitted but not yet accepted have not allocated their thread yet:
        // count them too, or a burst of REQUESTs is admitted against the same free pages.
        let memory = MemoryBudget.admit(ConnectionCost.idleBytes * (pending.count + 1), for: "a connection")
        switch table.decide(pending: pending.count, now: now, memoryAdmits: memory) {
        case .refuse(let reason):
            if table.refusalOpensBurst { logRefusal(reason) }
            return false
        case .evict(let victim):
            if evictionBurst.refuse(now: now) {
                line("at its limit of ", limits.maximumConnections,
                     " connections: closing those silent longest to admit new ones")
            }
            evict(victim)
        case .admit:
            if let refused = table.endedBurst {
                line("accepting again; ", refused, refused == 1 ? " connection refused" : " connections refused")
            }
        }
        return true
    }

    func add(_ stream: VsockStream) {
        stream.listener = self
        table.add(stream)
        pending.append(stream)
        arrived.signal()
    }

    /// The service closed `stream`: it leaves the table (an evicted one left it already,
    /// and its memory is now on its way back).
    func remove(_ stream: VsockStream) {
        if stream.evicted { table.released() } else { table.remove(stream) }
        stream.listener = nil
    }

    func noteIdleClose() {
        if idleBurst.refuse(now: Clock.monotonicNanoseconds()) {
            line("closing connections silent for ", Int(limits.idleTimeout / 1_000_000_000), " s (idle-timeout)")
        }
    }

    private func evict(_ victim: VsockStream) {
        victim.evicted = true
        if let index = pending.firstIndex(where: { $0 === victim }) {
            // Never accepted: nobody else holds it.
            pending.remove(at: index)
            victim.close()
            return
        }
        victim.closeForSilence()
    }

    private func logRefusal(_ reason: ConnectionRefusal) {
        switch reason {
        case .backlogFull:
            line("refusing connections: the backlog of ", limits.backlog, " is full")
        case .connectionLimit:
            line("refusing connections: the limit of ", limits.maximumConnections, " is reached")
        case .memory:
            line("refusing connections: memory is low", nil, "")
        }
    }

    private func line(_ text: StaticString, _ number: Int?, _ tail: StaticString) {
        Log.timestamp()
        Log.write("sockets: port ")
        Log.decimal(UInt64(port))
        Log.write(" ")
        Log.write(text)
        if let number { Log.decimal(number) }
        Log.write(tail)
        Log.put(10)
    }
}
