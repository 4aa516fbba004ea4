// `irqtest`: raises an interrupt vector that nothing handles (the platform's
// `raiseUnhandledInterrupt`); the kernel must log it, acknowledge it and carry on, so
// the sleep that follows (which needs the timer interrupt) still ends.
import Core

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "irqtest",
            summary: "raises an interrupt nobody handles: the kernel logs it, acknowledges it, carries on",
            devices: []) { IRQTest.run($0) }
}

enum IRQTest {
    static func run(_ context: ServiceContext) -> ExitStatus {
        context.ready()
        Log.write("irqtest: raising an interrupt with no handler\n")
        context.raiseUnhandledInterrupt()
        Scheduler.sleep(milliseconds: 20)
        Scheduler.sleep(milliseconds: 20)
        Log.write("irqtest: ok, still running\n")
        return .success
    }
}
