// `toro bench fs`: the fsbench guest lines parsed out of a console transcript, the options,
// and the table of medians and ratios. Nothing here boots or times anything.

import XCTest
@testable import ToroTool

final class FSBenchTests: XCTestCase {
    let transcript = """
        [  0.053558] devices: virtio-blk at PCI 0:2.0, IRQ 10, 145 MiB, ext2 with 1024-byte blocks, a cache of 1024 blocks
        [  0.054868] boot: starting service fsbench
        ready: fsbench
        fsbench: read 67108864 bytes in 14691951 us
        fsbench: created 1000 files in 516153 us
        fsbench: synced in 273601 us
        [ 15.543695] ext2: cache hits 164828, misses 67077, blocks read 66056, written 1283, dirty evictions 255
        [ 15.545747] exit: 0
        toro: wrote the guest's changes back: 1001 created, 0 changed, 0 removed
        """

    func testParsesTheGuestLines() {
        XCTAssertEqual(FSBenchGuestFigures.parse(transcript),
                       FSBenchGuestFigures(bytesRead: 67_108_864, readMicroseconds: 14_691_951, filesCreated: 1000,
                                           createMicroseconds: 516_153, syncMicroseconds: 273_601))
    }

    func testAcceptsTimestampsAndCarriageReturns() {
        let text = "[  1.000000] fsbench: read 10 bytes in 5 us\r\n[  1.100000] fsbench: created 3 files in 7 us\r\nfsbench: synced in 0 us\r\n"
        XCTAssertEqual(FSBenchGuestFigures.parse(text),
                       FSBenchGuestFigures(bytesRead: 10, readMicroseconds: 5, filesCreated: 3,
                                           createMicroseconds: 7, syncMicroseconds: 0))
    }

    func testAMissingOrMalformedLineGivesNothing() {
        XCTAssertNil(FSBenchGuestFigures.parse(transcript.replacingOccurrences(of: "fsbench: synced in 273601 us", with: "")))
        XCTAssertNil(FSBenchGuestFigures.parse(transcript.replacingOccurrences(of: "in 516153 us", with: "in many us")))
        XCTAssertNil(FSBenchGuestFigures.parse(transcript.replacingOccurrences(of: "67108864 bytes", with: "67108864 octets")))
        XCTAssertNil(FSBenchGuestFigures.parse("fsbench: read big.bin: not found\n"))
        XCTAssertNil(FSBenchGuestFigures.parse(""))
    }

    func testOptions() throws {
        XCTAssertEqual(try FSBench.parse([]).runs, 3)
        XCTAssertEqual(try FSBench.parse(["--runs", "1"]).runs, 1)
        XCTAssertEqual(try FSBench.parse(["--runs=7"]).runs, 7)
        for bad in [["--runs", "0"], ["--runs", "x"], ["--runs"], ["--requests", "5"], ["--", "files=3"]] {
            XCTAssertThrowsError(try FSBench.parse(bad), "\(bad)") { error in
                XCTAssertEqual((error as! ToolFailure).status, .badArgument, "\(bad)")
            }
        }
    }

    func figures(_ label: String, read: [Double], create: [Double], sync: [Double]) -> FSBench.Figures {
        var figures = FSBench.Figures(label: label)
        figures.read = read
        figures.create = create
        figures.sync = sync
        return figures
    }

    func testTableGivesMediansAndRatios() {
        let legacy = figures("legacy ext2/virtio-blk", read: [14.0, 16.0, 15.0], create: [0.5, 0.4, 0.6], sync: [0.3, 0.3, 0.3])
        let microvm = figures("microvm virtio-fs", read: [0.4, 0.3, 0.5], create: [3.0, 4.0, 3.5], sync: [0, 0, 0])
        let host = figures("host", read: [0.05, 0.1, 0.2], create: [0.01, 0.02, 0.03], sync: [0.0, 0.0, 0.0])
        let lines = FSBench.table(legacy: legacy, microvm: microvm, host: host, hostCached: [0.01, 0.02, 0.03],
                                  hostStayedCached: 0)
        XCTAssertEqual(lines[0], "target                        read ms   MiB/s  create ms  sync ms  create+sync  read/host  create+sync/host")
        XCTAssertEqual(lines[1], "legacy ext2/virtio-blk        15000.0     4.3      500.0    300.0        800.0     150.0x             40.0x")
        XCTAssertEqual(lines[2], "microvm virtio-fs               400.0   160.0     3500.0      0.0       3500.0       4.0x            175.0x")
        XCTAssertEqual(lines[3], "host (page cache dropped)       100.0   640.0       20.0      0.0         20.0       1.0x              1.0x")
        XCTAssertEqual(lines[4], "host (read cached)               20.0  3200.0")
        XCTAssertTrue(lines[5].hasPrefix("medians of 3 run(s), milliseconds; guest figures are the guest's own clock"), lines[5])
        XCTAssertEqual(lines.last, "guest / host (medians): legacy read 150.0x, create+sync 40.0x; microvm read 4.0x, "
                       + "create+sync 175.0x; against the cached host read: legacy 750.0x, microvm 20.0x")
        XCTAssertFalse(lines.contains { $0.hasPrefix("note:") })
    }

    func testTableSaysWhenTheHostReadWasCachedAndWhenAPlatformHasNoFigures() {
        let legacy = FSBench.Figures(label: "legacy ext2/virtio-blk")
        let microvm = figures("microvm virtio-fs", read: [0.4], create: [3.0], sync: [0.001])
        let host = figures("host", read: [0.02], create: [0.02], sync: [0.001])
        let lines = FSBench.table(legacy: legacy, microvm: microvm, host: host, hostCached: [0.02], hostStayedCached: 1)
        XCTAssertEqual(lines[1], "legacy ext2/virtio-blk              -       -          -        -            -          -                 -")
        XCTAssertTrue(lines[3].hasPrefix("host (read CACHED)  "), lines[3])
        XCTAssertTrue(lines.contains { $0.hasPrefix("note: in 1 run(s) big.bin stayed in the host's page cache") })
        XCTAssertTrue(lines.last!.hasPrefix("guest / host (medians): legacy read -, create+sync -; microvm read 20.0x"), lines.last!)
    }

    func testGenerateWritesTheSizeAskedFor() throws {
        let folder = NSTemporaryDirectory() + "toro-fsbench-test-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FSBench.generate(in: folder, size: 3 << 20 | 40)
        let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/big.bin"))
        XCTAssertEqual(data.count, 3 << 20 | 40)
        XCTAssertNotEqual(data.prefix(4096), Data(count: 4096))
    }
}
