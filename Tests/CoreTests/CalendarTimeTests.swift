import XCTest
@testable import Core

/// A scripted MC146818: register A's UIP bit follows `uipReads`, and the time registers
/// come from `snapshots`, advancing to the next one each time the seconds register is read.
final class FakeRTC {
    var snapshots: [[UInt8: UInt8]]
    var uipReads: Int
    var statusAReads = 0
    var snapshotIndex = -1
    /// Full reads of the time registers so far.
    var timeReads = 0

    init(snapshots: [[UInt8: UInt8]], uipReads: Int = 0) {
        self.snapshots = snapshots
        self.uipReads = uipReads
    }

    func register(_ index: UInt8) -> UInt8 {
        if index == RTCRegisters.Index.statusA {
            statusAReads += 1
            return statusAReads <= uipReads ? 0xA6 : 0x26
        }
        if index == RTCRegisters.Index.seconds {
            timeReads += 1
            snapshotIndex = min(snapshotIndex + 1, snapshots.count - 1)
        }
        return snapshots[max(snapshotIndex, 0)][index] ?? 0xFF
    }
}

final class CalendarTimeTests: XCTestCase {
    let bcd24: UInt8 = 0x02      // status B: BCD, 24-hour
    let bcd12: UInt8 = 0x00      // status B: BCD, 12-hour
    let binary24: UInt8 = 0x06
    let binary12: UInt8 = 0x04

    func time(_ y: Int, _ mo: Int, _ d: Int, _ h: Int = 0, _ mi: Int = 0, _ s: Int = 0) -> CalendarTime {
        CalendarTime(year: y, month: mo, day: d, hour: h, minute: mi, second: s)!
    }

    func rtc(_ s: UInt8, _ mi: UInt8, _ h: UInt8, _ d: UInt8, _ mo: UInt8, _ y: UInt8,
             century: UInt8? = nil, b: UInt8) -> CalendarTime? {
        CalendarTime.fromRTC(RTCRegisters(seconds: s, minutes: mi, hours: h, dayOfMonth: d,
                                          month: mo, year: y, century: century, statusB: b))
    }

    // MARK: validation

    func testValidation() {
        XCTAssertNotNil(CalendarTime(year: 2024, month: 2, day: 29))
        XCTAssertNil(CalendarTime(year: 2023, month: 2, day: 29))
        XCTAssertNotNil(CalendarTime(year: 2000, month: 2, day: 29))    // divisible by 400
        XCTAssertNil(CalendarTime(year: 1900, month: 2, day: 29))       // divisible by 100 only
        XCTAssertNil(CalendarTime(year: 2024, month: 4, day: 31))
        XCTAssertNotNil(CalendarTime(year: 2024, month: 12, day: 31, hour: 23, minute: 59, second: 59))
        XCTAssertNil(CalendarTime(year: 2024, month: 13, day: 1))
        XCTAssertNil(CalendarTime(year: 2024, month: 0, day: 1))
        XCTAssertNil(CalendarTime(year: 2024, month: 1, day: 0))
        XCTAssertNil(CalendarTime(year: 2024, month: 1, day: 1, hour: 24))
        XCTAssertNil(CalendarTime(year: 2024, month: 1, day: 1, minute: 60))
        XCTAssertNil(CalendarTime(year: 2024, month: 1, day: 1, second: 60))
        XCTAssertNil(CalendarTime(year: 2024, month: 1, day: 1, hour: -1))
        XCTAssertNil(CalendarTime(year: 10_000, month: 1, day: 1))
        XCTAssertNil(CalendarTime(year: -1, month: 1, day: 1))
    }

    // MARK: Unix seconds

    func testKnownUnixSeconds() {
        XCTAssertEqual(time(1970, 1, 1).unixSeconds, 0)
        XCTAssertEqual(time(2000, 2, 29).unixSeconds, 951_782_400)
        XCTAssertEqual(time(2000, 3, 1).unixSeconds, 951_868_800)
        XCTAssertEqual(time(2038, 1, 19, 3, 14, 8).unixSeconds, 1 << 31)
        XCTAssertEqual(time(2026, 11, 25).unixSeconds, 1_795_564_800)
        XCTAssertEqual(time(1969, 12, 31, 23, 59, 59).unixSeconds, -1)
        XCTAssertEqual(time(2100, 3, 1).unixSeconds, 4_107_542_400)    // 2100 is not leap
        XCTAssertEqual(CalendarTime(unixSeconds: 0), time(1970, 1, 1))
        XCTAssertEqual(CalendarTime(unixSeconds: 1 << 31), time(2038, 1, 19, 3, 14, 8))
        XCTAssertEqual(CalendarTime(unixSeconds: 951_782_400 + 86_399), time(2000, 2, 29, 23, 59, 59))
        XCTAssertEqual(CalendarTime(unixSeconds: -1), time(1969, 12, 31, 23, 59, 59))
        XCTAssertEqual(CalendarTime(unixSeconds: 1_795_564_800 + 3_723), time(2026, 11, 25, 1, 2, 3))
    }

    func testRangeEnds() {
        let range = CalendarTime.unixSecondsRange
        XCTAssertEqual(time(0, 1, 1).unixSeconds, range.lowerBound)
        XCTAssertEqual(time(9999, 12, 31, 23, 59, 59).unixSeconds, range.upperBound)
        XCTAssertEqual(CalendarTime(unixSeconds: range.lowerBound), time(0, 1, 1))
        XCTAssertEqual(CalendarTime(unixSeconds: range.upperBound), time(9999, 12, 31, 23, 59, 59))
        XCTAssertNil(CalendarTime(unixSeconds: range.lowerBound - 1))
        XCTAssertNil(CalendarTime(unixSeconds: range.upperBound + 1))
        XCTAssertNil(CalendarTime(unixSeconds: .min))
        XCTAssertNil(CalendarTime(unixSeconds: .max))
    }

    func testRandomRoundTrips1970To2199() {
        var generator = SystemRandomNumberGenerator()
        let start = time(1970, 1, 1).unixSeconds, end = time(2200, 1, 1).unixSeconds - 1
        for _ in 0..<20_000 {
            let seconds = Int64.random(in: start...end, using: &generator)
            guard let t = CalendarTime(unixSeconds: seconds) else { return XCTFail("\(seconds) rejected") }
            XCTAssertEqual(t.unixSeconds, seconds)
            XCTAssertTrue((1970...2199).contains(t.year))
            // Rebuilding from the fields validates them.
            XCTAssertEqual(CalendarTime(year: t.year, month: t.month, day: t.day,
                                        hour: t.hour, minute: t.minute, second: t.second), t)
        }
    }

    /// Every day from 1970 to 2199, walked by hand, against the closed-form arithmetic.
    func testEveryDayIsConsecutive() {
        var days: Int64 = 0
        for year in 1970...2199 {
            for month in 1...12 {
                for day in 1...CalendarTime.daysInMonth(month, year: year) {
                    let t = time(year, month, day, 12)
                    XCTAssertEqual(t.unixSeconds, days * 86_400 + 43_200)
                    XCTAssertEqual(CalendarTime(unixSeconds: days * 86_400 + 43_200), t)
                    days += 1
                }
            }
        }
        XCTAssertEqual(days, time(2200, 1, 1).unixSeconds / 86_400)
    }

    // MARK: formatting

    func testFormatting() {
        XCTAssertEqual(String(decoding: time(2026, 11, 25, 7, 5, 9).formatted, as: UTF8.self),
                       "2026-11-25 07:05:09 UTC")
        XCTAssertEqual(String(decoding: time(1970, 1, 1).formatted, as: UTF8.self), "1970-01-01 00:00:00 UTC")
        XCTAssertEqual(String(decoding: time(9, 12, 31, 23, 59, 59).formatted, as: UTF8.self),
                       "0009-12-31 23:59:59 UTC")
        var sink: [UInt8] = []
        time(2000, 2, 29, 12, 34, 56).write { sink.append($0) }
        XCTAssertEqual(String(decoding: sink, as: UTF8.self), "2000-02-29 12:34:56 UTC")
        XCTAssertEqual(sink.count, CalendarTime.formattedLength)
    }

    // MARK: RTC decoding

    func testBCD() {
        XCTAssertEqual(CalendarTime.decodeBCD(0x59), 59)
        XCTAssertEqual(CalendarTime.decodeBCD(0x00), 0)
        XCTAssertEqual(CalendarTime.decodeBCD(0x99), 99)
        XCTAssertNil(CalendarTime.decodeBCD(0x1A))
        XCTAssertNil(CalendarTime.decodeBCD(0xA1))
        XCTAssertEqual(rtc(0x56, 0x34, 0x12, 0x25, 0x11, 0x26, b: bcd24), time(2026, 11, 25, 12, 34, 56))
        XCTAssertEqual(rtc(0x00, 0x00, 0x23, 0x31, 0x12, 0x99, b: bcd24), time(2099, 12, 31, 23))
    }

    func testBinaryMode() {
        XCTAssertEqual(rtc(56, 34, 12, 25, 11, 26, b: binary24), time(2026, 11, 25, 12, 34, 56))
        XCTAssertEqual(rtc(59, 59, 23, 29, 2, 0, b: binary24), time(2000, 2, 29, 23, 59, 59))
        // 0x25 means 37 in binary: not a BCD 25.
        XCTAssertEqual(rtc(0x25, 0, 0, 1, 1, 0x25, b: binary24), time(2037, 1, 1, 0, 0, 37))
        XCTAssertNil(rtc(60, 0, 0, 1, 1, 26, b: binary24))
        XCTAssertNil(rtc(0, 0, 0, 1, 1, 100, b: binary24))
    }

    func testTwelveHourMode() {
        let pm: UInt8 = 0x80
        // BCD
        XCTAssertEqual(rtc(0, 0, 0x12, 1, 1, 0x26, b: bcd12)?.hour, 0)          // 12 AM
        XCTAssertEqual(rtc(0, 0, 0x01, 1, 1, 0x26, b: bcd12)?.hour, 1)
        XCTAssertEqual(rtc(0, 0, 0x11, 1, 1, 0x26, b: bcd12)?.hour, 11)
        XCTAssertEqual(rtc(0, 0, 0x12 | pm, 1, 1, 0x26, b: bcd12)?.hour, 12)    // 12 PM
        XCTAssertEqual(rtc(0, 0, 0x01 | pm, 1, 1, 0x26, b: bcd12)?.hour, 13)
        XCTAssertEqual(rtc(0, 0, 0x11 | pm, 1, 1, 0x26, b: bcd12)?.hour, 23)
        XCTAssertNil(rtc(0, 0, 0x00, 1, 1, 0x26, b: bcd12))
        XCTAssertNil(rtc(0, 0, 0x13, 1, 1, 0x26, b: bcd12))
        XCTAssertNil(rtc(0, 0, 0x00 | pm, 1, 1, 0x26, b: bcd12))
        // binary
        XCTAssertEqual(rtc(0, 0, 12, 1, 1, 26, b: binary12)?.hour, 0)
        XCTAssertEqual(rtc(0, 0, 12 | pm, 1, 1, 26, b: binary12)?.hour, 12)
        XCTAssertEqual(rtc(0, 0, 7 | pm, 1, 1, 26, b: binary12)?.hour, 19)
        XCTAssertNil(rtc(0, 0, 13, 1, 1, 26, b: binary12))
        // In 24-hour mode bit 7 is not a PM flag, so the hour is out of range.
        XCTAssertNil(rtc(0, 0, 0x01 | pm, 1, 1, 0x26, b: bcd24))
        XCTAssertNil(rtc(0, 0, 1 | pm, 1, 1, 26, b: binary24))
    }

    func testCenturyRegister() {
        XCTAssertEqual(rtc(0, 0, 0, 1, 1, 0x99, century: 0x19, b: bcd24)?.year, 1999)
        XCTAssertEqual(rtc(0, 0, 0, 1, 1, 0x05, century: 0x21, b: bcd24)?.year, 2105)
        XCTAssertEqual(rtc(0, 0, 0, 1, 1, 5, century: 21, b: binary24)?.year, 2105)
        XCTAssertEqual(rtc(0, 0, 0, 1, 1, 0x26, century: 0x20, b: bcd24)?.year, 2026)
        // Invalid or implausible century registers: assume 20xx.
        XCTAssertEqual(rtc(0, 0, 0, 1, 1, 0x26, century: 0x00, b: bcd24)?.year, 2026)
        XCTAssertEqual(rtc(0, 0, 0, 1, 1, 0x26, century: 0xFF, b: bcd24)?.year, 2026)
        XCTAssertEqual(rtc(0, 0, 0, 1, 1, 0x26, century: 0x1A, b: bcd24)?.year, 2026)
        XCTAssertEqual(rtc(0, 0, 0, 1, 1, 0x26, century: 0x18, b: bcd24)?.year, 2026)
        XCTAssertEqual(rtc(0, 0, 0, 1, 1, 26, century: 0xFF, b: binary24)?.year, 2026)
        XCTAssertEqual(rtc(0, 0, 0, 1, 1, 0x26, century: nil, b: bcd24)?.year, 2026)
    }

    func testInvalidRegistersRejected() {
        XCTAssertNil(rtc(0, 0, 0, 1, 0x13, 0x26, b: bcd24))       // month 13
        XCTAssertNil(rtc(0, 0, 0, 1, 0x00, 0x26, b: bcd24))       // month 0
        XCTAssertNil(rtc(0, 0, 0, 0x30, 0x02, 0x26, b: bcd24))    // February 30
        XCTAssertNil(rtc(0, 0, 0, 0x29, 0x02, 0x25, b: bcd24))    // 2025 is not leap
        XCTAssertNotNil(rtc(0, 0, 0, 0x29, 0x02, 0x24, b: bcd24))
        XCTAssertNil(rtc(0x5A, 0, 0, 1, 1, 0x26, b: bcd24))       // BCD nibble > 9
        XCTAssertNil(rtc(0, 0xA0, 0, 1, 1, 0x26, b: bcd24))
        XCTAssertNil(rtc(0, 0, 0x24, 1, 1, 0x26, b: bcd24))       // hour 24
        XCTAssertNil(rtc(0x60, 0, 0, 1, 1, 0x26, b: bcd24))       // second 60
        XCTAssertNil(rtc(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, century: 0xFF, b: 0xFF))   // absent chip
    }

    // MARK: the read protocol

    func snapshot(_ s: UInt8, b: UInt8 = 0x02) -> [UInt8: UInt8] {
        [0x00: s, 0x02: 0x34, 0x04: 0x12, 0x07: 0x25, 0x08: 0x11, 0x09: 0x26, 0x0B: b, 0x32: 0x20]
    }

    func testReadAgreesOnSecondRead() {
        let chip = FakeRTC(snapshots: [snapshot(0x56)], uipReads: 3)
        let registers = RTCRegisters.read(register: chip.register)
        XCTAssertEqual(registers?.seconds, 0x56)
        XCTAssertEqual(registers?.century, 0x20)
        XCTAssertEqual(registers.flatMap(CalendarTime.fromRTC), time(2026, 11, 25, 12, 34, 56))
        XCTAssertEqual(chip.timeReads, 2)              // exactly two reads of the time
        XCTAssertEqual(chip.statusAReads, 3 + 2)       // UIP seen set 3 times, then clear twice
    }

    func testReadRetriesWhenTheSecondTicks() {
        let chip = FakeRTC(snapshots: [snapshot(0x56), snapshot(0x57), snapshot(0x57)])
        XCTAssertEqual(RTCRegisters.read(register: chip.register)?.seconds, 0x57)
        XCTAssertEqual(chip.timeReads, 3)
    }

    func testReadGivesUpWhenUpdateNeverEnds() {
        let chip = FakeRTC(snapshots: [snapshot(0x56)], uipReads: .max)
        XCTAssertNil(RTCRegisters.read(maxPolls: 1000, register: chip.register))
        XCTAssertEqual(chip.statusAReads, 1 + 1000)    // the presence check, then the polls
        XCTAssertEqual(chip.timeReads, 0)              // no time register read
    }

    func testReadGivesUpWhenReadsNeverAgree() {
        let chip = FakeRTC(snapshots: (0..<10).map { snapshot(UInt8($0)) })
        XCTAssertNil(RTCRegisters.read(maxReads: 6, register: chip.register))
        XCTAssertEqual(chip.timeReads, 6)
    }

    func testAbsentChipGivesUpAtOnce() {
        var reads = 0
        XCTAssertNil(RTCRegisters.read { _ in reads += 1; return 0xFF })
        XCTAssertEqual(reads, 2)                       // status A and B only, no polling
    }

    func testReadWithoutCenturyRegister() {
        let chip = FakeRTC(snapshots: [snapshot(0x56)])
        XCTAssertNil(RTCRegisters.read(centuryIndex: nil, register: chip.register)?.century)
    }
}
