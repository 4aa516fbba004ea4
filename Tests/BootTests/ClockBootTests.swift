// Tier 2: the clock service, timed from the host. The guest's wall clock (RTC on
// microvm under TCG, CMOS on legacy) must agree with the host's to within 2 s, and each
// sleep(100 ms) must last 100 ms ±10% as the guest measures it, and 80-125 ms as the host
// sees the lines arrive (median of the five). The host's bound is wider: the console lines
// of a TCG guest arrive late by however long the busy host takes to run it (a full
// `toro test` saw legacy's sleeps at 111 ms), while a clock calibrated wrongly by the
// guest would still be caught.
//
// The platforms boot one after the other: a second QEMU competing for the 2 cores would
// only add noise to the host's timings, and each run takes about a second.

import Foundation
import XCTest
import ToroTool

final class ClockBootTests: XCTestCase {
    static let sleeps = 5

    func testWallClockAndSleepsOnBothPlatforms() throws {
        guard Harness.preflight() else { return }
        for platform in GuestPlatform.allCases {
            let run = Harness.toroTimed(["run", "--platform", platform.rawValue, "--service", "clock",
                                         "--timeout", "60"], limit: 120)
            check(run, platform: platform)
        }
    }

    func check(_ run: TimedRun, platform: GuestPlatform) {
        let dump = "\(platform): \(run.description)"
        XCTAssertEqual(run.termination, .exited(0), dump)
        XCTAssertTrue(run.lines.contains { $0.text == "ready: clock" }, dump)

        // clock: wall clock YYYY-MM-DD HH:MM:SS UTC, unix <seconds>
        let prefix = "clock: wall clock "
        guard let dateLine = run.lines.first(where: { $0.text.hasPrefix(prefix) }) else {
            return XCTFail("no '\(prefix)…' line\n" + dump)
        }
        let fields = dateLine.text.dropFirst(prefix.count).split(separator: " ")
        guard fields.count == 5, fields[2] == "UTC,", fields[3] == "unix", let unix = Int(fields[4]) else {
            return XCTFail("'\(dateLine.text)' is not 'clock: wall clock YYYY-MM-DD HH:MM:SS UTC, unix N'\n" + dump)
        }
        let skew = dateLine.unixTime - Double(unix)
        XCTAssertLessThanOrEqual(abs(skew), 2,
                                 "\(platform): guest says unix \(unix), the host's clock said \(String(format: "%.3f", dateLine.unixTime)) when the line arrived\n" + dump)
        XCTAssertEqual(String(fields[0] + " " + fields[1]), Self.utcDate(unix),
                       "\(platform): the date and the unix seconds disagree in '\(dateLine.text)'")

        // Five pairs: clock: sleeping 100 ms (k) / clock: woke after X.Y ms
        var hostMilliseconds: [Double] = []
        for k in 1...Self.sleeps {
            guard let start = run.lines.firstIndex(where: { $0.text == "clock: sleeping 100 ms (\(k))" }) else {
                XCTFail("\(platform): no 'clock: sleeping 100 ms (\(k))' line\n" + dump); continue
            }
            guard let end = run.lines[(start + 1)...].firstIndex(where: { $0.text.hasPrefix("clock: ") }),
                  run.lines[end].text.hasPrefix("clock: woke after "), run.lines[end].text.hasSuffix(" ms"),
                  let guestMs = Double(run.lines[end].text.dropFirst("clock: woke after ".count).dropLast(3)) else {
                XCTFail("\(platform): sleep \(k) is not followed by 'clock: woke after X.Y ms'\n" + dump); continue
            }
            XCTAssertTrue((90...110).contains(guestMs),
                          "\(platform): sleep \(k): the guest measured \(guestMs) ms, not 100 ms ±10%\n" + dump)
            hostMilliseconds.append((run.lines[end].monotonic - run.lines[start].monotonic) * 1000)
        }
        XCTAssertEqual(hostMilliseconds.count, Self.sleeps, dump)
        XCTAssertEqual(run.lines.filter { $0.text.hasPrefix("clock: sleeping ") }.count, Self.sleeps, dump)
        guard !hostMilliseconds.isEmpty else { return }
        let sorted = hostMilliseconds.sorted()
        let median = sorted[sorted.count / 2]
        let figures = hostMilliseconds.map { String(format: "%.1f", $0) }.joined(separator: ", ")
        XCTAssertTrue((80...125).contains(median),
                      "\(platform): the host saw the sleeps last \(figures) ms (median \(String(format: "%.1f", median))), not within 80-125 ms\n" + dump)
    }

    /// `YYYY-MM-DD HH:MM:SS` for `unix` seconds, in UTC.
    static func utcDate(_ unix: Int) -> String {
        var seconds = time_t(unix)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }
}
