// The local APIC (SDM vol. 3, chapter 11), present on both machines: interrupts end
// here (EOI), CPUs wake each other with IPIs, start application processors with
// INIT-SIPI-SIPI, and each CPU's one-shot timer wakes it for sleeps.
//
// Registers are 32-bit, 16-byte apart, in a 4 KiB MMIO page (default 0xFEE00000, mapped
// uncached by Kernel.setUpMemory). `LocalAPIC` is the kernel's chip over that page; the
// host tests run `LocalAPICChip` over a `RegisterRecorder` (Tests/PCTests).
//
// Rules for callers: `enable()` once per CPU before anything else; `sendIPI` waits
// (bounded) for the previous IPI's delivery; the timer is one-shot; every register is
// the calling CPU's own.
import X86Asm
import Core

/// The kernel's local APIC: the chip over its memory-mapped page.
public typealias LocalAPIC = LocalAPICChip<MMIOWindow>

extension LocalAPICChip where Registers == MMIOWindow {
    public init(base: UInt64) { self.init(registers: MMIOWindow(base: base)) }
}

/// The local APIC's registers and the values Toro writes to them (SDM vol. 3, chapter 11).
public enum LocalAPICRegisters {
    /// Register offsets in the APIC page (SDM vol. 3, table 11-1).
    public enum Offset: UInt {
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

    /// Local vector table entries (SDM vol. 3, 11.5.1): vector in bits 0-7, delivery mode
    /// in bits 8-10, trigger mode in bit 15, mask in bit 16, timer mode in bits 17-18.
    public enum LVT {
        public static let masked: UInt32 = 1 << 16
        /// LINT0 in virtual wire mode: the 8259's ExtINT, edge-triggered.
        public static let extINT: UInt32 = 0x700
        /// LINT1 in virtual wire mode: NMI.
        public static let nmi: UInt32 = 0x400
        /// Fixed delivery of `vector`, unmasked; for the timer, one-shot mode.
        public static func fixed(_ vector: UInt8) -> UInt32 { UInt32(vector) }
    }

    /// Spurious-interrupt vector register (SDM vol. 3, 11.9): bit 8 software-enables
    /// the APIC; bits 0-7 are the spurious vector.
    public static func spurious(enabled: Bool, vector: UInt8) -> UInt32 {
        (enabled ? 0x100 : 0) | UInt32(vector)
    }

    /// The vector a spurious interrupt arrives on (Interrupts.swift sends it no EOI).
    public static let spuriousVector: UInt8 = 0xFF

    /// Timer divide configuration 0b0011: divide by 16 (SDM vol. 3, figure 11-10).
    public static let divideBy16: UInt32 = 0x3

    /// Interrupt command register, low word (SDM vol. 3, 11.6.1).
    public enum ICR {
        /// Delivery status (read-only): the previous IPI has not left yet.
        public static let deliveryPending: UInt32 = 1 << 12
        /// Level: assert (edge-triggered IPIs keep trigger mode bit 15 clear).
        public static let assert: UInt32 = 1 << 14
        /// Destination shorthand 01: this CPU.
        public static let toSelf: UInt32 = 1 << 18
    }

    /// Polls of the delivery status before `sendIPI` goes ahead anyway: an APIC that
    /// never clears it costs a bounded wait, not a hang.
    public static let spinLimit = 1_000_000
}

public struct LocalAPICChip<Registers: MMIOAccess> {
    public typealias Register = LocalAPICRegisters.Offset
    typealias LVT = LocalAPICRegisters.LVT
    typealias ICR = LocalAPICRegisters.ICR

    public static var spuriousVector: UInt8 { LocalAPICRegisters.spuriousVector }

    public let registers: Registers

    public init(registers: Registers) { self.registers = registers }

    @inline(__always)
    func read(_ register: Register) -> UInt32 { registers.load32(register.rawValue) }

    @inline(__always)
    func write(_ register: Register, _ value: UInt32) { registers.store32(register.rawValue, value) }

    /// This CPU's APIC ID (bits 24-31 of the ID register).
    public var id: UInt8 { UInt8(truncatingIfNeeded: read(.id) >> 24) }

    /// Software-enables the APIC (spurious-vector register bit 8), accepts every
    /// priority, masks the timer. With `virtualWire`, LINT0 delivers the 8259's ExtINT
    /// and LINT1 NMI (MP spec 3.6.2.2, virtual wire mode: the BSP on the legacy PC).
    public func enable(virtualWire: Bool) {
        write(.taskPriority, 0)
        write(.timerVector, LVT.masked)
        write(.errorVector, LVT.masked)
        write(.lint0, virtualWire ? LVT.extINT : LVT.masked)
        write(.lint1, virtualWire ? LVT.nmi : LVT.masked)
        write(.spuriousVector, LocalAPICRegisters.spurious(enabled: true, vector: Self.spuriousVector))
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
        let shorthand: UInt32 = toSelf ? ICR.toSelf : 0
        write(.interruptCommandLow, shorthand | ICR.assert | delivery.rawValue | UInt32(vector))   // edge
        waitForDelivery()
    }

    func waitForDelivery() {
        var spins = 0
        while read(.interruptCommandLow) & ICR.deliveryPending != 0 && spins < LocalAPICRegisters.spinLimit { arch_pause(); spins += 1 }
    }

    /// One-shot timer: fires `vector` after `ticks` APIC timer ticks (divide by 16).
    public func startOneShot(vector: UInt8, ticks: UInt32) {
        write(.timerDivide, LocalAPICRegisters.divideBy16)
        write(.timerVector, LVT.fixed(vector))
        write(.timerInitialCount, max(ticks, 1))
    }

    /// Fires `vector` `nanoseconds` from now (at least one tick, at most 2^32 - 1),
    /// given the timer's rate at divide-by-16.
    public func startOneShot(vector: UInt8, nanoseconds delta: UInt64, ticksPerSecond rate: UInt64) {
        // ticks = delta * rate / 1e9, split to avoid overflow.
        let ticks = (delta / 1_000_000) * (rate / 1000) + (delta % 1_000_000) * rate / 1_000_000_000
        startOneShot(vector: vector, ticks: UInt32(min(ticks + 1, UInt64(UInt32.max))))
    }

    public func stopTimer() {
        write(.timerInitialCount, 0)
    }

    /// APIC timer ticks per second at divide-by-16, measured against the TSC over 1 ms
    /// (`cycles` reads the TSC); 0 when no TSC time passed.
    public func calibrateTimer(tscHz: UInt64, cycles: () -> UInt64 = { arch_rdtsc() }) -> UInt64 {
        write(.timerDivide, LocalAPICRegisters.divideBy16)
        write(.timerVector, LVT.masked)
        write(.timerInitialCount, 0xFFFF_FFFF)
        let start = cycles()
        let window = tscHz / 1000                   // 1 ms
        while cycles() &- start < window { arch_pause() }
        let elapsedTSC = cycles() &- start
        let remaining = read(.timerCurrentCount)
        write(.timerInitialCount, 0)
        let ticks = UInt64(0xFFFF_FFFF &- remaining)
        return elapsedTSC == 0 ? 0 : ticks * tscHz / elapsedTSC
    }
}
