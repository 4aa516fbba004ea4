// ARPCache on a virtual clock: entries, the merge rule, expiry and renewal, resolutions
// with their retries and give-up, and every bound (table, resolutions, waiting frames).
@testable import Inet
import Wire
import XCTest

let second: UInt64 = 1_000_000_000

final class ARPCacheTests: XCTestCase {
    let a = IPv4Address(10, 0, 2, 2)
    let b = IPv4Address(10, 0, 2, 3)
    let macA = MACAddress(0x52, 0x55, 0x0A, 0x00, 0x02, 0x02)
    let macB = MACAddress(0x52, 0x55, 0x0A, 0x00, 0x02, 0x03)

    /// Queues a frame of `length` bytes whose first byte is `mark`.
    @discardableResult
    func enqueue(_ cache: ARPCache, _ mark: UInt8, for address: IPv4Address, now: UInt64, length: Int = 60) -> Bool {
        var frame = [UInt8](repeating: 0, count: length)
        frame[0] = mark
        return frame.withUnsafeBytes { cache.enqueue($0, for: address, now: now) }
    }

    /// The first byte of each frame released for `address`, oldest first.
    func release(_ cache: ARPCache, _ address: IPv4Address) -> [UInt8] {
        var marks: [UInt8] = []
        cache.releaseFrames(for: address) { marks.append($0[0]) }
        return marks
    }

    func testMergeUpdatesOnlyKnownEntriesAndCreateAdds() {
        let cache = ARPCache()
        XCTAssertFalse(cache.update(a, mac: macA, now: 0, create: false), "the merge adds nothing")
        XCTAssertNil(cache.lookup(a, now: 0))
        XCTAssertTrue(cache.update(a, mac: macA, now: 0, create: true))
        XCTAssertEqual(cache.lookup(a, now: 1)?.mac, macA)
        XCTAssertTrue(cache.update(a, mac: macB, now: 10 * second, create: false), "a known sender is merged")
        XCTAssertEqual(cache.lookup(a, now: 11 * second)?.mac, macB)
        XCTAssertEqual(cache.counters.learned, 1)
        XCTAssertEqual(cache.counters.updated, 1)
    }

    func testEntriesExpireAndAskForRenewalOnce() {
        let cache = ARPCache()
        cache.update(a, mac: macA, now: 0, create: true)
        XCTAssertEqual(cache.lookup(a, now: 54 * second)?.refresh, false)
        XCTAssertEqual(cache.lookup(a, now: 55 * second)?.refresh, true, "the last 5 s of 60 ask for a renewal")
        XCTAssertEqual(cache.lookup(a, now: 56 * second)?.refresh, false, "once")
        XCTAssertNil(cache.lookup(a, now: 60 * second), "expired")
        cache.update(a, mac: macA, now: 59 * second, create: false)
        XCTAssertEqual(cache.lookup(a, now: 60 * second)?.refresh, false, "a confirmation restarts the lifetime")
        XCTAssertEqual(cache.lookup(a, now: 114 * second)?.refresh, true)
        cache.tick(now: 119 * second) { _ in XCTFail("no resolution") }
        XCTAssertEqual(cache.count, 0, "tick removes expired entries")
        XCTAssertEqual(cache.counters.expired, 1)
    }

    func testFullTableEvictsTheOldestEntry() {
        let cache = ARPCache(limits: ARPLimits(entries: 4))
        for host in 1 ... 4 { cache.update(IPv4Address(10, 0, 2, UInt8(host)), mac: macA, now: UInt64(host), create: true) }
        cache.update(IPv4Address(10, 0, 2, 1), mac: macB, now: 10, create: false)   // a refresh does not make it younger
        cache.update(IPv4Address(10, 0, 2, 9), mac: macB, now: 20, create: true)
        XCTAssertEqual(cache.count, 4)
        XCTAssertNil(cache.lookup(IPv4Address(10, 0, 2, 1), now: 21), "learned first, evicted first")
        XCTAssertNotNil(cache.lookup(IPv4Address(10, 0, 2, 9), now: 21))
        XCTAssertEqual(cache.counters.evicted, 1)
        for host in 100 ..< 200 { cache.update(IPv4Address(10, 0, 2, UInt8(host)), mac: macA, now: UInt64(host), create: true) }
        XCTAssertEqual(cache.count, 4, "a flood of senders stays within the table")
    }

    func testResolutionRetriesEverySecondAndGivesUpAfterThreeTries() {
        let cache = ARPCache()
        XCTAssertTrue(enqueue(cache, 1, for: a, now: 0), "a new resolution: send the first request")
        XCTAssertFalse(enqueue(cache, 2, for: a, now: 100), "already under way")
        XCTAssertEqual(cache.nextDeadline, second)
        var asked: [(UInt64, IPv4Address)] = []
        for now in stride(from: 0, through: 4 * second, by: Int(second / 4)) {
            cache.tick(now: now) { asked.append((now, $0)) }
        }
        XCTAssertEqual(asked.map(\.0), [second, 2 * second], "tries 2 and 3 a second apart")
        XCTAssertEqual(asked.map(\.1), [a, a])
        XCTAssertTrue(cache.resolving.isEmpty, "gave up at 3 s")
        XCTAssertNil(cache.nextDeadline)
        XCTAssertEqual(cache.counters.resolutionsFailed, 1)
        XCTAssertEqual(cache.counters.framesDroppedUnresolved, 2)
        XCTAssertEqual(cache.waitingFrames, 0)
        XCTAssertTrue(enqueue(cache, 3, for: a, now: 5 * second), "a later send starts again")
    }

    func testReleaseHandsBackTheFramesInOrder() {
        let cache = ARPCache()
        enqueue(cache, 1, for: a, now: 0)
        enqueue(cache, 7, for: b, now: 0)
        enqueue(cache, 2, for: a, now: 1)
        enqueue(cache, 3, for: a, now: 2, length: 1514)
        XCTAssertEqual(release(cache, a), [1, 2, 3])
        XCTAssertEqual(cache.resolving, [b])
        XCTAssertEqual(release(cache, a), [])
        XCTAssertEqual(release(cache, b), [7])
        XCTAssertEqual(cache.waitingFrames, 0)
        XCTAssertEqual(cache.counters.framesQueued, 4)
    }

    func testWaitingFramesAreBoundedPerDestinationAndInAll() {
        let cache = ARPCache(limits: ARPLimits(resolutions: 8, framesPerDestination: 4, framesTotal: 6))
        for mark in 1 ... 6 { enqueue(cache, UInt8(mark), for: a, now: UInt64(mark)) }
        XCTAssertEqual(cache.waitingFrames, 4, "4 per destination: the oldest two dropped")
        XCTAssertEqual(cache.counters.framesDroppedFull, 2)
        for mark in 11 ... 14 { enqueue(cache, UInt8(mark), for: b, now: UInt64(mark)) }
        XCTAssertEqual(cache.waitingFrames, 6, "6 in all: the oldest of any destination dropped")
        XCTAssertEqual(cache.counters.framesDroppedFull, 4)
        XCTAssertEqual(release(cache, a), [5, 6])
        XCTAssertEqual(release(cache, b), [11, 12, 13, 14])
        enqueue(cache, 9, for: a, now: 100, length: 1515)
        XCTAssertEqual(cache.waitingFrames, 0, "a frame longer than a slot is refused")
        XCTAssertEqual(cache.counters.framesDroppedFull, 5)
    }

    func testResolutionsAreBounded() {
        let cache = ARPCache(limits: ARPLimits(resolutions: 3))
        for host in 1 ... 5 { enqueue(cache, UInt8(host), for: IPv4Address(10, 0, 2, UInt8(host)), now: UInt64(host)) }
        XCTAssertEqual(cache.resolving, [IPv4Address(10, 0, 2, 3), IPv4Address(10, 0, 2, 4), IPv4Address(10, 0, 2, 5)])
        XCTAssertEqual(cache.counters.resolutionsEvicted, 2)
        XCTAssertEqual(cache.counters.framesDroppedUnresolved, 2, "the evicted resolutions' frames")
        XCTAssertEqual(cache.waitingFrames, 3)
    }
}
