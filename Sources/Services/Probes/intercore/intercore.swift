// `intercore` (Toro's InterCoreComm): CPU 0 sends "ping" to every other CPU through the
// mailboxes; a thread on each CPU answers "pong" from its own CPU. The transcript lists
// the answers by CPU, so it is the same on every run and on both platforms.
import Core

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "intercore",
            summary: "CPU 0 sends ping to every CPU through the mailboxes; each answers pong",
            devices: []) { Intercore.run($0) }
}

enum Intercore {
    static let ping: UInt64 = 0x50494E47            // "PING"
    static let pong: UInt64 = 0x504F4E47            // "PONG"

    static func run(_ context: ServiceContext) -> ExitStatus {
        let cpus = Scheduler.cpuCount
        var listeners: [ThreadHandle] = []
        for cpu in 1..<max(cpus, 1) {
            guard let handle = Scheduler.spawn(on: cpu, {
                let message = Scheduler.receive()
                guard message.payload == ping else { return }
                // The answer carries the CPU the thread really runs on.
                Scheduler.send(to: message.from, pong << 8 | UInt64(Scheduler.currentCPU))
            }) else { return .serviceFailed }
            listeners.append(handle)
        }
        context.ready()
        Log.write("intercore: ")
        Log.decimal(cpus)
        Log.write(cpus == 1 ? " CPU\n" : " CPUs\n")
        for cpu in 1..<max(cpus, 1) {
            Scheduler.send(to: cpu, ping)
            Log.write("intercore: CPU 0 sent ping to CPU ")
            Log.decimal(cpu)
            Log.put(10)
        }
        var answered = [Bool](repeating: false, count: cpus)
        var failures = 0
        for _ in 1..<max(cpus, 1) {
            let reply = Scheduler.receive()
            let claimed = Int(reply.payload & 0xFF)
            if reply.payload >> 8 != pong || claimed != reply.from || claimed == 0 || claimed >= cpus || answered[claimed] {
                failures += 1
            } else {
                answered[claimed] = true
            }
        }
        for handle in listeners { handle.join() }
        for cpu in 1..<max(cpus, 1) {
            Log.write("intercore: CPU ")
            Log.decimal(cpu)
            Log.write(answered[cpu] ? " answered pong\n" : " did not answer\n")
        }
        Log.write(failures == 0 ? "intercore: ok\n" : "intercore: FAILED\n")
        return failures == 0 ? .success : .serviceFailed
    }
}
