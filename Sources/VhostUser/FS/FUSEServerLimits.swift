// How many host descriptors one guest may hold through the FUSE server: every node the
// guest knows is an O_PATH descriptor, every open file or directory another. Without caps a
// guest that looks up (or opens) without forgetting (or releasing) exhausts the process's
// descriptors, and with them the vhost-user socket's ability to receive QEMU's eventfds.
//
// Past `maxNodes` a request that would make a new node (LOOKUP, CREATE, MKDIR, each
// READDIRPLUS entry) is answered ENFILE; past `maxHandles` OPEN, OPENDIR and CREATE are
// answered EMFILE. Both are checked before anything changes on the host. Nodes the guest
// already holds keep working, and FORGET / RELEASE make room again. A host that runs out of
// descriptors anyway (a lower `ulimit -n`) makes the failing openat's errno (EMFILE,
// ENFILE) the reply: never a trap, never a retry loop.
//
// Rules for callers: `fitted(descriptorLimit:)` keeps the caps plus `reserve` under the
// process's RLIMIT_NOFILE (toro-fs calls it at start with the limit it could raise to).
import Glibc

public struct FUSEServerLimits: Equatable, Sendable {
    /// The default of `--max-nodes`.
    public static let defaultMaxNodes = 16384
    /// The default of `--max-handles`.
    public static let defaultMaxHandles = 4096
    /// Descriptors kept for everything else: stdio, the listener, QEMU's socket, eventfds
    /// and memory-table descriptors, READDIR's transient listing descriptor.
    public static let reserve = 64

    /// Nodes (the root included) the guest may hold at once.
    public var maxNodes: Int
    /// Open file and directory handles the guest may hold at once.
    public var maxHandles: Int

    public init(maxNodes: Int = FUSEServerLimits.defaultMaxNodes, maxHandles: Int = FUSEServerLimits.defaultMaxHandles) {
        self.maxNodes = maxNodes
        self.maxHandles = maxHandles
    }

    /// The caps lowered, if need be, so that nodes + handles + `reserve` fit in `limit`
    /// descriptors: handles get a quarter of what is left, nodes the rest (at least 2 and 1).
    public func fitted(descriptorLimit limit: Int) -> FUSEServerLimits {
        let room = limit - FUSEServerLimits.reserve
        guard maxNodes + maxHandles > room else { return self }
        let handles = max(1, min(maxHandles, room / 4))
        return FUSEServerLimits(maxNodes: max(2, min(maxNodes, room - handles)), maxHandles: handles)
    }
}

extension FUSEServer {
    /// Fails with ENFILE when a new node would pass `maxNodes`.
    func admitNode() throws(Errno) {
        guard nodes.count < limits.maxNodes else {
            BackendLog.limited("node-cap", "refusing a new node: the guest holds \(nodes.count) (--max-nodes); ENFILE")
            throw Errno(ENFILE)
        }
    }

    /// Fails with EMFILE when a new handle would pass `maxHandles`.
    func admitHandle() throws(Errno) {
        guard handles.count < limits.maxHandles else {
            BackendLog.limited("handle-cap", "refusing an open: the guest holds \(handles.count) handles (--max-handles); EMFILE")
            throw Errno(EMFILE)
        }
    }
}
