import XCTest
@testable import Core

/// The admission rule every listener applies (ConnectionLimits.swift), the burst counter
/// behind its log lines, the strict numeric kernel arguments, and the memory budget.
final class ConnectionLimitsTests: XCTestCase {
    final class Peer: IdleTracked {
        var lastActivity: UInt64
        var isAwaitingPeer: Bool
        var peerHasSpoken: Bool
        init(_ at: UInt64, awaiting: Bool = true, spoken: Bool = true) {
            lastActivity = at; isAwaitingPeer = awaiting; peerHasSpoken = spoken
        }
    }

    let second: UInt64 = 1_000_000_000

    func testAdmitsUpToTheLimitThenRefusesWhileEveryoneIsActive() {
        var table = ConnectionTable<Peer>(limits: ConnectionLimits(maximumConnections: 3, backlog: 8, idleTimeout: 60 * second))
        for _ in 0..<3 {
            guard case .admit = table.decide(pending: 0, now: 10 * second, memoryAdmits: true) else { return XCTFail("refused below the limit") }
            table.add(Peer(10 * second))
        }
        guard case .refuse(.connectionLimit) = table.decide(pending: 0, now: 10 * second + second / 2, memoryAdmits: true) else {
            return XCTFail("admitted beyond the limit although nobody was silent for 1 s")
        }
        XCTAssertTrue(table.refusalOpensBurst)
        guard case .refuse(.connectionLimit) = table.decide(pending: 0, now: 10 * second + second / 2 + 1, memoryAdmits: true) else {
            return XCTFail("second refusal")
        }
        XCTAssertFalse(table.refusalOpensBurst, "one log line per burst")
        XCTAssertEqual(table.refusals.total, 2)
        XCTAssertEqual(table.live.count, 3)
    }

    func testAtTheLimitTheConnectionSilentLongestMakesRoom() {
        var table = ConnectionTable<Peer>(limits: ConnectionLimits(maximumConnections: 3, backlog: 8, idleTimeout: 60 * second))
        let peers = [Peer(5 * second), Peer(2 * second), Peer(19 * second)]
        for peer in peers { table.add(peer) }
        guard case .evict(let victim) = table.decide(pending: 0, now: 20 * second, memoryAdmits: true) else {
            return XCTFail("no eviction at the limit")
        }
        XCTAssertTrue(victim === peers[1], "the one silent longest")
        XCTAssertEqual(table.live.count, 2)
        XCTAssertEqual(table.evictions, 1)
        table.add(Peer(20 * second))
        guard case .evict(let next) = table.decide(pending: 0, now: 20 * second, memoryAdmits: true) else { return XCTFail() }
        XCTAssertTrue(next === peers[0])
        table.add(Peer(20 * second))
        // peers[2] talked 1 s ago, the newcomers just now: nobody has been silent for 10 s.
        guard case .refuse(.connectionLimit) = table.decide(pending: 0, now: 20 * second, memoryAdmits: true) else {
            return XCTFail("evicted a connection that talked within the last 10 s")
        }
    }

    func testAConnectionThatNeverSpokeGoesFirstEvenIfItIsYoung() {
        var table = ConnectionTable<Peer>(limits: ConnectionLimits(maximumConnections: 3, backlog: 8, idleTimeout: 60 * second))
        let talker = Peer(0)                                  // silent 10 s, but it talked
        let mute = [Peer(7 * second, spoken: false), Peer(6 * second, spoken: false)]
        table.add(talker)
        for peer in mute { table.add(peer) }
        guard case .evict(let first) = table.decide(pending: 0, now: 10 * second, memoryAdmits: true) else { return XCTFail() }
        XCTAssertTrue(first === mute[1], "the oldest of those that never sent a byte")
        table.add(Peer(10 * second, spoken: true))
        guard case .evict(let victim) = table.decide(pending: 0, now: 10 * second, memoryAdmits: true) else { return XCTFail() }
        XCTAssertTrue(victim === mute[0])
        table.add(Peer(10 * second, spoken: true))
        guard case .evict(let third) = table.decide(pending: 0, now: 10 * second, memoryAdmits: true) else { return XCTFail() }
        XCTAssertTrue(third === talker, "then the one silent longest")
    }

    func testAConnectionThatHasNotSpokenYetHasTwoSecondsOfGrace() {
        var table = ConnectionTable<Peer>(limits: ConnectionLimits(maximumConnections: 1, backlog: 8, idleTimeout: 60 * second))
        table.add(Peer(10 * second, spoken: false))   // its first request may still be in the ring
        guard case .refuse(.connectionLimit) = table.decide(pending: 0, now: 11 * second, memoryAdmits: true) else {
            return XCTFail("evicted a connection 1 s old for not having spoken")
        }
        guard case .evict = table.decide(pending: 0, now: 12 * second, memoryAdmits: true) else { return XCTFail() }
    }

    func testAConnectionWeAreStillAnsweringIsNeverEvicted() {
        var table = ConnectionTable<Peer>(limits: ConnectionLimits(maximumConnections: 2, backlog: 8, idleTimeout: 60 * second))
        table.add(Peer(1 * second, awaiting: false))   // its request is being answered
        table.add(Peer(3 * second, awaiting: true))
        guard case .evict(let victim) = table.decide(pending: 0, now: 20 * second, memoryAdmits: true) else { return XCTFail() }
        XCTAssertEqual(victim.lastActivity, 3 * second, "the busy one was older but is waiting for us")
        table.add(Peer(10 * second, awaiting: false))
        guard case .refuse(.connectionLimit) = table.decide(pending: 0, now: 30 * second, memoryAdmits: true) else {
            return XCTFail("only connections that wait for their peer may go")
        }
        XCTAssertFalse(table.live.isEmpty)
    }

    func testShortMemoryEvictsOnlyAFewAtATimeUntilTheirMemoryIsBack() {
        var table = ConnectionTable<Peer>(limits: ConnectionLimits(maximumConnections: 100, backlog: 8, idleTimeout: 60 * second))
        for _ in 0..<10 { table.add(Peer(0, spoken: false)) }
        for _ in 0..<ConnectionTable<Peer>.maximumDraining {
            guard case .evict = table.decide(pending: 0, now: 3 * second, memoryAdmits: false) else { return XCTFail() }
        }
        guard case .refuse(.memory) = table.decide(pending: 0, now: 3 * second, memoryAdmits: false) else {
            return XCTFail("evicted more while the earlier victims still hold their memory")
        }
        table.released()
        guard case .evict = table.decide(pending: 0, now: 3 * second, memoryAdmits: false) else { return XCTFail() }
        XCTAssertEqual(table.draining, ConnectionTable<Peer>.maximumDraining)
    }

    func testAFullBacklogRefusesEvenBelowTheLimit() {
        var table = ConnectionTable<Peer>(limits: ConnectionLimits(maximumConnections: 100, backlog: 2, idleTimeout: 0))
        guard case .refuse(.backlogFull) = table.decide(pending: 2, now: 0, memoryAdmits: true) else { return XCTFail() }
        guard case .admit = table.decide(pending: 1, now: 0, memoryAdmits: true) else { return XCTFail() }
    }

    func testShortMemoryRefusesUnlessASilentConnectionCanGo() {
        var table = ConnectionTable<Peer>(limits: ConnectionLimits(maximumConnections: 100, backlog: 8, idleTimeout: 60 * second))
        table.add(Peer(8 * second))
        guard case .refuse(.memory) = table.decide(pending: 0, now: 8 * second, memoryAdmits: false) else { return XCTFail() }
        guard case .evict = table.decide(pending: 0, now: 18 * second, memoryAdmits: false) else { return XCTFail() }
    }

    func testAdmissionAfterAQuietSecondEndsTheBurstWithItsCount() {
        var table = ConnectionTable<Peer>(limits: ConnectionLimits(maximumConnections: 1, backlog: 8, idleTimeout: 0))
        table.add(Peer(0))
        for i in 0..<5 { _ = table.decide(pending: 0, now: UInt64(i) * 1000, memoryAdmits: true) }
        table.remove(table.live[0])
        guard case .admit = table.decide(pending: 0, now: 5000, memoryAdmits: true) else { return XCTFail() }
        XCTAssertNil(table.endedBurst, "the burst is not over until a quiet second has passed")
        table.add(Peer(0))
        table.remove(table.live[0])
        guard case .admit = table.decide(pending: 0, now: 2 * second, memoryAdmits: true) else { return XCTFail() }
        XCTAssertEqual(table.endedBurst, 5)
    }

    func testLimitsKeepTheBacklogWithinTheLimit() {
        let limits = ConnectionLimits(maximumConnections: 4, backlog: 64, idleTimeout: 0)
        XCTAssertEqual(limits.backlog, 4)
        XCTAssertEqual(limits.evictAfter, 10 * second)
        XCTAssertEqual(ConnectionLimits(maximumConnections: 4, backlog: 1, idleTimeout: 3 * second).evictAfter, 3 * second)
    }

    func testLimitsFromTheCommandLine() throws {
        let line = try KernelCommandLine(parsing: Array("service=kv max-conns=12 backlog=3 idle-timeout=5".utf8))
        XCTAssertEqual(try ConnectionLimits(commandLine: line),
                       ConnectionLimits(maximumConnections: 12, backlog: 3, idleTimeout: 5 * second))
        let defaults = try ConnectionLimits(commandLine: KernelCommandLine(parsing: Array("service=kv".utf8)))
        XCTAssertEqual(defaults.idleTimeout, 60 * second)
        XCTAssertEqual(defaults.backlog, min(64, defaults.maximumConnections))
    }

    func testNumericArgumentsAreStrict() throws {
        let line = try KernelCommandLine(parsing: Array("a=12 b=12x c= d e=99999999999999999999 f=0".utf8))
        XCTAssertEqual(try line.number("a"), 12)
        XCTAssertNil(try line.number("absent"))
        XCTAssertThrowsError(try line.number("b")) { XCTAssertEqual($0 as? KernelArgumentError, .notANumber(key: "b")) }
        XCTAssertThrowsError(try line.number("c")) { XCTAssertEqual($0 as? KernelArgumentError, .notANumber(key: "c")) }
        XCTAssertThrowsError(try line.number("d")) { XCTAssertEqual($0 as? KernelArgumentError, .notANumber(key: "d")) }
        XCTAssertThrowsError(try line.number("e")) { XCTAssertEqual($0 as? KernelArgumentError, .notANumber(key: "e")) }
        XCTAssertThrowsError(try line.number("f", minimum: 1, maximum: 5)) {
            XCTAssertEqual($0 as? KernelArgumentError, .outOfRange(key: "f", minimum: 1, maximum: 5))
        }
        XCTAssertThrowsError(try ConnectionLimits(commandLine: KernelCommandLine(parsing: Array("max-conns=0".utf8))))
    }

    func testRefusalBurstsOpenAfterAQuietSecond() {
        var burst = RefusalBurst()
        XCTAssertTrue(burst.refuse(now: 100))
        XCTAssertFalse(burst.refuse(now: 200))
        XCTAssertFalse(burst.refuse(now: 100 + second / 2))
        XCTAssertNil(burst.admitted(now: 100 + second / 2 + 1))
        XCTAssertTrue(burst.refuse(now: 100 + 2 * second), "a refusal after a quiet second opens a new burst")
        XCTAssertEqual(burst.admitted(now: 100 + 4 * second), 1)
        XCTAssertEqual(burst.total, 4)
        XCTAssertNil(burst.admitted(now: 100 + 5 * second))
    }

    func testMemoryBudgetKeepsItsReserve() {
        MemoryBudget.isEnforced = true
        MemoryBudget.availableOverride = 10 << 20
        MemoryBudget.reserveOverride = 4 << 20
        defer { MemoryBudget.isEnforced = false; MemoryBudget.reserveOverride = nil; MemoryBudget.availableOverride = nil }
        let before = MemoryBudget.refusals
        XCTAssertTrue(MemoryBudget.admit(6 << 20, for: "a test"))
        XCTAssertFalse(MemoryBudget.admit((6 << 20) + 1, for: "a test"), "new work never takes the reserve")
        XCTAssertEqual(MemoryBudget.refusals, before + 1)
        XCTAssertTrue(MemoryBudget.grow(8 << 20, for: "a test"), "admitted work may grow into the upper half of the reserve")
        XCTAssertFalse(MemoryBudget.grow((8 << 20) + 1, for: "a test"), "never into the lower half")
        MemoryBudget.isEnforced = false
        XCTAssertTrue(MemoryBudget.admit(Int.max / 2, for: "a test"), "not enforced: the host's allocator answers")
    }
}
