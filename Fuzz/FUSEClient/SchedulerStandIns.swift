// Stand-ins for the two scheduler symbols `SleepLock` (Sources/Core/Scheduler/SleepLock.swift)
// names on its contended path: `KThread` (with `state = .waiting`) and `Scheduler`
// (`currentThread`, `block()`, `makeReady(_:)`).
//
// Why not the real files: Scheduler.swift pulls in CPUScheduler, ThreadStack, the kernel heap,
// page tables and the boot memory map, none of which this fuzzer exercises. libFuzzer runs
// the target on one thread, so every `SleepLock.acquire` here is uncontended and returns
// before touching the scheduler: these are never called, and trap if they ever are.

final class KThread {
    enum State { case ready, running, sleeping, waiting, finished }
    var state: State = .ready
}

enum Scheduler {
    static var currentThread: KThread { preconditionFailure("fuzz: SleepLock contended") }
    static func block() { preconditionFailure("fuzz: SleepLock contended") }
    static func makeReady(_ thread: KThread) { preconditionFailure("fuzz: SleepLock contended") }
}

/// Stands in for Core's MemoryBudget (Sources/Core/Memory), whose real file needs the page
/// allocator: the input decides whether admission refuses everything.
enum MemoryBudget {
    nonisolated(unsafe) static var refuses = false
    static func admit(_ bytes: Int, for what: StaticString) -> Bool { !refuses }
}
