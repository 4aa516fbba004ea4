// The 8254's channel 0 over a recording port bus: the TSC measurement's programming and
// latched reads, the periodic tick and its stop, as exact port accesses (Intel 82C54
// datasheet), the count wrapping through 0, and a counter that never moves.
import XCTest
import PC
import TestSupport

final class PIT8254Tests: XCTestCase {
    let bus = RegisterRecorder()
    lazy var pit = PIT8254Chip(ports: bus)

    /// The bytes a latched read of `count` returns on port 0x40: low, then high.
    func bytes(_ counts: [UInt16]) -> [UInt32] {
        counts.flatMap { [UInt32($0 & 0xFF), UInt32($0 >> 8)] }
    }

    func latchedRead(_ count: UInt16) -> [RegisterRecorder.Access] {
        [.out8(0x43, 0x00), .in8(0x40, UInt8(count & 0xFF)), .in8(0x40, UInt8(count >> 8))]
    }

    func testMeasuringTheTSC() {
        bus.script(.port(0x40), bytes([0xFFFF, 0xFFFF - 3, 0xFFFF - 603, 0xFFFF - 1203]))
        var tsc: [UInt64] = [0, 10_000, 1_210_000, 10_000 + 2_400_000]
        let hz = pit.measureTSC(pitTicks: 1193) { tsc.removeFirst() }
        XCTAssertEqual(hz, 2_400_000 * 1_193_182 / 1200)        // 2.386 GHz
        XCTAssertEqual(bus.trace,
            [.out8(0x43, 0x34), .out8(0x40, 0xFF), .out8(0x40, 0xFF)]   // mode 2, count 65535
            + latchedRead(0xFFFF)                                       // warm-up, thrown away
            + latchedRead(0xFFFF - 3)                                   // the start
            + latchedRead(0xFFFF - 603)                                 // 600 clocks: not yet 1193
            + latchedRead(0xFFFF - 1203))                               // 1200: done
        XCTAssertTrue(tsc.isEmpty)                              // one TSC read per sample
        XCTAssertEqual(pit.divisor, 0)                          // the tick is not running
    }

    func testTheCountWrapsThroughZero() {
        bus.script(.port(0x40), bytes([0x0100, 0x0100, 0xFF00]))    // 0x100 down past 0: 0x200 clocks (16-bit)
        var tsc: [UInt64] = [0, 0, 1_000_000]
        let hz = pit.measureTSC(pitTicks: 0x200) { tsc.removeFirst() }
        XCTAssertEqual(hz, 1_000_000 * 1_193_182 / 0x200)
    }

    func testACounterThatNeverMovesGivesUpAfterTwoMillionReads() {
        bus.script(.port(0x40), [0x34])                         // every read: 0x3434
        bus.isRecording = false
        var tscReads = 0
        let hz = pit.measureTSC(pitTicks: 1193) { tscReads += 1; return 0 }
        XCTAssertNil(hz)
        // Programming (3), the warm-up and start samples (3 each), then measured reads 0
        // through 2,000,001 (3 each): the C loop's bound (`reads > 2000000 && elapsed == 0`).
        XCTAssertEqual(bus.accessCount, 3 + 2 * 3 + 3 * 2_000_002)
        XCTAssertEqual(tscReads, 2 + 2_000_002)
    }

    func testNoTicksToMeasureIsNoMeasurement() {
        XCTAssertNil(pit.measureTSC(pitTicks: 0) { 0 })
    }

    func testPeriodicTickAndStop() {
        XCTAssertEqual(pit.startPeriodic(hz: 1000), 1193)
        XCTAssertEqual(pit.frequencyHz, 1000)
        XCTAssertTrue(pit.isRunning)
        pit.stop()
        XCTAssertFalse(pit.isRunning)
        XCTAssertEqual(bus.trace, [
            .out8(0x43, 0x34), .out8(0x40, 0xA9), .out8(0x40, 0x04),   // mode 2, divisor 1193
            .out8(0x43, 0x30), .out8(0x40, 0), .out8(0x40, 0),         // mode 0, count 0
        ])
    }

    func testDivisorsAndTime() {
        XCTAssertEqual(PIT8254.divisor(hz: 0), 65_535)
        XCTAssertEqual(PIT8254.divisor(hz: 1), 65_535)
        XCTAssertEqual(PIT8254.divisor(hz: 1_000_000), 2)       // 1 is illegal in mode 2
        XCTAssertEqual(PIT8254.divisor(hz: 100), 11_932)
        pit.startPeriodic(hz: 1000)
        XCTAssertEqual(pit.nanosecondsPerTick, 999_847)
        // 1193182 ticks of 1193 clocks are exactly 1193 s: no per-tick rounding adds up.
        XCTAssertEqual(pit.nanoseconds(ticks: 1_193_182), 1_193_000_000_000)
    }
}
