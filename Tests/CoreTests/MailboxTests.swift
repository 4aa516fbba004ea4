// Mailboxes: the SPSC ring's full/empty edges and wraparound, the matrix's round-robin
// fairness and object hand-over, and concurrent stress on host threads standing in for
// CPUs (every message arrives exactly once, in order per source, fields intact).
import XCTest
import Foundation
import Synchronization
@testable import Core
#if canImport(Glibc)
import Glibc
#endif

/// Raised when a thread fails or the threads overrun their time, so spinning loops give up.
private final class StopFlag: Sendable {
    let raised = Atomic<Bool>(false)
    var isRaised: Bool { raised.load(ordering: .relaxed) }
    func raise() { raised.store(true, ordering: .relaxed) }
}

/// What one thread saw; written by that thread only, read after it is joined.
private final class Report: @unchecked Sendable {
    let stop: StopFlag
    var received = 0
    var failure: String? = nil
    init(stop: StopFlag) { self.stop = stop }
    /// Records the first failure and stops the other threads.
    func fail(_ text: String) {
        if failure == nil { failure = text }
        stop.raise()
    }
}

/// Counts deinitialised parcels from any thread.
private final class ParcelCounter: Sendable {
    let deinits = Atomic<Int>(0)
}

/// An object whose ownership travels inside a message.
private final class Parcel {
    let source: Int
    let sequence: Int
    let counter: ParcelCounter
    init(source: Int, sequence: Int, counter: ParcelCounter) {
        self.source = source
        self.sequence = sequence
        self.counter = counter
    }
    deinit { counter.deinits.add(1, ordering: .relaxed) }
}

/// Starts one host thread per body and joins them; false (after raising `stop`) when
/// they do not all finish within `timeout` seconds.
private func runThreads(_ bodies: [@Sendable () -> Void], stop: StopFlag, timeout: Double = 30) -> Bool {
    let group = DispatchGroup()
    for body in bodies {
        group.enter()
        Thread {
            body()
            group.leave()
        }.start()
    }
    if group.wait(timeout: .now() + timeout) == .success { return true }
    stop.raise()
    _ = group.wait(timeout: .now() + 5)
    return false
}

/// A recognisable non-null pointer value; the rings never dereference `object`.
private func tag(_ source: Int, _ sequence: Int) -> UnsafeMutableRawPointer? {
    UnsafeMutableRawPointer(bitPattern: UInt(source) << 40 | UInt(sequence) << 4 | 8)
}

final class MailboxTests: XCTestCase {
    // MARK: Ring

    func testRingEmptyAndFullEdges() {
        let ring = MailboxRing(capacity: 4)
        XCTAssertEqual(ring.capacity, 4)
        XCTAssertTrue(ring.isEmpty)
        XCTAssertNil(ring.tryReceive())
        for i in 0..<4 { XCTAssertTrue(ring.trySend(Message(kind: 1, payload: UInt64(i)))) }
        XCTAssertEqual(ring.count, 4)
        XCTAssertFalse(ring.trySend(Message(kind: 1, payload: 99)), "a full ring refuses")
        XCTAssertFalse(ring.trySend(Message(kind: 1, payload: 99)))
        XCTAssertEqual(ring.tryReceive()?.payload, 0)
        XCTAssertTrue(ring.trySend(Message(kind: 1, payload: 4)), "one slot freed, one accepted")
        XCTAssertFalse(ring.trySend(Message(kind: 1, payload: 99)))
        for i in 1...4 { XCTAssertEqual(ring.tryReceive()?.payload, UInt64(i), "the refused message was not stored") }
        XCTAssertNil(ring.tryReceive())
        XCTAssertTrue(ring.isEmpty)
        XCTAssertEqual(ring.count, 0)
    }

    func testRingWrapsAroundManyTimesWithValuesIntact() {
        let ring = MailboxRing(capacity: 8)
        var sent = 0, received = 0
        var state: UInt64 = 12345
        while received < 200_000 {
            // A pseudo-random burst of sends, then of receives, to hit every fill level.
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let burst = Int(state >> 60)  // 0...15
            for _ in 0..<burst {
                let message = Message(kind: UInt32(truncatingIfNeeded: sent), source: sent % 5,
                                      payload: UInt64(sent) &* 0x9E37_79B9_7F4A_7C15, object: tag(1, sent))
                if ring.trySend(message) { sent += 1 } else { XCTAssertEqual(ring.count, 8); break }
            }
            for _ in 0..<Int((state >> 56) & 15) {
                guard let message = ring.tryReceive() else { XCTAssertEqual(sent, received); break }
                let expected = Message(kind: UInt32(truncatingIfNeeded: received), source: received % 5,
                                       payload: UInt64(received) &* 0x9E37_79B9_7F4A_7C15, object: tag(1, received))
                if message != expected { return XCTFail("message \(received) damaged: \(message)") }
                received += 1
            }
        }
    }

    func testMessageEquatable() {
        let a = Message(kind: 1, source: 2, payload: 3, object: tag(1, 1))
        XCTAssertEqual(a, Message(kind: 1, source: 2, payload: 3, object: tag(1, 1)))
        XCTAssertNotEqual(a, Message(kind: 1, source: 2, payload: 3, object: nil))
        XCTAssertEqual(Message(), Message(kind: 0, source: 0, payload: 0, object: nil))
    }

    // MARK: Matrix

    func testMatrixStampsSourceAndKeepsPairsApart() {
        let matrix = MailboxMatrix(cpus: 3, ringCapacity: 4)
        XCTAssertFalse(matrix.pending(at: 2))
        XCTAssertTrue(matrix.send(from: 1, to: 2, Message(kind: 5, source: 99, payload: 7)))
        XCTAssertTrue(matrix.pending(at: 2))
        XCTAssertFalse(matrix.pending(at: 1))
        XCTAssertNil(matrix.receive(at: 1))
        XCTAssertEqual(matrix.receive(at: 2), Message(kind: 5, source: 1, payload: 7))
        XCTAssertFalse(matrix.pending(at: 2))
        // The diagonal: a CPU posts to itself.
        XCTAssertTrue(matrix.send(from: 0, to: 0, Message(kind: 6)))
        XCTAssertEqual(matrix.receive(at: 0)?.kind, 6)
        // A full pair does not block the others.
        for _ in 0..<4 { XCTAssertTrue(matrix.send(from: 0, to: 1, Message())) }
        XCTAssertFalse(matrix.send(from: 0, to: 1, Message()))
        XCTAssertTrue(matrix.send(from: 2, to: 1, Message()))
        XCTAssertTrue(matrix.send(from: 0, to: 2, Message()))
        XCTAssertEqual(matrix.ring(from: 0, to: 1).count, 4)
    }

    func testReceiveIsRoundRobinAcrossSources() {
        let matrix = MailboxMatrix(cpus: 4)
        for sequence in 0..<10 {
            for source in [3, 1, 2] {
                XCTAssertTrue(matrix.send(from: source, to: 0, Message(payload: UInt64(sequence))))
            }
        }
        var sources: [Int] = []
        while let message = matrix.receive(at: 0) {
            sources.append(message.source)
            XCTAssertEqual(message.payload, UInt64(sources.count - 1) / 3)
        }
        XCTAssertEqual(sources, Array(repeating: [1, 2, 3], count: 10).flatMap { $0 })
    }

    /// A source with a full ring cannot starve one that sends a single message.
    func testBusySourceDoesNotStarveOthers() {
        let matrix = MailboxMatrix(cpus: 4, ringCapacity: 64)
        for i in 0..<64 { XCTAssertTrue(matrix.send(from: 1, to: 0, Message(payload: UInt64(i)))) }
        for _ in 0..<5 { XCTAssertEqual(matrix.receive(at: 0)?.source, 1) }
        XCTAssertTrue(matrix.send(from: 3, to: 0, Message(payload: 1000)))
        XCTAssertTrue(matrix.send(from: 0, to: 0, Message(payload: 2000)))
        // Last served was 1: the scan goes 2, 3, then 0, then back to 1.
        XCTAssertEqual(matrix.receive(at: 0)?.payload, 1000)
        XCTAssertEqual(matrix.receive(at: 0)?.payload, 2000)
        XCTAssertEqual(matrix.receive(at: 0)?.payload, 5)
    }

    /// `object` carries a +1 reference: the receiver's take balances the sender's retain,
    /// and a refused send leaves the reference with the sender.
    func testObjectOwnershipTravelsWithTheMessage() {
        let counter = ParcelCounter()
        let matrix = MailboxMatrix(cpus: 2, ringCapacity: 2)
        for sequence in 0..<3 {
            let object = Unmanaged.passRetained(Parcel(source: 0, sequence: sequence, counter: counter)).toOpaque()
            if !matrix.send(from: 0, to: 1, Message(kind: 1, object: object)) {
                XCTAssertEqual(sequence, 2, "the third does not fit")
                Unmanaged<Parcel>.fromOpaque(object).release()
            }
        }
        XCTAssertEqual(counter.deinits.load(ordering: .relaxed), 1, "the refused parcel went back to its sender")
        for sequence in 0..<2 {
            let message = matrix.receive(at: 1)!
            let parcel = Unmanaged<Parcel>.fromOpaque(message.object!).takeRetainedValue()
            XCTAssertEqual(parcel.sequence, sequence)
        }
        XCTAssertEqual(counter.deinits.load(ordering: .relaxed), 3, "every parcel freed exactly once")
    }

    // MARK: Concurrent stress

    /// CPUs 1-3 each send 200,000 numbered messages to CPU 0 (every 64th carries an
    /// object); CPU 0 receives them all, each exactly once and in order per source.
    func testThreeProducersOneConsumerStress() {
        let perSource = 200_000
        let matrix = MailboxMatrix(cpus: 4)
        let stop = StopFlag()
        let counter = ParcelCounter()
        let report = Report(stop: stop)
        var bodies: [@Sendable () -> Void] = []
        for source in 1...3 {
            bodies.append {
                var sequence = 0
                while sequence < perSource {
                    var object = tag(source, sequence)
                    if sequence % 64 == 0 {
                        object = Unmanaged.passRetained(Parcel(source: source, sequence: sequence, counter: counter)).toOpaque()
                    }
                    let message = Message(kind: UInt32(source), payload: UInt64(sequence), object: object)
                    while !matrix.send(from: source, to: 0, message) {
                        if stop.isRaised { return }
                        sched_yield()
                    }
                    sequence += 1
                }
            }
        }
        bodies.append {
            var next = [0, 0, 0, 0]
            while report.received < 3 * perSource {
                guard let message = matrix.receive(at: 0) else {
                    if stop.isRaised { return }
                    sched_yield()
                    continue
                }
                let source = message.source
                guard source >= 1 && source <= 3, message.kind == UInt32(source) else {
                    return report.fail("bad source \(source) or kind \(message.kind)")
                }
                let sequence = next[source]
                if message.payload != UInt64(sequence) {
                    return report.fail("from \(source): got \(message.payload), expected \(sequence)")
                }
                if sequence % 64 == 0 {
                    let parcel = Unmanaged<Parcel>.fromOpaque(message.object!).takeRetainedValue()
                    if parcel.source != source || parcel.sequence != sequence { return report.fail("parcel mismatch") }
                } else if message.object != tag(source, sequence) {
                    return report.fail("object field damaged")
                }
                next[source] += 1
                report.received += 1
            }
        }
        XCTAssertTrue(runThreads(bodies, stop: stop), "threads did not finish")
        XCTAssertNil(report.failure)
        XCTAssertEqual(report.received, 3 * perSource)
        XCTAssertFalse(matrix.pending(at: 0), "nothing left over")
        XCTAssertEqual(counter.deinits.load(ordering: .relaxed), 3 * ((perSource + 63) / 64))
    }

    /// Four CPUs each send 40,000 numbered messages to every other one while receiving
    /// their own; a CPU whose send is refused serves its inbox, so nobody deadlocks.
    func testAllToAllStress() {
        let cpus = 4
        let perPair = 40_000
        let matrix = MailboxMatrix(cpus: cpus, ringCapacity: 64)
        let stop = StopFlag()
        let reports = (0..<cpus).map { _ in Report(stop: stop) }
        var bodies: [@Sendable () -> Void] = []
        for cpu in 0..<cpus {
            let report = reports[cpu]
            bodies.append {
                var nextOut = [Int](repeating: 0, count: cpus)
                var nextIn = [Int](repeating: 0, count: cpus)
                var destination = (cpu + 1) % cpus
                var sent = 0
                let toSend = (cpus - 1) * perPair
                while sent < toSend || report.received < toSend {
                    var progressed = false
                    if sent < toSend {
                        let sequence = nextOut[destination]
                        let message = Message(kind: UInt32(destination), payload: UInt64(sequence), object: tag(cpu, sequence))
                        if matrix.send(from: cpu, to: destination, message) {
                            nextOut[destination] += 1
                            sent += 1
                            progressed = true
                            // Next destination that still has messages due, never ourselves.
                            repeat { destination = (destination + 1) % cpus } while
                                sent < toSend && (destination == cpu || nextOut[destination] == perPair)
                        }
                    }
                    if let message = matrix.receive(at: cpu) {
                        progressed = true
                        let source = message.source
                        guard source != cpu, source >= 0, source < cpus, message.kind == UInt32(cpu) else {
                            return report.fail("CPU \(cpu): bad source \(source) or kind \(message.kind)")
                        }
                        let sequence = nextIn[source]
                        guard message.payload == UInt64(sequence), message.object == tag(source, sequence) else {
                            return report.fail("CPU \(cpu) from \(source): got \(message.payload), expected \(sequence)")
                        }
                        nextIn[source] += 1
                        report.received += 1
                    }
                    if !progressed {
                        if stop.isRaised { return }
                        sched_yield()
                    }
                }
                if nextIn.enumerated().contains(where: { $0.offset != cpu && $0.element != perPair }) {
                    report.fail("CPU \(cpu): per-source counts \(nextIn)")
                }
            }
        }
        XCTAssertTrue(runThreads(bodies, stop: stop), "threads did not finish")
        for (cpu, report) in reports.enumerated() {
            XCTAssertNil(report.failure)
            XCTAssertEqual(report.received, (cpus - 1) * perPair, "CPU \(cpu)")
            XCTAssertFalse(matrix.pending(at: cpu))
        }
    }
}
