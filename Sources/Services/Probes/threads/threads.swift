// `threads`: threads on every CPU that yield and sleep in a fixed pattern. Each CPU's
// events are recorded by that CPU only and printed by CPU 0 afterwards in CPU order, so
// the transcript is deterministic although the CPUs run at the same time.
//
// Per CPU: threads a and b alternate through `yield` (a0 b0 a1 b1 a2 b2); threads
// "slow" (sleeps 30 ms) and "fast" (sleeps 10 ms) record themselves on waking, so fast
// comes before slow.
import Core

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "threads",
            summary: "threads on every CPU yield and sleep in a deterministic pattern",
            devices: []) { Threads.run($0) }
}

final class EventLog {
    var events: [StaticString] = []
    func record(_ event: StaticString) { events.append(event) }
}

enum Threads {
    static func run(_ context: ServiceContext) -> ExitStatus {
        let cpus = Scheduler.cpuCount
        let logs = (0..<cpus).map { _ in EventLog() }
        context.ready()
        var handles: [ThreadHandle] = []
        for cpu in 0..<cpus {
            let log = logs[cpu]
            // A starter thread on the CPU creates the four, so they share its run queue.
            guard let starter = Scheduler.spawn(on: cpu, {
                let a = Scheduler.spawn { for event: StaticString in ["a0", "a1", "a2"] { log.record(event); Scheduler.yield() } }
                let b = Scheduler.spawn { for event: StaticString in ["b0", "b1", "b2"] { log.record(event); Scheduler.yield() } }
                let slow = Scheduler.spawn { Scheduler.sleep(milliseconds: 30); log.record("slow") }
                let fast = Scheduler.spawn { Scheduler.sleep(milliseconds: 10); log.record("fast") }
                for handle in [a, b, slow, fast] { handle?.join() }
            }) else { return .serviceFailed }
            handles.append(starter)
        }
        for handle in handles { handle.join() }
        for cpu in 0..<cpus {
            Log.write("threads: CPU ")
            Log.decimal(cpu)
            Log.write(":")
            for event in logs[cpu].events { Log.put(32); Log.write(event) }
            Log.put(10)
        }
        return .success
    }
}
