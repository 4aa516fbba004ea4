// RunQueue: FIFO order, identity removal, growth, and that it releases what it drops.
import XCTest
import TestSupport
@testable import Core

/// A stand-in that reports its deinit (Tracker.swift).
private typealias Token = Tracked

final class RunQueueTests: XCTestCase {
    func testEmptyQueue() {
        var queue = RunQueue<Token>()
        XCTAssertTrue(queue.isEmpty)
        XCTAssertEqual(queue.count, 0)
        XCTAssertNil(queue.first)
        XCTAssertNil(queue.pop())
        XCTAssertFalse(queue.remove(Token(0)))
    }

    func testFIFOOrder() {
        var queue = RunQueue<Token>()
        let tokens = (0..<10).map { Token($0) }
        for token in tokens { queue.push(token) }
        XCTAssertEqual(queue.count, 10)
        XCTAssertTrue(queue.first === tokens[0])
        for token in tokens { XCTAssertTrue(queue.pop() === token) }
        XCTAssertNil(queue.pop())
        XCTAssertTrue(queue.isEmpty)
    }

    /// Interleaved pushes and pops wrap the ring many times without growing it.
    func testWraparoundKeepsOrderAndCapacity() {
        var queue = RunQueue<Token>(initialCapacity: 4)
        let tokens = (0..<1000).map { Token($0) }
        var next = 0
        for (i, token) in tokens.enumerated() {
            queue.push(token)
            if i % 3 != 0 || queue.count == 4 {
                XCTAssertEqual(queue.pop()?.id, next)
                next += 1
            }
        }
        while let token = queue.pop() {
            XCTAssertEqual(token.id, next)
            next += 1
        }
        XCTAssertEqual(next, 1000)
        XCTAssertEqual(queue.capacity, 4)
    }

    func testGrowthPastInitialCapacityKeepsOrder() {
        var queue = RunQueue<Token>(initialCapacity: 4)
        XCTAssertEqual(queue.capacity, 4)
        // Rotate the head off index 0 first, so growth must unroll a wrapped ring.
        for id in 0..<3 { queue.push(Token(-1 - id)) }
        for _ in 0..<3 { _ = queue.pop() }
        let tokens = (0..<100).map { Token($0) }
        for token in tokens { queue.push(token) }
        XCTAssertEqual(queue.count, 100)
        XCTAssertEqual(queue.capacity, 128)
        for token in tokens { XCTAssertTrue(queue.pop() === token) }
        XCTAssertTrue(queue.isEmpty)
    }

    func testInitialCapacityRoundsUpToPowerOfTwo() {
        XCTAssertEqual(RunQueue<Token>(initialCapacity: 0).capacity, 4)
        XCTAssertEqual(RunQueue<Token>(initialCapacity: 5).capacity, 8)
        XCTAssertEqual(RunQueue<Token>(initialCapacity: 64).capacity, 64)
    }

    func testRemoveByIdentityKeepsOthersInOrder() {
        var queue = RunQueue<Token>(initialCapacity: 8)
        // Wrap the window around the end of the storage.
        for id in 0..<6 { queue.push(Token(100 + id)) }
        for _ in 0..<6 { _ = queue.pop() }
        let tokens = (0..<7).map { Token($0) }
        for token in tokens { queue.push(token) }

        XCTAssertFalse(queue.remove(Token(3)), "an equal id is not the same object")
        XCTAssertTrue(queue.remove(tokens[3]))  // middle
        XCTAssertFalse(queue.remove(tokens[3]))
        XCTAssertTrue(queue.remove(tokens[0]))  // head
        XCTAssertTrue(queue.remove(tokens[6]))  // tail
        XCTAssertFalse(queue.contains(tokens[6]))
        XCTAssertTrue(queue.contains(tokens[1]))
        XCTAssertEqual(queue.count, 4)
        var order: [Int] = []
        while let token = queue.pop() { order.append(token.id) }
        XCTAssertEqual(order, [1, 2, 4, 5])
    }

    func testSameObjectTwiceGivesTwoEntries() {
        var queue = RunQueue<Token>()
        let a = Token(1), b = Token(2)
        queue.push(a)
        queue.push(b)
        queue.push(a)
        XCTAssertTrue(queue.remove(a))  // the oldest entry
        XCTAssertTrue(queue.pop() === b)
        XCTAssertTrue(queue.pop() === a)
        XCTAssertNil(queue.pop())
    }

    /// Popped, removed, cleared and dropped entries are all released (no leaks), and the
    /// queue keeps nothing alive after an entry leaves it.
    func testReleasesItsReferences() {
        let tracker = Tracker()
        do {
            var queue = RunQueue<Token>(initialCapacity: 4)
            for id in 0..<20 { queue.push(Token(id, tracker: tracker)) }  // grows twice
            XCTAssertEqual(tracker.deinits, 0)
            _ = queue.pop()
            XCTAssertEqual(tracker.deinits, 1, "a popped token nobody holds dies at once")
            do {
                let third = queue.pop()!
                XCTAssertEqual(third.id, 1)
                queue.push(third)
            }
            // Remove the token with id 5 without holding it beyond the call.
            var victim: Token? = nil
            for _ in 0..<queue.count {
                let token = queue.pop()!
                if token.id == 5 { victim = token }
                queue.push(token)
            }
            XCTAssertTrue(queue.remove(victim!))
            victim = nil
            XCTAssertEqual(tracker.deinits, 2)
            for _ in 0..<5 { _ = queue.pop() }
            XCTAssertEqual(tracker.deinits, 7)
            queue.removeAll()
            XCTAssertEqual(tracker.deinits, 20)
            XCTAssertTrue(queue.isEmpty)
            for id in 0..<10 { queue.push(Token(id, tracker: tracker)) }
        }
        XCTAssertEqual(tracker.deinits, 30, "dropping the queue releases what it held")
    }

    /// Random operations against an Array model.
    func testRandomOperationsAgainstModel() {
        var rng = RNG(seed: 7)
        var queue = RunQueue<Token>(initialCapacity: 4)
        var model: [Token] = []
        var nextID = 0
        for _ in 0..<20_000 {
            switch rng.below(10) {
            case 0..<5:
                let token = Token(nextID)
                nextID += 1
                queue.push(token)
                model.append(token)
            case 5..<8:
                let popped = queue.pop()
                XCTAssertTrue(popped === (model.isEmpty ? nil : model.removeFirst()))
            default:
                guard !model.isEmpty else { continue }
                let index = rng.below(model.count)
                XCTAssertTrue(queue.remove(model[index]))
                model.remove(at: index)
            }
            XCTAssertEqual(queue.count, model.count)
        }
        for token in model { XCTAssertTrue(queue.pop() === token) }
        XCTAssertTrue(queue.isEmpty)
    }
}

