// Wall-clock time as a calendar date (UTC), its Unix-seconds arithmetic, its text form,
// and the pure half of reading a PC's MC146818-compatible CMOS real-time clock.
//
// Rules for callers:
//   * A `CalendarTime` is always valid: every initialiser checks year 0...9999, month
//     1...12, day within the month (Gregorian leap years), hour < 24, minute and second
//     < 60 (no leap second: the RTC never reports one, and Unix time has none).
//   * The calendar is the proleptic Gregorian one, in UTC; `unixSeconds` counts from
//     1970-01-01 00:00:00 and is negative before it. No time zones, no Foundation.
//   * `write(to:)` allocates nothing, so the log can print a time before the heap exists.
//   * The RTC half is split so that tests cover it hosted: `RTCRegisters.read(register:)`
//     runs the read protocol over a caller-supplied register accessor, and
//     `CalendarTime.fromRTC(_:)` decodes the raw bytes. The Legacy target's CMOSClock
//     supplies the port I/O (index 0x70, data 0x71).
//
// References:
//   * Days from civil / civil from days: H. Hinnant, "chrono-Compatible Low-Level Date
//     Algorithms" (era of 400 years = 146097 days; the year starts on March 1).
//   * MC146818A datasheet: register map (time at 0x00/0x02/0x04, date at 0x07/0x08/0x09),
//     register A bit 7 UIP ("update in progress"), register B bit 2 DM (1 = binary,
//     0 = BCD) and bit 1 24/12 (1 = 24-hour; in 12-hour mode hour bit 7 is PM).
//   * ACPI 6.5, 5.2.9 (FADT CENTURY): the RTC RAM index of the century; 0x32 on PCs and in
//     QEMU's mc146818rtc (RTC_CENTURY), encoded like the other registers.

public struct CalendarTime: Equatable {
    public let year: Int
    /// 1...12.
    public let month: Int
    /// 1...days in the month.
    public let day: Int
    public let hour: Int
    public let minute: Int
    public let second: Int

    /// nil unless every field is in range (see the file header).
    public init?(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) {
        guard (0...9999).contains(year), (1...12).contains(month),
              day >= 1, day <= CalendarTime.daysInMonth(month, year: year),
              (0..<24).contains(hour), (0..<60).contains(minute), (0..<60).contains(second)
        else { return nil }
        self.year = year; self.month = month; self.day = day
        self.hour = hour; self.minute = minute; self.second = second
    }

    public static func isLeapYear(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    /// Days in `month` (1...12) of `year`; 0 for a month out of range.
    public static func daysInMonth(_ month: Int, year: Int) -> Int {
        switch month {
        case 1, 3, 5, 7, 8, 10, 12: return 31
        case 4, 6, 9, 11: return 30
        case 2: return isLeapYear(year) ? 29 : 28
        default: return 0
        }
    }

    /// The first and last second a `CalendarTime` can hold: 0000-01-01 00:00:00 and
    /// 9999-12-31 23:59:59.
    public static let unixSecondsRange: ClosedRange<Int64> = -62_167_219_200...253_402_300_799

    /// Seconds since 1970-01-01 00:00:00 UTC.
    public var unixSeconds: Int64 {
        CalendarTime.daysFromCivil(year: year, month: month, day: day) * 86_400
            + Int64(hour * 3600 + minute * 60 + second)
    }

    /// The calendar time of `unixSeconds`; nil outside `unixSecondsRange`.
    public init?(unixSeconds: Int64) {
        guard CalendarTime.unixSecondsRange.contains(unixSeconds) else { return nil }
        // Floor division: the second of day is never negative.
        var days = unixSeconds / 86_400
        var secondOfDay = unixSeconds - days * 86_400
        if secondOfDay < 0 { days -= 1; secondOfDay += 86_400 }
        let date = CalendarTime.civilFromDays(days)
        let s = Int(secondOfDay)
        self.init(year: date.year, month: date.month, day: date.day,
                  hour: s / 3600, minute: s / 60 % 60, second: s % 60)
    }

    /// Days since 1970-01-01 of a valid date (Hinnant's days_from_civil).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400                                            // 0...399
        let m = Int64(month)
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1  // 0...365
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date `days` after 1970-01-01 (Hinnant's civil_from_days).
    static func civilFromDays(_ days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097                                                       // 0...146096
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365  // 0...399
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)         // 0...365
        let mp = (5 * dayOfYear + 2) / 153                                                     // 0...11, March = 0
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    /// The length of the text form, `YYYY-MM-DD HH:MM:SS UTC`.
    public static let formattedLength = 23

    /// Writes `YYYY-MM-DD HH:MM:SS UTC` byte by byte (ASCII); allocates nothing.
    public func write(to sink: (UInt8) -> Void) {
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            while divisor > 0 { sink(UInt8(truncatingIfNeeded: value / divisor % 10) + 48); divisor /= 10 }
        }
        digits(year, 4); sink(45); digits(month, 2); sink(45); digits(day, 2)
        sink(32)
        digits(hour, 2); sink(58); digits(minute, 2); sink(58); digits(second, 2)
        sink(32); sink(85); sink(84); sink(67)   // " UTC"
    }

    /// The text form as ASCII bytes (`String(decoding: t.formatted, as: UTF8.self)` on the host).
    public var formatted: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(CalendarTime.formattedLength)
        write { bytes.append($0) }
        return bytes
    }
}

// MARK: - The MC146818 real-time clock, without the port I/O

/// The raw bytes of one RTC read, as the chip holds them (BCD or binary, 12- or 24-hour).
public struct RTCRegisters: Equatable {
    public var seconds: UInt8
    public var minutes: UInt8
    public var hours: UInt8
    public var dayOfMonth: UInt8
    public var month: UInt8
    /// Two digits: the year within the century.
    public var year: UInt8
    /// The century register (0x32), or nil when not read.
    public var century: UInt8?
    /// Status register B: its DM and 24/12 bits say how to decode the others.
    public var statusB: UInt8

    public init(seconds: UInt8, minutes: UInt8, hours: UInt8, dayOfMonth: UInt8, month: UInt8,
                year: UInt8, century: UInt8? = nil, statusB: UInt8) {
        self.seconds = seconds; self.minutes = minutes; self.hours = hours
        self.dayOfMonth = dayOfMonth; self.month = month; self.year = year
        self.century = century; self.statusB = statusB
    }

    /// MC146818 register indices (written to the index port, 0x70 on a PC).
    public enum Index {
        public static let seconds: UInt8 = 0x00
        public static let minutes: UInt8 = 0x02
        public static let hours: UInt8 = 0x04
        public static let dayOfMonth: UInt8 = 0x07
        public static let month: UInt8 = 0x08
        public static let year: UInt8 = 0x09
        public static let statusA: UInt8 = 0x0A
        public static let statusB: UInt8 = 0x0B
        /// ACPI FADT CENTURY on PCs and QEMU.
        public static let century: UInt8 = 0x32
    }

    /// Register A bit 7: the chip is updating the time registers (reads may tear).
    public static let updateInProgress: UInt8 = 0x80
    /// Register B bit 2 (DM): 1 = binary, 0 = BCD.
    public static let binaryMode: UInt8 = 0x04
    /// Register B bit 1: 1 = 24-hour, 0 = 12-hour with bit 7 of the hour meaning PM.
    public static let twentyFourHour: UInt8 = 0x02
    /// The PM flag in the hours register (12-hour mode only).
    public static let pmFlag: UInt8 = 0x80

    /// Polls of register A allowed per wait for an update to finish. An update cycle lasts
    /// at most 1984 µs plus the 244 µs UIP warning; a port read takes about 1 µs on
    /// hardware, more under emulation, so this never cuts a real update short, and an
    /// absent chip (which reads 0xFF, UIP forever set) costs a bounded delay.
    public static let defaultMaxPolls = 100_000
    /// Full reads allowed before giving up on two consecutive ones agreeing. Two suffice
    /// unless a second boundary falls between them; more disagreement means a broken chip.
    public static let defaultMaxReads = 6

    /// Reads the time registers the safe way: wait until UIP is clear, read them all, and
    /// repeat until two consecutive reads are identical. `register(i)` selects RTC RAM
    /// index `i` and returns its byte. Returns nil at once when status A and B both read
    /// 0xFF (no chip on the bus), when UIP stays set for `maxPolls` polls, or when no two
    /// consecutive reads of `maxReads` agree; never loops unbounded.
    public static func read(maxPolls: Int = defaultMaxPolls, maxReads: Int = defaultMaxReads,
                            centuryIndex: UInt8? = Index.century,
                            register: (UInt8) -> UInt8) -> RTCRegisters? {
        var previous: RTCRegisters?
        // No RTC on the bus reads as all ones: give up at once rather than poll.
        if register(Index.statusA) == 0xFF && register(Index.statusB) == 0xFF { return nil }
        for _ in 0..<maxReads {
            var polls = 0
            while register(Index.statusA) & updateInProgress != 0 {
                polls += 1
                if polls >= maxPolls { return nil }
            }
            let current = RTCRegisters(
                seconds: register(Index.seconds), minutes: register(Index.minutes),
                hours: register(Index.hours), dayOfMonth: register(Index.dayOfMonth),
                month: register(Index.month), year: register(Index.year),
                century: centuryIndex.map { register($0) }, statusB: register(Index.statusB))
            if current == previous { return current }
            previous = current
        }
        return nil
    }
}

extension CalendarTime {
    /// Decodes one RTC read. BCD unless status B says binary; in 12-hour mode 12 AM is
    /// hour 0 and 12 PM is hour 12. The year is `century * 100 + year` when the century
    /// register decodes to 19...99, else 2000 + year. nil for anything out of range: a BCD
    /// nibble above 9, month 13, February 30, a 12-hour hour of 0 or 13, a year above 99.
    public static func fromRTC(_ r: RTCRegisters) -> CalendarTime? {
        let binary = r.statusB & RTCRegisters.binaryMode != 0
        let twelveHour = r.statusB & RTCRegisters.twentyFourHour == 0
        func decode(_ byte: UInt8) -> Int? { binary ? Int(byte) : decodeBCD(byte) }

        let pm = twelveHour && r.hours & RTCRegisters.pmFlag != 0
        guard let second = decode(r.seconds), let minute = decode(r.minutes),
              var hour = decode(twelveHour ? r.hours & ~RTCRegisters.pmFlag : r.hours),
              let day = decode(r.dayOfMonth), let month = decode(r.month),
              let yearOfCentury = decode(r.year), yearOfCentury < 100
        else { return nil }
        if twelveHour {
            guard (1...12).contains(hour) else { return nil }
            hour = hour % 12 + (pm ? 12 : 0)
        }
        var century = 20
        if let byte = r.century, let c = decode(byte), (19...99).contains(c) { century = c }
        return CalendarTime(year: century * 100 + yearOfCentury, month: month, day: day,
                            hour: hour, minute: minute, second: second)
    }

    /// Two BCD digits; nil when either nibble is above 9.
    public static func decodeBCD(_ byte: UInt8) -> Int? {
        let high = byte >> 4, low = byte & 0x0F
        guard high <= 9, low <= 9 else { return nil }
        return Int(high) * 10 + Int(low)
    }
}
