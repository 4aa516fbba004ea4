// The guest's virtio-blk driver (BlkDriver's VirtIOBlockDriver, as Core's BlockDevice) against
// an in-process virtio-blk device over a byte-array disk (BlockTestDevice), in one process:
// bring-up, read/write round trips (straight into the caller's buffer, and bounced when the
// device cannot reach it), requests split by size_max, several requests in flight answered
// out of order, what is refused without reaching the device (read-only, out of range, flush
// without a write cache), GET_ID, and hostile devices (bad status byte, a used id not in
// flight, a used length beyond the chain, no answer at all): `deviceFailed`, one log line, the
// device reset, never a trap or a hang.
//
// How the driver runs without the scheduler: as at boot (`polling`), its waits spin with the
// spin-wait hint, which here advances a fake clock by 1 ms, lets the device serve its kicks
// and delivers the device's interrupt to `handleInterrupt`. The split calls (`submit`,
// `drain`, `collect`) are driven directly for the requests kept in flight together.
import Core
import TestSupport
import VirtIO
import XCTest
@testable import BlkDriver
@testable import Drivers
@testable import VhostUser

typealias BlockTransport = DeviceTransport<BlockTestDevice>
typealias BlockGuestDriver = VirtIOBlockDriver<BlockTransport, IdentityMemory>

/// The kernel log, kept as text.
final class CapturedLog: Console {
    var text = ""
    func write(_ byte: UInt8) { if byte != 13 { text.append(Character(UnicodeScalar(byte))) } }
}

final class VirtIOBlockDriverDeviceTests: XCTestCase {
    var ram: GuestRAM!
    var clock: UInt64 = 0
    let log = CapturedLog()
    let v1 = VirtIOFeature.version1

    override func setUp() {
        ram = GuestRAM(pages: 256)
        XCTAssertTrue(ram.install())
        Log.console = log
    }

    override func tearDown() {
        Log.console = nil
        GuestRAM.uninstall()
    }

    struct Guest {
        let device: BlockTestDevice
        let transport: BlockTransport
        let driver: BlockGuestDriver

        /// The device serves its kicks, then the interrupt is taken.
        func step() {
            transport.runDevice()
            if transport.interruptPending { driver.handleInterrupt() }
        }
    }

    /// `reachable`: the device may reach the whole process (the caller's heap buffers go
    /// straight to it) or only the guest RAM (they are bounced).
    func bringUp(features: UInt64 = 0, sectors: Int = 4096, reachable: Bool = true, inFlight: Int = 16,
                 timeoutSeconds: Int = 30, configure: (BlockTestDevice) -> Void = { _ in }) throws -> Guest {
        let device = BlockTestDevice(sectors: sectors, features: features)
        configure(device)
        let memory = reachable ? ram.processMemory : ram.memory
        let transport = BlockTransport(device: device, memory: memory, config: device.readConfig(offset: 0, size: 64))
        transport.kicksRunDevice = false
        let box = DriverBox<BlockGuestDriver>()
        let driver = try XCTUnwrap(BlockGuestDriver(
            transport: transport, memory: memory, now: { [unowned self] in clock },
            pause: { [unowned self] in
                clock += 1_000_000
                transport.runDevice()
                if transport.interruptPending { box.driver?.handleInterrupt() }
            },
            timeoutSeconds: timeoutSeconds, maximumInFlight: inFlight))
        box.driver = driver
        return Guest(device: device, transport: transport, driver: driver)
    }

    func read(_ guest: Guest, sector: UInt64, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0xEE, count: count)
        try bytes.withUnsafeMutableBytes { try guest.driver.read(sector: sector, into: $0) }
        return bytes
    }

    func write(_ guest: Guest, sector: UInt64, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try guest.driver.write(sector: sector, from: $0) }
    }

    func disk(_ guest: Guest, sector: Int, count: Int) -> [UInt8] {
        Array(guest.device.disk[sector * 512 ..< sector * 512 + count])
    }

    func pattern(_ count: Int, seed: UInt32) -> [UInt8] {
        (0 ..< count).map { UInt8(truncatingIfNeeded: (UInt32($0) &* 2654435761 &+ seed) >> 13) }
    }

    func assertThrows(_ expected: BlockDeviceError, _ what: String, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), what) { XCTAssertEqual($0 as? BlockDeviceError, expected, what) }
    }

    // MARK: bring-up and transfers

    func testBringUpReadsCapacityAndAcceptsWhatItKnows() throws {
        let offered = VirtIOBlock.featureFlush | VirtIOBlock.featureBlockSize | (1 << 4) | (1 << 12) | VirtIOFeature.indirectDescriptors
        let guest = try bringUp(features: offered, sectors: 2048)
        XCTAssertEqual(guest.driver.sectorCount, 2048, "capacity, le64 at config 0")
        XCTAssertEqual(guest.driver.sectorSize, 512)
        XCTAssertEqual(guest.driver.blockSize, 4096, "blk_size with VIRTIO_BLK_F_BLK_SIZE")
        XCTAssertTrue(guest.driver.hasFlush)
        XCTAssertFalse(guest.driver.isReadOnly)
        XCTAssertEqual(guest.transport.registers.driverFeatures,
                       v1 | VirtIOBlock.featureFlush | VirtIOBlock.featureBlockSize,
                       "geometry, MQ and INDIRECT are not accepted")
        XCTAssertEqual(DeviceStatus(rawValue: guest.transport.registers.deviceStatus),
                       [.acknowledge, .driver, .featuresOK, .driverOK])
        XCTAssertEqual(guest.transport.rings.keys.sorted(), [0])
        XCTAssertEqual(guest.transport.rings[0]?.queue.size, 64)
        XCTAssertEqual(guest.driver.slots.count, 16)
        guest.driver.describe()
        XCTAssertTrue(log.text.contains("virtio-blk: 2048 sectors (1 MiB), block size 4096, write cache\n"), log.text)
    }

    /// A device the driver cannot use is left FAILED with one line, never half-used.
    func testUnusableDevicesAreGivenUp() throws {
        let cases: [(String, UInt64, UInt16, UInt32, String)] = [
            ("a ring too small for one request", 0, 2, 0, "the request queue could not be set up"),
            ("size_max below a sector", VirtIOBlock.featureSizeMax, 256, 100, "size_max is below one sector"),
        ]
        for (what, features, queueMaximum, sizeMax, line) in cases {
            log.text = ""
            let device = BlockTestDevice(sectors: 8, features: features)
            device.sizeMax = sizeMax
            let transport = BlockTransport(device: device, memory: ram.memory, config: device.readConfig(offset: 0, size: 64),
                                           queueMaximum: queueMaximum)
            XCTAssertNil(BlockGuestDriver(transport: transport, memory: ram.memory, now: { 0 }, pause: {}), what)
            XCTAssertTrue(DeviceStatus(rawValue: transport.registers.deviceStatus).contains(.failed), what)
            XCTAssertTrue(log.text.contains("virtio-blk: " + line), "\(what): \(log.text)")
        }
    }

    func testReadWriteRoundTripsDirectAndBounced() throws {
        for reachable in [true, false] {
            let guest = try bringUp(reachable: reachable)
            let what = reachable ? "direct" : "bounced"
            XCTAssertEqual(try read(guest, sector: 0, count: 512), disk(guest, sector: 0, count: 512), what)
            XCTAssertEqual(try read(guest, sector: 4095, count: 512), disk(guest, sector: 4095, count: 512), "\(what): the last sector")
            XCTAssertEqual(try read(guest, sector: 7, count: 3 * 512), disk(guest, sector: 7, count: 3 * 512), what)
            XCTAssertEqual(try read(guest, sector: 100, count: 65536), disk(guest, sector: 100, count: 65536), what)
            for (sector, count, seed) in [(0, 512, 1), (1, 4096, 2), (33, 5 * 512, 3), (1000, 200 * 1024, 4), (4088, 4096, 5)] {
                let bytes = pattern(count, seed: UInt32(seed))
                try write(guest, sector: UInt64(sector), bytes)
                XCTAssertEqual(disk(guest, sector: sector, count: count), bytes, "\(what): written at \(sector)")
                XCTAssertEqual(try read(guest, sector: UInt64(sector), count: count), bytes, "\(what): read back at \(sector)")
            }
            // A transfer beyond one request (1 MiB) is split.
            let big = pattern((1 << 20) + 1024, seed: 9)
            try write(guest, sector: 5, big)
            XCTAssertEqual(try read(guest, sector: 5, count: big.count), big, what)
            let sizes = guest.device.requests.filter { $0.type == 1 }.map(\.bytes)
            XCTAssertEqual(sizes.max(), reachable ? 1 << 20 : 4096, "\(what): the largest request")
            XCTAssertFalse(guest.driver.failed, what)
            XCTAssertTrue(guest.driver.freeSlots.count == guest.driver.slots.count, "\(what): every slot is free again")
        }
    }

    func testSizeMaxBoundsEachRequest() throws {
        let guest = try bringUp(features: VirtIOBlock.featureSizeMax) { $0.sizeMax = 2048 + 100 }
        XCTAssertEqual(guest.driver.requestLimit, 2048, "size_max rounded down to whole sectors")
        let bytes = pattern(8192, seed: 4)
        try write(guest, sector: 16, bytes)
        XCTAssertEqual(guest.device.requests, (0 ..< 4).map { .init(type: 1, sector: 16 + UInt64($0) * 4, bytes: 2048) })
        XCTAssertEqual(try read(guest, sector: 16, count: 8192), bytes)
    }

    func testSeveralRequestsInFlightCompletedOutOfOrder() throws {
        let guest = try bringUp()
        guest.device.holds = true
        var buffers = (0 ..< 3).map { _ in [UInt8](repeating: 0, count: 1024) }
        var tickets: [BlockTicket] = []
        for i in 0 ..< 3 {
            let ticket = try buffers[i].withUnsafeMutableBytes { raw in
                try guest.driver.submit(.read, sector: UInt64(10 * i), buffer: raw)
            }
            tickets.append(try XCTUnwrap(ticket))
        }
        guest.step()
        XCTAssertEqual(guest.device.held.count, 3, "all three reached the device together")
        XCTAssertEqual(Set(tickets.map(\.slot)).count, 3, "one slot each")
        for ticket in tickets { XCTAssertFalse(try guest.driver.collect(ticket), "not answered yet") }

        guest.device.complete(order: [2, 0])
        guest.step()
        XCTAssertTrue(try guest.driver.collect(tickets[2]))
        XCTAssertTrue(try guest.driver.collect(tickets[0]))
        XCTAssertFalse(try guest.driver.collect(tickets[1]), "the middle one is still with the device")
        guest.device.complete(order: [0])
        guest.step()
        XCTAssertTrue(try guest.driver.collect(tickets[1]))
        for i in 0 ..< 3 {
            XCTAssertEqual(buffers[i], disk(guest, sector: 10 * i, count: 1024), "request \(i) got its own data")
        }
        XCTAssertFalse(guest.driver.failed)
    }

    func testEverySlotBusyReturnsNilUntilOneIsCollected() throws {
        let guest = try bringUp(reachable: false, inFlight: 2)
        guest.device.holds = true
        var buffer = [UInt8](repeating: 0, count: 512)
        let tickets = try buffer.withUnsafeMutableBytes { raw in
            [try guest.driver.submit(.read, sector: 1, buffer: raw), try guest.driver.submit(.read, sector: 2, buffer: raw),
             try guest.driver.submit(.read, sector: 3, buffer: raw)]
        }
        XCTAssertNotNil(tickets[0])
        XCTAssertNotNil(tickets[1])
        XCTAssertNil(tickets[2], "two slots, both in flight")
        guest.step()
        guest.device.complete(order: [1])
        guest.step()
        XCTAssertTrue(try guest.driver.collect(try XCTUnwrap(tickets[1])))
        XCTAssertEqual(buffer, disk(guest, sector: 2, count: 512), "bounced back into the caller's buffer")
        let again = try buffer.withUnsafeMutableBytes { try guest.driver.submit(.read, sector: 3, buffer: $0) }
        XCTAssertEqual(again, tickets[1], "the freed slot is taken again")
    }

    // MARK: refused without a request

    func testReadOnlyRefusesWritesWithoutARequest() throws {
        let guest = try bringUp(features: VirtIOBlock.featureReadOnly)
        XCTAssertTrue(guest.driver.isReadOnly)
        XCTAssertEqual(guest.transport.registers.driverFeatures & VirtIOBlock.featureReadOnly, VirtIOBlock.featureReadOnly)
        let before = guest.device.disk
        assertThrows(.readOnly, "write") { try self.write(guest, sector: 0, self.pattern(512, seed: 1)) }
        XCTAssertEqual(guest.device.requests, [], "nothing reached the device")
        XCTAssertEqual(guest.device.disk, before)
        XCTAssertEqual(try read(guest, sector: 3, count: 512), disk(guest, sector: 3, count: 512), "reads still work")
        XCTAssertFalse(guest.driver.failed)
    }

    func testOutOfRangeIsRefusedWithoutARequest() throws {
        let guest = try bringUp(sectors: 64)
        let cases: [(String, UInt64, Int)] = [
            ("past the end", 64, 512), ("straddling the end", 63, 1024), ("not whole sectors", 0, 700),
            ("empty", 0, 0), ("sector overflow", UInt64.max, 512),
        ]
        for (what, sector, count) in cases {
            assertThrows(.outOfRange, "read \(what)") { _ = try self.read(guest, sector: sector, count: count) }
            assertThrows(.outOfRange, "write \(what)") { try self.write(guest, sector: sector, [UInt8](repeating: 1, count: count)) }
        }
        XCTAssertEqual(guest.device.requests, [], "nothing reached the device")
        XCTAssertEqual(try read(guest, sector: 63, count: 512), disk(guest, sector: 63, count: 512))
    }

    func testFlushIsSentOnlyWhenOffered() throws {
        let plain = try bringUp()
        XCTAssertFalse(plain.driver.hasFlush)
        try plain.driver.flush()
        XCTAssertEqual(plain.device.requests, [], "no write cache: flush returns at once")

        let cached = try bringUp(features: VirtIOBlock.featureFlush)
        try write(cached, sector: 2, pattern(512, seed: 3))
        try cached.driver.flush()
        XCTAssertEqual(cached.device.requests.last, .init(type: 4, sector: 0, bytes: 0), "FLUSH: header and status only")
    }

    // MARK: device answers

    func testIOErrorFailsTheRequestNotTheDevice() throws {
        let guest = try bringUp { $0.failSectors = [40] }
        assertThrows(.io, "IOERR") { _ = try self.read(guest, sector: 38, count: 2048) }
        XCTAssertFalse(guest.driver.failed)
        XCTAssertEqual(try read(guest, sector: 41, count: 512), disk(guest, sector: 41, count: 512))
        XCTAssertEqual(guest.driver.freeSlots.count, guest.driver.slots.count)
    }

    func testDeviceIDWhenOfferedAndNilWhenUnsupported() throws {
        let named = try bringUp { $0.serial = Array("toro-disk-1".utf8) }
        XCTAssertEqual(try named.driver.deviceID(), Array("toro-disk-1".utf8))
        let full = try bringUp { $0.serial = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8) }
        XCTAssertEqual(try full.driver.deviceID(), Array("ABCDEFGHIJKLMNOPQRST".utf8), "20 bytes, no NUL")
        let anonymous = try bringUp()
        XCTAssertNil(try anonymous.driver.deviceID(), "UNSUPP is fine")
        XCTAssertFalse(anonymous.driver.failed)
        XCTAssertEqual(anonymous.device.requests.last?.type, 8)
        XCTAssertEqual(try read(anonymous, sector: 1, count: 512), disk(anonymous, sector: 1, count: 512))
    }

    // MARK: hostile devices

    /// After a failure: `deviceFailed` from every call, the device reset, no new request,
    /// and the one log line.
    func assertFailed(_ guest: Guest, _ reason: String, _ what: String) {
        XCTAssertTrue(guest.driver.failed, what)
        XCTAssertEqual(guest.transport.registers.deviceStatus, 0, "\(what): the device was reset")
        XCTAssertTrue(guest.transport.rings.isEmpty, "\(what): the device let go of the ring")
        let requests = guest.device.requests.count
        assertThrows(.deviceFailed, "\(what): read") { _ = try self.read(guest, sector: 0, count: 512) }
        assertThrows(.deviceFailed, "\(what): write") { try self.write(guest, sector: 0, [UInt8](repeating: 0, count: 512)) }
        XCTAssertEqual(guest.device.requests.count, requests, "\(what): nothing more is sent")
        let lines = log.text.split(separator: "\n").filter { $0.contains("virtio-blk: device failed") }
        XCTAssertEqual(lines.count, 1, "\(what): logged once: \(log.text)")
        XCTAssertTrue(lines.first?.hasSuffix(reason) ?? false, "\(what): \(lines)")
        log.text = ""
    }

    func testBadStatusByteFailsTheDevice() throws {
        for byte: UInt8 in [3, 0x7F, 0xFF] {
            let guest = try bringUp { $0.statusOverride = byte }
            assertThrows(.deviceFailed, "status \(byte)") { _ = try self.read(guest, sector: 0, count: 512) }
            assertFailed(guest, "the device wrote an invalid status byte", "status \(byte)")
        }
    }

    func testForgedUsedIdOrLengthFailsTheDevice() throws {
        let corruptions: [(String, (BlockTransport, DeviceRing) -> Void)] = [
            ("id not in flight", { t, ring in t.rewriteLastUsed(ring, id: 5) }),
            ("id out of range", { t, ring in t.rewriteLastUsed(ring, id: 0xFFFF) }),
            ("length beyond the chain", { t, ring in t.rewriteLastUsed(ring, length: 512 + 2) }),
        ]
        for (what, corrupt) in corruptions {
            let guest = try bringUp()
            XCTAssertEqual(try read(guest, sector: 0, count: 512), disk(guest, sector: 0, count: 512), what)
            guest.transport.afterService = { _, ring in corrupt(guest.transport, ring) }
            assertThrows(.deviceFailed, what) { _ = try self.read(guest, sector: 1, count: 512) }
            assertFailed(guest, "the device broke the request queue", what)
        }
    }

    func testNoAnswerTimesOutAndFailsTheDevice() throws {
        let guest = try bringUp()
        guest.device.holds = true
        let start = clock
        assertThrows(.deviceFailed, "silent device") { _ = try self.read(guest, sector: 0, count: 512) }
        XCTAssertGreaterThanOrEqual(clock - start, 30_000_000_000, "waited the whole timeout")
        XCTAssertLessThan(clock - start, 31_000_000_000, "and not much longer")
        XCTAssertEqual(guest.device.held, [], "the reset took the chain back")
        assertFailed(guest, "a request got no answer within the timeout", "silent device")
    }

    func testAFailureWakesEveryRequestInFlight() throws {
        let guest = try bringUp()
        guest.device.holds = true
        var buffer = [UInt8](repeating: 0, count: 512)
        let tickets = try buffer.withUnsafeMutableBytes { raw in
            try (0 ..< 3).map { try XCTUnwrap(try guest.driver.submit(.read, sector: UInt64($0), buffer: raw)) }
        }
        guest.step()
        guest.device.statusOverride = 9
        guest.device.complete(order: [1])
        guest.step()
        for ticket in tickets {
            assertThrows(.deviceFailed, "slot \(ticket.slot)") { _ = try guest.driver.collect(ticket) }
            XCTAssertTrue(guest.driver.slots[ticket.slot].completion.isSignalled, "its waiter would wake")
        }
        assertFailed(guest, "the device wrote an invalid status byte", "one bad answer among three")
    }

    /// Seeded runs of mixed operations against a device that sometimes lies (a random status
    /// byte, a forged used id or length) or stays silent: every call returns or throws one of
    /// BlockDeviceError's cases, honest answers are always right, and once the device failed
    /// every call throws `deviceFailed`, with one log line.
    func testRandomlyHostileDeviceNeverTrapsOrHangs() throws {
        var failures = 0
        for seed in 0 ..< 40 {
            var rng = RNG(seed: UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
            let guest = try bringUp(features: VirtIOBlock.featureFlush, sectors: 64, reachable: rng.below(2) == 0,
                                    inFlight: 1 + rng.below(4), timeoutSeconds: 1)
            log.text = ""
            var failedBefore = false
            for step in 0 ..< 30 {
                let what = "seed \(seed) step \(step)"
                let hostility = rng.below(10)
                var hostile = true
                switch hostility {
                case 0: guest.device.statusOverride = UInt8(truncatingIfNeeded: rng.next())
                case 1:
                    let id = UInt32(truncatingIfNeeded: rng.next() % 80)
                    guest.transport.afterService = { _, ring in guest.transport.rewriteLastUsed(ring, id: id) }
                case 2:
                    let length = UInt32(truncatingIfNeeded: rng.next())
                    guest.transport.afterService = { _, ring in guest.transport.rewriteLastUsed(ring, length: length) }
                case 3 where rng.below(4) == 0: guest.device.holds = true
                default: hostile = false
                }
                let sector = UInt64(rng.below(70))
                let count = (1 + rng.below(9)) * 512 - (rng.below(12) == 0 ? 100 : 0)
                let inRange = count % 512 == 0 && sector + UInt64(count / 512) <= 64
                var result: BlockDeviceError? = nil
                var bytes = [UInt8](repeating: 0, count: count)
                let kind = rng.below(3)
                do {
                    switch kind {
                    case 0: bytes = try read(guest, sector: sector, count: count)
                    case 1: try write(guest, sector: sector, pattern(count, seed: UInt32(step)))
                    default: try guest.driver.flush()
                    }
                } catch let error as BlockDeviceError {
                    result = error
                }
                guest.device.statusOverride = nil
                guest.device.holds = false
                guest.transport.afterService = nil
                if failedBefore {
                    XCTAssertEqual(result, .deviceFailed, what)
                } else if kind != 2 && !inRange {
                    XCTAssertEqual(result, .outOfRange, "\(what): checked before the device")
                } else if !hostile {
                    XCTAssertNil(result, "\(what): an honest device")
                    if kind == 0 { XCTAssertEqual(bytes, disk(guest, sector: Int(sector), count: count), what) }
                    if kind == 1 { XCTAssertEqual(disk(guest, sector: Int(sector), count: count), pattern(count, seed: UInt32(step)), what) }
                } else if result == nil && kind == 0 {
                    XCTAssertEqual(bytes, disk(guest, sector: Int(sector), count: count), "\(what): a lie that passed is harmless")
                }
                if guest.driver.failed && !failedBefore {
                    XCTAssertEqual(result, .deviceFailed, what)
                    failedBefore = true
                    failures += 1
                }
            }
            let lines = log.text.split(separator: "\n").filter { $0.contains("device failed") }
            XCTAssertEqual(lines.count, failedBefore ? 1 : 0, "seed \(seed): \(log.text)")
        }
        XCTAssertGreaterThan(failures, 20, "most runs met a lie the driver caught")
    }

    func testTimeoutKernelArgument() throws {
        XCTAssertEqual(try VirtIOBlockLimits.timeoutSeconds(try KernelCommandLine(parsing: Array("service=hello".utf8))), 30)
        XCTAssertEqual(try VirtIOBlockLimits.timeoutSeconds(try KernelCommandLine(parsing: Array("blk-timeout=5".utf8))), 5)
        XCTAssertThrowsError(try VirtIOBlockLimits.timeoutSeconds(try KernelCommandLine(parsing: Array("blk-timeout=0".utf8))))
        XCTAssertThrowsError(try VirtIOBlockLimits.timeoutSeconds(try KernelCommandLine(parsing: Array("blk-timeout=soon".utf8))))
    }
}
