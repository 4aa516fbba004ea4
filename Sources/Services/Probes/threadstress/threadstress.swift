// `threadstress`: creates and finishes 100,000 threads (option `threads=N`) across every
// CPU, in rounds of `batch` threads per CPU that CPU 0 spawns remotely and joins, then
// checks that heap statistics are back where they were. The baseline is taken after the
// first round, once run queues and stack caches have reached their working size.
import Core

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "threadstress",
            summary: "creates and finishes 100,000 threads across all CPUs; heap returns to baseline",
            devices: []) { ThreadStress.run($0) }
}

import Synchronization

enum ThreadStress {
    static let finished = Atomic<Int>(0)

    static func run(_ context: ServiceContext) -> ExitStatus {
        let total = (try? context.commandLine.number("threads")) ?? 100_000
        let cpus = Scheduler.cpuCount
        let batch = 100
        let perRound = batch * cpus
        let rounds = max(1, (total + perRound - 1) / perRound)
        context.ready()
        Log.write("threadstress: ")
        Log.decimal(rounds * perRound)
        Log.write(" threads on ")
        Log.decimal(cpus)
        Log.write(cpus == 1 ? " CPU\n" : " CPUs\n")
        var baseline = HeapStatistics()
        var handles: [ThreadHandle] = []
        handles.reserveCapacity(perRound)
        for round in 0..<rounds {
            for cpu in 0..<cpus {
                for _ in 0..<batch {
                    guard let handle = Scheduler.spawn(on: cpu, { _ = finished.add(1, ordering: .relaxed) }) else {
                        Log.write("threadstress: FAILED to spawn\n")
                        return .serviceFailed
                    }
                    handles.append(handle)
                }
            }
            for handle in handles { handle.join() }
            handles.removeAll(keepingCapacity: true)
            settle()
            if round == 0 { baseline = KernelMemory.statistics() }
        }
        let after = KernelMemory.statistics()
        let count = finished.load(ordering: .relaxed)
        Log.write("threadstress: ")
        Log.decimal(count)
        Log.write(" threads finished\n")
        report("threadstress: heap baseline:", baseline)
        report("threadstress: heap after:", after)
        let same = after.bytesInUse == baseline.bytesInUse && after.liveAllocations == baseline.liveAllocations
        Log.write(same ? "threadstress: heap back to baseline\n" : "threadstress: FAILED heap did not return to baseline\n")
        return same && count == rounds * perRound ? .success : .serviceFailed
    }

    /// Lets every CPU run its reaping and drain frees sent back from other CPUs.
    static func settle() {
        for _ in 0..<3 {
            var helpers: [ThreadHandle] = []
            for cpu in 0..<Scheduler.cpuCount {
                if let h = Scheduler.spawn(on: cpu, { KernelMemory.drainRemoteFrees() }) { helpers.append(h) }
            }
            for h in helpers { h.join() }
        }
        // A joined thread has signalled its end but its CPU may not have switched away
        // from it yet (the stack and thread object are recycled at that switch): give every
        // CPU a moment to do so before the figures are read.
        Scheduler.sleep(milliseconds: 5)
    }

    static func report(_ label: StaticString, _ s: HeapStatistics) {
        Kernel.logHeap(label, s)
        Log.put(10)
    }
}
