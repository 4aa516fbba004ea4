// The local APIC over a recording register bus: enable in both modes, IPIs, the one-shot
// timer and its calibration, each as the exact list of register accesses (SDM vol. 3,
// chapter 11), and an APIC whose delivery status never clears.
import XCTest
import PC
import TestSupport

final class LocalAPICTests: XCTestCase {
    let bus = RegisterRecorder()
    lazy var lapic = LocalAPICChip(registers: bus)

    func testEnableOnAnApplicationProcessorMasksEveryLocalInterrupt() {
        lapic.enable(virtualWire: false)
        XCTAssertEqual(bus.trace, [
            .store32(0x080, 0),                 // task priority: accept everything
            .store32(0x320, 0x1_0000),          // timer LVT masked
            .store32(0x370, 0x1_0000),          // error LVT masked
            .store32(0x350, 0x1_0000),          // LINT0 masked
            .store32(0x360, 0x1_0000),          // LINT1 masked
            .store32(0x0F0, 0x1FF),             // software enable, spurious vector 0xFF: last
        ])
    }

    func testEnableInVirtualWireModePassesThe8259AndNMI() {
        lapic.enable(virtualWire: true)
        XCTAssertEqual(bus.trace, [
            .store32(0x080, 0),
            .store32(0x320, 0x1_0000),
            .store32(0x370, 0x1_0000),
            .store32(0x350, 0x700),             // LINT0: ExtINT (MP spec 3.6.2.2)
            .store32(0x360, 0x400),             // LINT1: NMI
            .store32(0x0F0, 0x1FF),
        ])
        XCTAssertEqual(LocalAPIC.spuriousVector, 0xFF)
    }

    func testIDAndEndOfInterrupt() {
        bus.script(.offset(0x20), [0x0300_0000])
        XCTAssertEqual(lapic.id, 3)
        lapic.endOfInterrupt()
        XCTAssertEqual(bus.trace, [.load32(0x020, 0x0300_0000), .store32(0x0B0, 0)])
    }

    func testInterProcessorInterrupts() {
        lapic.sendIPI(to: 2, vector: 0, delivery: .initAssert)
        lapic.sendIPI(to: 2, vector: 0x08, delivery: .startup)
        lapic.sendIPI(to: 0, vector: 0xF8, toSelf: true)
        XCTAssertEqual(bus.trace, [
            .load32(0x300, 0),                  // previous IPI gone
            .store32(0x310, 0x0200_0000),       // destination APIC ID 2
            .store32(0x300, 0x4500),            // assert, INIT
            .load32(0x300, 0),                  // delivered
            .load32(0x300, 0),
            .store32(0x310, 0x0200_0000),
            .store32(0x300, 0x4608),            // assert, Startup at page 0x8000
            .load32(0x300, 0),
            .load32(0x300, 0),
            .store32(0x310, 0),
            .store32(0x300, 0x4_40F8),          // shorthand self, assert, fixed 0xF8
            .load32(0x300, 0),
        ])
    }

    func testAStuckDeliveryStatusCostsABoundedWait() {
        bus.script(.offset(0x300), [0x1000])    // delivery pending, forever
        bus.isRecording = false
        lapic.sendIPI(to: 1, vector: 0xF1)
        let polls = LocalAPICRegisters.spinLimit + 1
        XCTAssertEqual(bus.accessCount, 2 * polls + 2)   // two bounded waits around the two writes
    }

    func testOneShotTimer() {
        lapic.startOneShot(vector: 0xF0, nanoseconds: 1_500_000, ticksPerSecond: 62_500_000)
        XCTAssertEqual(bus.trace, [
            .store32(0x3E0, 0x3),               // divide by 16
            .store32(0x320, 0xF0),              // fixed vector 0xF0, one-shot, unmasked
            .store32(0x380, 93_751),            // 1.5 ms at 62.5 MHz, plus one tick
        ])
    }

    func testOneShotTimerBounds() {
        lapic.startOneShot(vector: 0xF0, nanoseconds: 0, ticksPerSecond: 62_500_000)
        lapic.startOneShot(vector: 0xF0, nanoseconds: 1 << 62, ticksPerSecond: 62_500_000)
        lapic.startOneShot(vector: 0xF0, ticks: 0)
        lapic.stopTimer()
        let counts = bus.trace.filter { if case .store32(0x380, _) = $0 { true } else { false } }
        XCTAssertEqual(counts, [
            .store32(0x380, 1),                 // a deadline in the past: at once
            .store32(0x380, UInt32.max),        // far away: as far as the counter goes
            .store32(0x380, 1),                 // 0 would stop the timer: one tick instead
            .store32(0x380, 0),                 // stop
        ])
    }

    func testCalibrationAgainstTheTSC() {
        bus.script(.offset(0x390), [0xFFFF_FFFF - 62_500])     // 62,500 ticks went by
        var tsc: [UInt64] = [5_000, 1_005_000, 1_005_000]       // start, loop check, end
        let rate = lapic.calibrateTimer(tscHz: 1_000_000_000) { tsc.removeFirst() }
        XCTAssertEqual(rate, 62_500_000)
        XCTAssertEqual(bus.trace, [
            .store32(0x3E0, 0x3),
            .store32(0x320, 0x1_0000),          // masked: counting, no interrupt
            .store32(0x380, 0xFFFF_FFFF),
            .load32(0x390, 0xFFFF_FFFF - 62_500),
            .store32(0x380, 0),                 // stopped again
        ])
    }

    func testCalibrationWithATSCThatDoesNotMove() {
        let rate = lapic.calibrateTimer(tscHz: 0) { 7 }
        XCTAssertEqual(rate, 0)
    }
}
