// The local APIC (SDM vol. 3, chapter 11), present on both machines: interrupts end
// here (EOI), CPUs wake each other with IPIs, start application processors with
// INIT-SIPI-SIPI, and each CPU's one-shot timer wakes it for sleeps.
//
// Registers are 32-bit, 16-byte apart, in a 4 KiB MMIO page (default 0xFEE00000, mapped
// uncached by Kernel.setUpMemory). Rules for callers: `enable()` once per CPU before
// anything else; `sendIPI` waits for the previous IPI's delivery; the timer is one-shot.
import _Volatile
import X86Asm
import Core

public struct LocalAPIC {
    /// Register offsets (SDM vol. 3, table 11-1).
    enum Register: UInt {
        case id = 0x20
        case taskPriority = 0x80
        case endOfInterrupt = 0xB0
        case spuriousVector = 0xF0
        case interruptCommandLow = 0x300
        case interruptCommandHigh = 0x310
        case timerVector = 0x320
        case lint0 = 0x350
        case lint1 = 0x360
        case errorVector = 0x370
        case timerInitialCount = 0x380
        case timerCurrentCount = 0x390
        case timerDivide = 0x3E0
    }

    public static let spuriousVector: UInt8 = 0xFF

    let base: UInt

    public init(base: UInt64) { self.base = UInt(base) }

    func read(_ register: Register) -> UInt32 {
        VolatileMappedRegister<UInt32>(unsafeBitPattern: base + register.rawValue).load()
    }

    func write(_ register: Register, _ value: UInt32) {
        VolatileMappedRegister<UInt32>(unsafeBitPattern: base + register.rawValue).store(value)
    }

    /// This CPU's APIC ID (bits 24-31 of the ID register).
    public var id: UInt8 { UInt8(truncatingIfNeeded: read(.id) >> 24) }

    /// Software-enables the APIC (spurious-vector register bit 8), accepts every
    /// priority, masks the timer. With `virtualWire`, LINT0 delivers the 8259's ExtINT
    /// and LINT1 NMI (MP spec 3.6.2.2, virtual wire mode: the BSP on the legacy PC).
    public func enable(virtualWire: Bool) {
        write(.taskPriority, 0)
        write(.timerVector, 1 << 16)
        write(.errorVector, 1 << 16)
        if virtualWire {
            write(.lint0, 0x700)          // ExtINT, edge
            write(.lint1, 0x400)          // NMI
        } else {
            write(.lint0, 1 << 16)
            write(.lint1, 1 << 16)
        }
        write(.spuriousVector, 0x100 | UInt32(LocalAPIC.spuriousVector))
    }

    public func endOfInterrupt() { write(.endOfInterrupt, 0) }

    /// Delivery modes for `sendIPI` (SDM vol. 3, 11.6.1).
    public enum Delivery: UInt32 {
        case fixed = 0x000
        case initAssert = 0x500
        case startup = 0x600
    }

    /// Sends an inter-processor interrupt to `destination` (an APIC ID), or to this CPU
    /// with `toSelf`. Waits (bounded) for the previous one to leave.
    public func sendIPI(to destination: UInt8, vector: UInt8, delivery: Delivery = .fixed, toSelf: Bool = false) {
        waitForDelivery()
        write(.interruptCommandHigh, UInt32(destination) << 24)
        let level: UInt32 = 0x4000          // assert; edge-triggered
        let shorthand: UInt32 = toSelf ? 0x4_0000 : 0
        write(.interruptCommandLow, shorthand | level | delivery.rawValue | UInt32(vector))
        waitForDelivery()
    }

    func waitForDelivery() {
        var spins = 0
        while read(.interruptCommandLow) & (1 << 12) != 0 && spins < 1_000_000 { arch_pause(); spins += 1 }
    }

    /// One-shot timer: fires `vector` after `ticks` APIC timer ticks (divide by 16).
    public func startOneShot(vector: UInt8, ticks: UInt32) {
        write(.timerDivide, 0x3)
        write(.timerVector, UInt32(vector))
        write(.timerInitialCount, max(ticks, 1))
    }

    public func stopTimer() {
        write(.timerInitialCount, 0)
    }

    /// APIC timer ticks per second at divide-by-16, measured against the TSC.
    public func calibrateTimer(tscHz: UInt64) -> UInt64 {
        write(.timerDivide, 0x3)
        write(.timerVector, 1 << 16)
        write(.timerInitialCount, 0xFFFF_FFFF)
        let start = arch_rdtsc()
        let window = tscHz / 1000                   // 1 ms
        while arch_rdtsc() &- start < window { arch_pause() }
        let elapsedTSC = arch_rdtsc() &- start
        let remaining = read(.timerCurrentCount)
        write(.timerInitialCount, 0)
        let ticks = UInt64(0xFFFF_FFFF &- remaining)
        return elapsedTSC == 0 ? 0 : ticks * tscHz / elapsedTSC
    }
}
