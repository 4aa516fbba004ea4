// The connection limits' defaults on this machine, and reading them from the kernel
// command line (`max-conns=`, `backlog=`, `idle-timeout=`; ConnectionLimits.swift says
// what each bounds).

/// What an idle connection costs at least: a thread stack and the first buffers.
public enum ConnectionCost {
    public static let idleBytes = Int(ThreadStack.size) + 8 * 1024
}

extension ConnectionLimits {
    /// The default limit for this machine's memory: a quarter of it divided by what an
    /// idle connection costs, between 8 and `maximumConnectionsCap` (64 MiB: 405).
    public static var defaultMaximumConnections: Int {
        MemoryBudget.share(denominator: 4, perItem: ConnectionCost.idleBytes, minimum: 8, maximum: maximumConnectionsCap)
    }

    /// The limits from `max-conns=`, `backlog=`, `idle-timeout=`, defaults for the rest.
    public init(commandLine: KernelCommandLine) throws(KernelArgumentError) {
        let maximum = try commandLine.number("max-conns", minimum: 1, maximum: 65536) ?? Self.defaultMaximumConnections
        let backlog = try commandLine.number("backlog", minimum: 1, maximum: 65536) ?? Self.defaultBacklog
        let idle = try commandLine.number("idle-timeout", minimum: 0, maximum: 86400) ?? Self.defaultIdleSeconds
        self.init(maximumConnections: maximum, backlog: backlog, idleTimeout: UInt64(idle) * 1_000_000_000)
    }
}
