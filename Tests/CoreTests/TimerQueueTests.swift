// TimerQueue: deadline order against a sorted model, ties in insertion order, removal,
// `popExpired(now:)` against the clock, and that it releases what it drops.
import XCTest
import TestSupport
@testable import Core

/// A stand-in that reports its deinit (Tracker.swift).
private typealias Sleeper = Tracked

/// The reference: entries sorted by (deadline, insertion number).
private struct Model {
    var entries: [(deadline: UInt64, order: Int, sleeper: Sleeper)] = []
    var inserted = 0

    mutating func insert(_ sleeper: Sleeper, deadline: UInt64) {
        // After every entry with a deadline <= this one: later insertions sort later.
        var low = 0, high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].deadline <= deadline { low = middle + 1 } else { high = middle }
        }
        entries.insert((deadline, inserted, sleeper), at: low)
        inserted += 1
    }

    mutating func popExpired(now: UInt64) -> Sleeper? {
        guard let first = entries.first, first.deadline <= now else { return nil }
        return entries.removeFirst().sleeper
    }

    /// Removes the earliest entry of `sleeper`.
    mutating func remove(_ sleeper: Sleeper) -> Bool {
        guard let index = entries.firstIndex(where: { $0.sleeper === sleeper }) else { return false }
        entries.remove(at: index)
        return true
    }
}

final class TimerQueueTests: XCTestCase {
    func testEmptyQueue() {
        var queue = TimerQueue<Sleeper>()
        XCTAssertTrue(queue.isEmpty)
        XCTAssertEqual(queue.count, 0)
        XCTAssertNil(queue.nextDeadline)
        XCTAssertNil(queue.popExpired(now: .max))
        XCTAssertFalse(queue.remove(Sleeper(0)))
    }

    func testRandomDeadlinesPopInSortedOrder() {
        var rng = RNG(seed: 1)
        var queue = TimerQueue<Sleeper>()
        var model = Model()
        for id in 0..<2000 {
            let sleeper = Sleeper(id)
            // A narrow range, so many deadlines tie.
            let deadline = UInt64(rng.below(300)) * 1_000
            queue.insert(sleeper, deadline: deadline)
            model.insert(sleeper, deadline: deadline)
        }
        XCTAssertEqual(queue.count, 2000)
        while !model.entries.isEmpty {
            XCTAssertEqual(queue.nextDeadline, model.entries.first?.deadline)
            XCTAssertTrue(queue.popExpired(now: .max) === model.popExpired(now: .max))
        }
        XCTAssertNil(queue.nextDeadline)
        XCTAssertTrue(queue.isEmpty)
    }

    func testTiesWakeInInsertionOrder() {
        var queue = TimerQueue<Sleeper>()
        let sleepers = (0..<50).map { Sleeper($0) }
        queue.insert(Sleeper(-1), deadline: 500)
        for sleeper in sleepers { queue.insert(sleeper, deadline: 100) }
        queue.insert(Sleeper(-2), deadline: 50)
        XCTAssertEqual(queue.popExpired(now: 100)?.id, -2)
        for sleeper in sleepers { XCTAssertTrue(queue.popExpired(now: 100) === sleeper) }
        XCTAssertNil(queue.popExpired(now: 100))
        XCTAssertEqual(queue.nextDeadline, 500)
    }

    func testPopExpiredHonoursNow() {
        var queue = TimerQueue<Sleeper>()
        for (id, deadline) in [(0, 30), (1, 10), (2, 20), (3, 20), (4, 40)] {
            queue.insert(Sleeper(id), deadline: UInt64(deadline))
        }
        XCTAssertNil(queue.popExpired(now: 9))
        XCTAssertEqual(queue.nextDeadline, 10)
        XCTAssertEqual(queue.popExpired(now: 10)?.id, 1, "a deadline equal to now has expired")
        XCTAssertNil(queue.popExpired(now: 19))
        XCTAssertEqual(queue.popExpired(now: 25)?.id, 2)
        XCTAssertEqual(queue.popExpired(now: 25)?.id, 3)
        XCTAssertNil(queue.popExpired(now: 25))
        XCTAssertEqual(queue.nextDeadline, 30)
        XCTAssertEqual(queue.popExpired(now: 1_000)?.id, 0)
        XCTAssertEqual(queue.popExpired(now: 1_000)?.id, 4)
        XCTAssertNil(queue.popExpired(now: 1_000))
        // A deadline in the past expires at once; 0 and .max are ordinary values.
        queue.insert(Sleeper(5), deadline: .max)
        queue.insert(Sleeper(6), deadline: 0)
        XCTAssertEqual(queue.popExpired(now: 0)?.id, 6)
        XCTAssertNil(queue.popExpired(now: .max - 1))
        XCTAssertEqual(queue.popExpired(now: .max)?.id, 5)
    }

    func testRemove() {
        var queue = TimerQueue<Sleeper>()
        let sleepers = (0..<8).map { Sleeper($0) }
        for (i, sleeper) in sleepers.enumerated() { queue.insert(sleeper, deadline: UInt64(80 - i * 10)) }
        XCTAssertEqual(queue.nextDeadline, 10)
        XCTAssertTrue(queue.remove(sleepers[7]))  // the root
        XCTAssertEqual(queue.nextDeadline, 20)
        XCTAssertTrue(queue.remove(sleepers[0]))  // a leaf
        XCTAssertTrue(queue.remove(sleepers[3]))  // inside
        XCTAssertFalse(queue.remove(sleepers[3]))
        XCTAssertFalse(queue.contains(sleepers[3]))
        XCTAssertEqual(queue.deadline(of: sleepers[4]), 40)
        XCTAssertNil(queue.deadline(of: sleepers[3]))
        XCTAssertEqual(queue.count, 5)
        var order: [Int] = []
        while let sleeper = queue.popExpired(now: .max) { order.append(sleeper.id) }
        XCTAssertEqual(order, [6, 5, 4, 2, 1])
    }

    func testSameObjectTwiceRemovesEarliestEntry() {
        var queue = TimerQueue<Sleeper>()
        let a = Sleeper(1)
        queue.insert(a, deadline: 300)
        queue.insert(Sleeper(2), deadline: 200)
        queue.insert(a, deadline: 100)
        XCTAssertEqual(queue.deadline(of: a), 100)
        XCTAssertTrue(queue.remove(a))
        XCTAssertEqual(queue.deadline(of: a), 300)
        XCTAssertEqual(queue.popExpired(now: .max)?.id, 2)
        XCTAssertTrue(queue.popExpired(now: .max) === a)
    }

    /// Random inserts, expiries against an advancing clock, and removals, against the model.
    func testRandomOperationsAgainstModel() {
        var rng = RNG(seed: 99)
        var queue = TimerQueue<Sleeper>()
        var model = Model()
        var now: UInt64 = 0
        var nextID = 0
        for _ in 0..<20_000 {
            switch rng.below(10) {
            case 0..<5:
                let sleeper = Sleeper(nextID)
                nextID += 1
                let deadline = now + UInt64(rng.below(50))
                queue.insert(sleeper, deadline: deadline)
                model.insert(sleeper, deadline: deadline)
            case 5..<8:
                now += UInt64(rng.below(10))
                XCTAssertTrue(queue.popExpired(now: now) === model.popExpired(now: now))
            default:
                guard !model.entries.isEmpty else { continue }
                let victim = model.entries[rng.below(model.entries.count)].sleeper
                XCTAssertTrue(queue.remove(victim))
                XCTAssertTrue(model.remove(victim))
            }
            XCTAssertEqual(queue.count, model.entries.count)
            XCTAssertEqual(queue.nextDeadline, model.entries.first?.deadline)
        }
        while let expected = model.popExpired(now: .max) {
            XCTAssertTrue(queue.popExpired(now: .max) === expected)
        }
        XCTAssertTrue(queue.isEmpty)
    }

    func testReleasesItsReferences() {
        let tracker = Tracker()
        do {
            var queue = TimerQueue<Sleeper>()
            for id in 0..<30 { queue.insert(Sleeper(id, tracker: tracker), deadline: UInt64(id)) }
            XCTAssertEqual(tracker.deinits, 0)
            _ = queue.popExpired(now: 4)
            XCTAssertEqual(tracker.deinits, 1)
            while queue.popExpired(now: 4) != nil {}
            XCTAssertEqual(tracker.deinits, 5)
            let victim = Sleeper(100, tracker: tracker)
            queue.insert(victim, deadline: 7)
            withExtendedLifetime(victim) {
                XCTAssertTrue(queue.remove(victim))
                XCTAssertEqual(tracker.deinits, 5, "the caller still holds it")
            }
            queue.removeAll()
            XCTAssertEqual(tracker.deinits, 30)
            for id in 0..<10 { queue.insert(Sleeper(id, tracker: tracker), deadline: 1) }
        }
        XCTAssertEqual(tracker.deinits, 41, "dropping the queue releases what it held")
    }
}
