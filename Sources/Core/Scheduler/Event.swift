// Events: what a thread waits for (I/O completion, a thread finishing, a message).
//
// An event is sticky: once signalled, `wait` returns at once until `reset`. `signal`
// may be called from any CPU, or from an interrupt handler on the waiter's CPU; waiters
// on other CPUs are woken through their mailboxes. Rules for callers: `wait` only from a
// thread (never from an interrupt handler or before the scheduler starts).

public final class Event {
    private var lock = SpinLock()
    private var signalled = false
    private var waiters: [KThread] = []

    public init() {}

    public var isSignalled: Bool {
        lock.lock(); defer { lock.unlock() }
        return signalled
    }

    /// Blocks the calling thread until the event is signalled.
    public func wait() {
        let thread = Scheduler.currentThread
        lock.lock()
        if signalled { lock.unlock(); return }
        thread.state = .waiting
        waiters.append(thread)
        lock.unlock()
        Scheduler.block()
    }

    /// Signals the event and wakes every waiter.
    /// Blocks the calling thread until the event is signalled or the monotonic clock
    /// reaches `deadline` (nanoseconds, `Clock.monotonicNanoseconds()`'s scale). True when
    /// a `signal` woke it (the event may have been reset by another waiter since). The thread waits on the event and on its CPU's timer queue at once,
    /// as `.sleeping` so that a signal takes it off the timer queue; on a timeout it takes
    /// itself off the waiter list. A wake-up message from another CPU that crossed the
    /// timeout can still wake the thread's next wait early: callers re-check and loop.
    @discardableResult
    public func wait(deadline: UInt64) -> Bool {
        let s = Scheduler.here
        let thread = s.current
        lock.lock()
        if signalled { lock.unlock(); return true }
        thread.state = .sleeping
        waiters.append(thread)
        lock.unlock()
        s.timers.insert(thread, deadline: deadline)
        Scheduler.block()
        // Still on the list: nobody signalled, the timer woke us. (Not `signalled`: with
        // several waiters, one that ran first may already have reset the event.)
        lock.lock()
        var timedOut = false
        if let index = waiters.firstIndex(where: { $0 === thread }) {
            waiters.remove(at: index)
            timedOut = true
        }
        if waiters.isEmpty { waiters = [] }
        lock.unlock()
        return !timedOut
    }

    public func signal() {
        lock.lock()
        signalled = true
        let woken = waiters
        waiters.removeAll(keepingCapacity: false)
        lock.unlock()
        for thread in woken { Scheduler.makeReady(thread) }
    }

    public func reset() {
        lock.lock(); signalled = false; lock.unlock()
    }
}
