// One CPU's scheduler state. Only its own CPU reads or writes it, except `idleFlag`,
// which other CPUs read to decide whether a message needs a wake-up IPI.
import Synchronization

final class CPUScheduler {
    let cpu: Int
    /// The CPU's boot context, which runs the idle loop.
    let idle: KThread
    var current: KThread
    // Sized once for a busy CPU: a queue that grows later would make the heap's figures
    // depend on the longest queue ever seen.
    var runQueue = RunQueue<KThread>(initialCapacity: 512)
    var timers = TimerQueue<KThread>(reservingCapacity: 512)
    let stacks: StackPool
    /// A thread that returned; its stack is recycled once we are off it.
    var dead: KThread? = nil
    var nextThreadNumber = 1
    var inbox: [(from: Int, payload: UInt64)] = []
    let inboxEvent = Event()
    let idleFlag = Atomic<Bool>(false)

    init(cpu: Int) {
        self.cpu = cpu
        let idle = KThread(id: cpu, cpu: cpu, stack: nil, body: nil, finished: Event())
        idle.state = .running
        self.idle = idle
        self.current = idle
        self.stacks = StackPool(cpu: cpu)
        inbox.reserveCapacity(64)
    }

    /// Creates a thread on this CPU (the caller runs on this CPU).
    func create(body: @escaping () -> Void, handle: ThreadHandle) -> Bool {
        guard let stack = stacks.take() else {
            Log.timestamp()
            Log.write("scheduler: no memory for a thread stack on CPU ")
            Log.decimal(cpu)
            Log.put(10)
            return false
        }
        let thread = KThread(id: nextThreadNumber * KernelHeap.maxCPUs + cpu, cpu: cpu, stack: stack,
                             body: body, finished: handle.finished)
        nextThreadNumber += 1
        thread.rspSlot.pointee = Scheduler.processor.prepareStack(top: stack.top)
        runQueue.push(thread)
        return true
    }

    func ready(_ thread: KThread) {
        switch thread.state {
        case .sleeping:
            _ = timers.remove(thread)
        case .waiting:
            break
        default:
            return
        }
        if thread === current {
            thread.state = .running
        } else {
            thread.state = .ready
            runQueue.push(thread)
        }
    }

    func deliver(from source: Int, _ payload: UInt64) {
        inbox.append((from: source, payload: payload))
        inboxEvent.signal()
    }

    func timerExpired() -> Bool {
        guard let deadline = timers.nextDeadline else { return false }
        return deadline <= Clock.monotonicNanoseconds()
    }

    /// Serves the mailboxes and the expired timers.
    func poll() {
        if let mailboxes = Scheduler.mailboxes {
            while let message = mailboxes.receive(at: cpu) { handle(message) }
        }
        if !timers.isEmpty {
            let now = Clock.monotonicNanoseconds()
            while let thread = timers.popExpired(now: now) {
                thread.state = .ready
                runQueue.push(thread)
            }
        }
    }

    func handle(_ message: Message) {
        switch Scheduler.MessageKind(rawValue: message.kind) {
        case .spawn:
            guard let object = message.object else { return }
            let request = Unmanaged<Scheduler.SpawnRequest>.fromOpaque(object).takeRetainedValue()
            if !create(body: request.body, handle: request.handle) {
                request.handle.finished.signal()   // joiners must not wait forever
            }
        case .wake:
            guard let object = message.object else { return }
            ready(Unmanaged<KThread>.fromOpaque(object).takeRetainedValue())
        case .user:
            deliver(from: message.source, message.payload)
        case nil:
            Log.timestamp()
            Log.write("scheduler: unknown message kind ")
            Log.decimal(UInt64(message.kind))
            Log.put(10)
        }
    }

    /// Switches to the next ready thread (the idle thread when none is ready).
    ///
    /// The frame that sleeps in here must not hold the next thread: it would keep that
    /// thread alive until this one resumes, long after it may have finished (a listener
    /// blocked in accept held its last client's thread until the next client came). So
    /// the choice is made in a helper that returns only the next stack pointer.
    func switchToNext() {
        let save = current.rspSlot
        guard let next = makeNextCurrent() else { return }
        Scheduler.processor.switchContext(save: save, next: next)
        finishSwitch()
    }

    /// Makes the next ready thread (or idle) current; its saved RSP, or nil when the
    /// current thread stays.
    @inline(never)
    func makeNextCurrent() -> UInt64? {
        let previous = current
        let next = runQueue.pop() ?? idle
        if next === previous { previous.state = .running; return nil }
        if previous.state == .running { previous.state = .ready }
        current = next
        next.state = .running
        return next.rspSlot.pointee
    }

    /// Runs on the new context right after a switch: recycles a finished thread's stack.
    func finishSwitch() {
        if let dead, dead !== current {
            if let stack = dead.stack { stacks.give(stack) }
            self.dead = nil
        }
    }
}
