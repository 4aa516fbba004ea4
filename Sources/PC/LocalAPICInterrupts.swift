// The half of the interrupt controller MicroVM and Legacy share: each CPU's LAPIC sends
// the wake-up IPIs and the irqtest probe's self-IPI, and the other CPUs are started from
// the MP table with INIT-SIPI (SMP.swift). Each platform adds its own device interrupt
// controller (the IOAPIC on microvm, the 8259 on legacy) and timer.
import Core

public protocol LocalAPICInterrupts: InterruptController {
    var lapic: LocalAPIC { get }
}

extension LocalAPICInterrupts {
    public func wake(cpu: Int) { SMP.wake(cpu, lapic: lapic) }

    public func raiseUnhandledInterrupt() {
        lapic.sendIPI(to: 0, vector: InterruptVector.unhandledTest, toSelf: true)
    }

    /// Installs the interrupt table with this LAPIC for end-of-interrupt and IPIs, after
    /// the platform enabled the BSP's LAPIC.
    public func installInterrupts() {
        Interrupts.lapic = lapic
        Interrupts.install()
    }

    /// Starts the other CPUs the MP table lists (at most the heap's per-CPU limit), each
    /// with its LAPIC enabled; the CPUs running, the bootstrap CPU included.
    public func startOtherCPUs(tscHz: UInt64) -> Int {
        let lapic = self.lapic
        return SMP.startCPUs(lapic: lapic, tscHz: tscHz, limit: KernelHeap.maxCPUs) { _ in
            lapic.enable(virtualWire: false)
        }
    }
}
