// A lock that puts waiting threads to sleep instead of spinning: for critical sections that
// block (a virtio-fs request waits for the device while holding it).
//
// Rules for callers:
//   * `acquire` only from a thread; never from an interrupt handler.
//   * Not reentrant. `release` by the holder only; ownership passes straight to the
//     longest waiter (first come, first served), so nobody starves.
//   * Uncontended, it never touches the scheduler: host tests, which have no scheduler,
//     can use code that takes it as long as they take it from one thread.

public final class SleepLock {
    private var lock = SpinLock()
    private var held = false
    private var waiters: [KThread] = []

    public init() {}

    public func acquire() {
        lock.lock()
        if !held {
            held = true
            lock.unlock()
            return
        }
        let thread = Scheduler.currentThread
        thread.state = .waiting
        waiters.append(thread)
        lock.unlock()
        Scheduler.block()
        // `release` handed the lock over before waking this thread: `held` is still true.
    }

    public func release() {
        lock.lock()
        guard !waiters.isEmpty else {
            held = false
            lock.unlock()
            return
        }
        let next = waiters.removeFirst()
        // Give the list's storage back once nobody waits, so contention leaves nothing
        // behind in the heap's figures.
        if waiters.isEmpty { waiters = [] }
        lock.unlock()
        Scheduler.makeReady(next)
    }

    /// Runs `body` holding the lock.
    public func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        acquire()
        defer { release() }
        return try body()
    }
}
