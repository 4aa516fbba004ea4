// `clock`: prints the wall-clock date and Unix time, then measures `sleep(100 ms)` five
// times against the monotonic clock. The host's boot test times the `sleeping`/`woke`
// lines against its own clock and compares the Unix time with its own.
import Core

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "clock",
            summary: "prints the wall-clock date and measures sleep(100 ms) five times",
            devices: []) { ClockService.run($0) }
}

enum ClockService {
    static func run(_ context: ServiceContext) -> ExitStatus {
        context.ready()
        guard let wall = Clock.wallClockNanoseconds() else {
            Log.write("clock: no wall clock on this platform\n")
            return .serviceFailed
        }
        let seconds = wall / 1_000_000_000
        Log.write("clock: wall clock ")
        if let date = CalendarTime(unixSeconds: seconds) {
            date.write { Log.put($0) }
        }
        Log.write(", unix ")
        Log.decimal(Int(seconds))
        Log.put(10)
        for round in 1...5 {
            Log.write("clock: sleeping 100 ms (")
            Log.decimal(round)
            Log.write(")\n")
            let start = Clock.monotonicNanoseconds()
            Scheduler.sleep(milliseconds: 100)
            let elapsed = Clock.monotonicNanoseconds() - start
            Log.write("clock: woke after ")
            Log.decimal(elapsed / 1_000_000)
            Log.put(46)
            let tenths = (elapsed / 100_000) % 10
            Log.decimal(tenths)
            Log.write(" ms\n")
        }
        return .success
    }
}
