// The cooperative, per-CPU scheduler (Toro's model).
//
// Each CPU runs its own threads: a thread stays on the CPU that created it, runs until it
// yields, sleeps, waits or returns, and is never preempted. A CPU with nothing to run
// halts until an interrupt (its timer or a wake-up IPI). CPUs talk only through the
// mailbox matrix: creating a thread on another CPU, waking a thread that belongs to
// another CPU, and service messages are all messages, followed by a wake-up IPI when the
// destination is idle.
//
// Rules for callers: everything here runs with interrupts disabled (they are enabled
// only inside the idle halt); `yield`, `sleep`, `block` and `receive` only from threads.
import Synchronization

public enum Scheduler {
    enum MessageKind: UInt32 {
        /// object: a retained SpawnRequest.
        case spawn = 1
        /// object: a retained KThread that belongs to the destination CPU.
        case wake = 2
        /// payload: a service's word.
        case user = 3
    }

    final class SpawnRequest {
        let body: () -> Void
        let handle: ThreadHandle
        init(body: @escaping () -> Void, handle: ThreadHandle) { self.body = body; self.handle = handle }
    }

    nonisolated(unsafe) static var cpus: [CPUScheduler] = []
    nonisolated(unsafe) static var mailboxes: MailboxMatrix? = nil

    /// CPUs that run a scheduler.
    public static var cpuCount: Int { cpus.count }

    /// The processor and the interrupt controller, handed over by `Kernel.start` (through
    /// `attach`) before any thread exists.
    nonisolated(unsafe) static var attachedProcessor: (any CPUControl)?
    nonisolated(unsafe) static var attachedInterrupts: (any InterruptController)?
    static var processor: any CPUControl { attachedProcessor! }
    static var interrupts: any InterruptController { attachedInterrupts! }

    /// Gives the scheduler the capabilities it runs on. Once, before `prepare`.
    static func attach(cpu: any CPUControl, interrupts: any InterruptController) {
        attachedProcessor = cpu
        attachedInterrupts = interrupts
    }

    static var here: CPUScheduler { cpus[processor.currentCPU()] }

    public static var currentCPU: Int { processor.currentCPU() }

    static var currentThread: KThread { here.current }

    /// The running thread, or nil before the scheduler exists (the exception report).
    static var runningThreadIfAny: KThread? {
        guard let attachedProcessor else { return nil }
        let index = attachedProcessor.currentCPU()
        return index < cpus.count ? cpus[index].current : nil
    }

    /// Creates the per-CPU schedulers and the mailbox matrix for `count` CPUs. Called
    /// once on the bootstrap CPU before any other CPU starts.
    public static func prepare(cpus count: Int) {
        mailboxes = MailboxMatrix(cpus: count)
        cpus = (0..<count).map { CPUScheduler(cpu: $0) }
    }

    /// Shrinks to the CPUs that really started (before any of the rest is used).
    public static func limit(to count: Int) {
        if count < cpus.count { cpus.removeLast(cpus.count - count) }
    }

    // MARK: Threads

    /// Starts `body` as a new thread on `cpu` (default: the calling CPU). Returns nil
    /// when the CPU does not exist or, for the calling CPU, when memory ran out.
    @discardableResult
    public static func spawn(on cpu: Int? = nil, _ body: @escaping () -> Void) -> ThreadHandle? {
        let source = processor.currentCPU()
        let target = cpu ?? source
        guard target >= 0, target < cpus.count else { return nil }
        let handle = ThreadHandle(cpu: target)
        if target == source {
            return cpus[source].create(body: body, handle: handle) ? handle : nil
        }
        let request = Unmanaged.passRetained(SpawnRequest(body: body, handle: handle)).toOpaque()
        post(to: target, Message(kind: MessageKind.spawn.rawValue, source: source, object: request))
        return handle
    }

    /// Lets the other ready threads of this CPU run.
    public static func yield() {
        let s = here
        s.poll()
        guard !s.runQueue.isEmpty else { return }
        s.current.state = .ready
        s.runQueue.push(s.current)
        s.switchToNext()
    }

    /// Sleeps for at least `nanoseconds`.
    public static func sleep(nanoseconds: UInt64) {
        let s = here
        let thread = s.current
        thread.state = .sleeping
        s.timers.insert(thread, deadline: Clock.monotonicNanoseconds() &+ nanoseconds)
        block()
    }

    public static func sleep(milliseconds: UInt64) { sleep(nanoseconds: milliseconds * 1_000_000) }

    /// Switches away from the current thread, which has already been put to sleep or
    /// into a wait list (or returns at once if a wake-up already arrived).
    static func block() {
        let s = here
        s.poll()
        if s.current.state == .running { return }
        s.switchToNext()
    }

    /// Makes `thread` runnable; from another CPU this is a wake-up message.
    static func makeReady(_ thread: KThread) {
        let source = processor.currentCPU()
        if thread.cpu == source {
            cpus[source].ready(thread)
        } else {
            let object = Unmanaged.passRetained(thread).toOpaque()
            post(to: thread.cpu, Message(kind: MessageKind.wake.rawValue, source: source, object: object))
        }
    }

    // MARK: Service messages

    /// Sends `payload` to `cpu`'s inbox (a thread there takes it with `receive`).
    public static func send(to cpu: Int, _ payload: UInt64) {
        guard cpu >= 0, cpu < cpus.count else { return }
        let source = processor.currentCPU()
        if cpu == source {
            cpus[cpu].deliver(from: source, payload)
        } else {
            post(to: cpu, Message(kind: MessageKind.user.rawValue, source: source, payload: payload))
        }
    }

    /// Blocks until a message arrives in this CPU's inbox; returns its sender and payload.
    public static func receive() -> (from: Int, payload: UInt64) {
        let s = here
        while true {
            s.poll()
            if !s.inbox.isEmpty { return s.inbox.removeFirst() }
            s.inboxEvent.reset()
            s.inboxEvent.wait()
        }
    }

    /// Puts a message in the matrix and wakes the destination if it is idle. When the
    /// ring is full, serves this CPU's own mailboxes while waiting, so two CPUs filling
    /// each other's rings cannot deadlock.
    static func post(to target: Int, _ message: Message) {
        guard let mailboxes else { return }
        while !mailboxes.send(from: message.source, to: target, message) {
            cpus[message.source].poll()
            interrupts.wake(cpu: target)
        }
        // The ring's publication (a release store) must be ordered before reading the
        // idle flag; x86 reorders a store with a later load, so a full fence.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if cpus[target].idleFlag.load(ordering: .sequentiallyConsistent) {
            interrupts.wake(cpu: target)
        }
    }

    // MARK: CPU loops

    /// Turns the calling CPU's boot context into its idle thread and schedules forever.
    public static func runIdleLoop() -> Never {
        let s = here
        while true {
            s.poll()
            if !s.runQueue.isEmpty {
                s.switchToNext()
                continue
            }
            s.idleFlag.store(true, ordering: .sequentiallyConsistent)
            if mailboxes?.pending(at: s.cpu) ?? false || s.timerExpired() {
                s.idleFlag.store(false, ordering: .sequentiallyConsistent)
                continue
            }
            if let deadline = s.timers.nextDeadline { interrupts.armWakeup(deadline: deadline) }
            processor.waitForInterrupt()
            s.idleFlag.store(false, ordering: .sequentiallyConsistent)
        }
    }

    /// The first thing a new thread runs (from Arch's trampoline).
    ///
    /// This frame never returns and is never resumed after the last switch, so it must hold
    /// no strong reference then: whatever it still held would never be released. The
    /// work is done in two helpers that return before the switch; what crosses into this
    /// frame is plain words.
    static func threadStart() -> Never {
        runCurrentBody()
        let (save, next) = leaveFinishedThread()
        processor.switchContext(save: save, next: next)
        panic("a finished thread was resumed")
    }

    @inline(never)
    static func runCurrentBody() {
        let s = here
        s.finishSwitch()
        let thread = s.current
        let body = thread.body
        thread.body = nil
        body?()
        thread.state = .finished
        thread.finished.signal()
        s.dead = thread
    }

    /// Makes the next thread current; returns where to save the dead thread's RSP (its
    /// own slot, alive until the next context recycles it) and the next thread's RSP.
    @inline(never)
    static func leaveFinishedThread() -> (UnsafeMutablePointer<UInt64>, UInt64) {
        let s = here
        s.poll()
        let next = s.runQueue.pop() ?? s.idle
        let save = s.current.rspSlot
        s.current = next
        next.state = .running
        return (save, next.rspSlot.pointee)
    }
}

#if hasFeature(Embedded)
@_cdecl("toro_thread_start")
func toroThreadStart() {
    Scheduler.threadStart()
}
#endif
