// The admission of one listening port's new connections, with its log lines: what every
// socket provider's listener shares (vsock on microvm, TCP on legacy). It asks the
// memory budget and Core's ConnectionTable (ConnectionLimits.swift) about each newcomer
// and logs refusals, evictions and idle closes once per burst (RefusalBurst), never once
// per connection:
//
//   sockets: port 80 refusing connections: the backlog of 64 is full
//   sockets: port 80 at its limit of 405 connections: closing those silent longest to admit new ones
//   sockets: port 80 accepting again; 12 connections refused
//   sockets: port 80 closing connections silent for 60 s (idle-timeout)
//
// Rules: the provider calls `decide` for each connection a peer opens (with how many it
// admitted and the service has not accepted yet), closes the victim of an `.evict`, and
// keeps the table current (`table.add`, `table.remove`, `table.released`).

public struct ListenerAdmission<Connection: IdleTracked> {
    public let port: UInt32
    public var table: ConnectionTable<Connection>
    private var evictionBurst = RefusalBurst()
    private var idleBurst = RefusalBurst()

    public init(port: UInt32, limits: ConnectionLimits) {
        self.port = port
        table = ConnectionTable(limits: limits)
    }

    public var limits: ConnectionLimits { table.limits }

    /// Decides on a newcomer; `pending`: admitted connections not yet accepted (they have
    /// not allocated their thread yet, so they count against memory too).
    public mutating func decide(pending: Int, now: UInt64) -> AdmissionDecision<Connection> {
        let memory = MemoryBudget.admit(ConnectionCost.idleBytes * (pending + 1), for: "a connection")
        let decision = table.decide(pending: pending, now: now, memoryAdmits: memory)
        switch decision {
        case .refuse(let reason):
            if table.refusalOpensBurst { logRefusal(reason) }
        case .evict:
            if evictionBurst.refuse(now: now) {
                line("at its limit of ", limits.maximumConnections,
                     " connections: closing those silent longest to admit new ones")
            }
        case .admit:
            if let refused = table.endedBurst {
                line("accepting again; ", refused, refused == 1 ? " connection refused" : " connections refused")
            }
        }
        return decision
    }

    /// A connection was closed for its idle timeout (one line per burst).
    public mutating func noteIdleClose(now: UInt64) {
        if idleBurst.refuse(now: now) {
            line("closing connections silent for ", Int(limits.idleTimeout / 1_000_000_000), " s (idle-timeout)")
        }
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
