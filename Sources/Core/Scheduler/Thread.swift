// Kernel threads: a stack, saved registers, and a state the CPU's scheduler tracks.
//
// A thread belongs to the CPU that created it for its whole life (Toro's rule): only
// that CPU's scheduler switches to it, queues it or frees its stack. Other CPUs reach it
// only through mailbox messages (a wake-up), never by touching it directly.

public final class KThread {
    public enum State { case ready, running, sleeping, waiting, finished }

    public let id: Int
    public let cpu: Int
    /// The saved stack pointer while the thread is not running. A slot of its own so that
    /// the context switch writes to a stable address.
    let rspSlot: UnsafeMutablePointer<UInt64>
    let stack: ThreadStack?
    var body: (() -> Void)?
    var state: State = .ready
    /// Signalled when the thread returns from its body (join).
    let finished: Event

    init(id: Int, cpu: Int, stack: ThreadStack?, body: (() -> Void)?, finished: Event) {
        self.id = id
        self.cpu = cpu
        self.stack = stack
        self.body = body
        self.finished = finished
        rspSlot = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        rspSlot.initialize(to: 0)
    }

    deinit { rspSlot.deallocate() }
}

/// What `spawn` returns: lets any CPU wait for the thread to finish.
public final class ThreadHandle {
    public let cpu: Int
    public let finished = Event()
    init(cpu: Int) { self.cpu = cpu }

    /// Blocks the calling thread until the spawned thread has returned.
    public func join() { finished.wait() }
}
