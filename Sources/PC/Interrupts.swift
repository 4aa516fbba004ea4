// Interrupt vectors both platforms use, and the dispatch from the exception stubs.
//
// Vectors: 0-31 CPU exceptions (Core/Exception.swift); 0x20 + n device IRQ n (through
// the IOAPIC on microvm, the 8259 on legacy); 0xF0 the LAPIC timer; 0xF1 the wake-up IPI;
// 0xF8 a vector nothing handles (the `irqtest` service sends it to itself); 0xFF the
// LAPIC's spurious vector. Handlers run on the interrupted CPU with interrupts off and do
// only bounded work: acknowledge, and make a thread ready.
import X86Asm
import Core

public enum InterruptVector {
    public static let deviceBase: UInt8 = 0x20
    public static let timer: UInt8 = 0xF0
    public static let wakeUp: UInt8 = 0xF1
    public static let unhandledTest: UInt8 = 0xF8
    public static let spurious: UInt8 = LocalAPIC.spuriousVector
}

public enum Interrupts {
    /// Device IRQ handlers by IRQ number, installed by drivers.
    nonisolated(unsafe) public static var deviceHandlers: [(() -> Void)?] = Array(repeating: nil, count: 24)
    /// How a device IRQ is acknowledged (IOAPIC via LAPIC EOI, or the 8259).
    nonisolated(unsafe) public static var acknowledgeDevice: ((Int) -> Void)? = nil
    nonisolated(unsafe) public static var lapic: LocalAPIC? = nil

    /// Installs the dispatcher into Core's exception path.
    public static func install() {
        ExceptionReport.interruptHandler = { vector in Interrupts.dispatch(vector) }
        ExceptionReport.acknowledgeUnhandled = { vector in Interrupts.acknowledge(vector) }
    }

    static func dispatch(_ vector: UInt64) -> Bool {
        switch vector {
        case UInt64(InterruptVector.timer), UInt64(InterruptVector.wakeUp):
            lapic?.endOfInterrupt()
            return true
        case UInt64(InterruptVector.spurious):
            return true                     // no EOI for the spurious vector (SDM 11.9)
        case UInt64(InterruptVector.deviceBase)..<UInt64(InterruptVector.deviceBase) + 24:
            let irq = Int(vector) - Int(InterruptVector.deviceBase)
            guard let handler = deviceHandlers[irq] else { return false }
            handler()
            acknowledgeDevice?(irq)
            return true
        default:
            return false
        }
    }

    /// Acknowledges a vector nobody handles so the controller keeps delivering.
    static func acknowledge(_ vector: UInt64) {
        let device = UInt64(InterruptVector.deviceBase)
        if vector >= device && vector < device + 24 {
            acknowledgeDevice?(Int(vector - device))
        } else if vector != UInt64(InterruptVector.spurious) {
            lapic?.endOfInterrupt()
        }
    }
}
