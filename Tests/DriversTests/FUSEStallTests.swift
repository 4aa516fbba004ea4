// A FUSE server that never answers (issue 9): the request fails with `.io` once the timeout
// has passed on the device's clock, the stall is counted, later requests fail at once
// without being sent or waiting (so one stalled back-end cannot hold every caller for a
// timeout each), the timed-out request's buffers are left alone while the device holds
// them, and a late reply ends the stall. `FUSEStallGuard` runs here exactly as the
// virtio-fs driver runs it, over a scripted queue and a fake clock.
import XCTest
@testable import Core
@testable import Drivers
@testable import VsockDriver
@testable import FSDriver
@testable import Wire

private func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
private func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

/// A device with a request queue of 8 chains, a clock that moves only when someone waits,
/// and a server that answers what `answers` allows, immediately.
final class StallingDevice: FUSERequestQueue, FUSEChannel {
    struct Chain {
        var head: UInt16
        var request: UnsafeRawBufferPointer
        var reply: UnsafeMutableRawBufferPointer
        /// The request bytes as the device was given them.
        var sent: [UInt8]
    }
    let stallGuard: FUSEStallGuard
    var clock: UInt64 = 1_000
    /// How far one `waitForDevice` moves the clock at most.
    var step: UInt64 = 1_000_000_000
    var answers = true
    var inFlight: [Chain] = []
    var used: [(id: UInt16, length: UInt32)] = []
    var nextHead: UInt16 = 0
    var submitted = 0
    var waits = 0
    var failures: [String] = []

    init(timeoutSeconds: Int) { stallGuard = FUSEStallGuard(timeoutSeconds: timeoutSeconds) }

    // FUSERequestQueue
    func submit(request: UnsafeRawBufferPointer, reply: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> UInt16 {
        let head = nextHead
        nextHead = (nextHead + 1) % 8
        submitted += 1
        inFlight.append(Chain(head: head, request: request, reply: reply, sent: Array(request)))
        if answers { complete(head) }
        return head
    }
    func takeUsed() throws(FileSystemError) -> (id: UInt16, length: UInt32)? { used.isEmpty ? nil : used.removeFirst() }
    func waitForDevice(until deadline: UInt64) {
        waits += 1
        clock = min(deadline, clock + step)
    }
    func now() -> UInt64 { clock }
    func fail(_ reason: StaticString) { failures.append(reason.description) }

    // FUSEChannel
    func exchange(_ request: UnsafeRawBufferPointer, reply: UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Int {
        try stallGuard.exchange(self, request: request, reply: reply)
    }
    func prepare() throws(FileSystemError) { try stallGuard.prepare(self) }
    func post(_ request: UnsafeRawBufferPointer) throws(FileSystemError) {}

    /// The server answers chain `head` now (writing its reply buffer) and uses it.
    func complete(_ head: UInt16) {
        guard let index = inFlight.firstIndex(where: { $0.head == head }) else { return }
        let chain = inFlight.remove(at: index)
        let bytes = StallingDevice.answer(chain.sent)
        chain.reply.copyBytes(from: bytes)
        used.append((head, UInt32(bytes.count)))
    }

    /// INIT 7.31, and LOOKUP of anything as a regular file of 3 bytes (node 7).
    static func answer(_ request: [UInt8]) -> [UInt8] {
        let opcode = (0..<4).reduce(UInt32(0)) { $0 | UInt32(request[4 + $1]) << (8 * $1) }
        let unique = (0..<8).reduce(UInt64(0)) { $0 | UInt64(request[8 + $1]) << (8 * $1) }
        var body: [UInt8]
        switch FUSEOpcode(rawValue: opcode) {
        case .initialize:
            var out = FUSEInitReply()
            out.major = 7; out.minor = 31; out.maxWrite = 4096
            body = [UInt8](repeating: 0, count: FUSEInitReply.size)
            body.withUnsafeMutableBytes { out.encode(into: $0) }
        case .lookup:
            var entry = FUSEEntry()
            entry.nodeID = 7
            entry.attributes.mode = 0o100644
            entry.attributes.size = 3
            body = [UInt8](repeating: 0, count: FUSEEntry.size)
            body.withUnsafeMutableBytes { entry.encode(into: $0) }
        default:
            return le32(16) + le32(UInt32(bitPattern: -38)) + le64(unique)
        }
        return le32(UInt32(16 + body.count)) + le32(0) + le64(unique) + body
    }
}

final class FUSEStallTests: XCTestCase {
    let file = try! VFSPath(parsing: Array("/x".utf8))

    func testARequestNeverAnsweredFailsAfterTheTimeoutAndLaterOnesFailAtOnce() throws {
        let device = StallingDevice(timeoutSeconds: 30)
        let fs = try FUSEFileSystem.mount(channel: device, transfer: 4096)
        XCTAssertEqual(try fs.stat(file).size, 3, "an answering server works")

        device.answers = false
        let start = device.clock
        XCTAssertThrowsError(try fs.stat(file)) { XCTAssertEqual($0 as? FileSystemError, .io) }
        XCTAssertEqual(device.clock - start, 30_000_000_000, "failed exactly at the 30 s deadline")
        XCTAssertEqual(device.waits, 30, "it waited on the device, one wake-up a second here, not spinning")
        XCTAssertEqual(device.stallGuard.timeouts, 1)
        XCTAssertTrue(device.stallGuard.isStalled)

        // Later callers: no request sent, no wait, no time passes.
        let stalled = try XCTUnwrap(device.inFlight.first)
        let (submitted, waits, clock) = (device.submitted, device.waits, device.clock)
        for _ in 0..<5 {
            XCTAssertThrowsError(try fs.stat(file)) { XCTAssertEqual($0 as? FileSystemError, .io) }
        }
        XCTAssertThrowsError(try fs.readDirectory(.root)) { XCTAssertEqual($0 as? FileSystemError, .io) }
        XCTAssertEqual(device.submitted, submitted)
        XCTAssertEqual(device.waits, waits)
        XCTAssertEqual(device.clock, clock)
        XCTAssertEqual(device.stallGuard.refusedWhileStalled, 6)
        XCTAssertEqual(Array(stalled.request), stalled.sent, "the buffer the device still holds was not rewritten")
        XCTAssertTrue(device.failures.isEmpty, "a stall is not a device failure")
    }

    func testALateReplyEndsTheStall() throws {
        let device = StallingDevice(timeoutSeconds: 5)
        let fs = try FUSEFileSystem.mount(channel: device, transfer: 4096)
        device.answers = false
        XCTAssertThrowsError(try fs.stat(file))
        XCTAssertEqual(device.waits, 5)
        // The host wakes up and answers the old request (into the old reply buffer, which
        // nobody reads any more), then serves again.
        let stalled = try XCTUnwrap(device.inFlight.first)
        device.answers = true
        device.complete(stalled.head)
        XCTAssertEqual(try fs.stat(file).size, 3)
        XCTAssertFalse(device.stallGuard.isStalled)
        XCTAssertEqual(device.stallGuard.timeouts, 1)
        XCTAssertTrue(device.inFlight.isEmpty)
    }

    func testACompletionOfAChainNotInFlightFailsTheDevice() throws {
        let device = StallingDevice(timeoutSeconds: 5)
        let fs = try FUSEFileSystem.mount(channel: device, transfer: 4096)
        device.answers = false
        device.used.append((id: 6, length: 16))   // not the request's head
        XCTAssertThrowsError(try fs.stat(file)) { XCTAssertEqual($0 as? FileSystemError, .io) }
        XCTAssertEqual(device.failures, ["the device completed a request that was not in flight"])
        XCTAssertEqual(device.waits, 0)
    }

    func testTheTimeoutComesFromTheCommandLine() throws {
        XCTAssertEqual(try FUSEStallGuard.timeoutSeconds(try KernelCommandLine(parsing: Array("service=hello".utf8))), 30)
        XCTAssertEqual(try FUSEStallGuard.timeoutSeconds(try KernelCommandLine(parsing: Array("fs-timeout=5".utf8))), 5)
        XCTAssertThrowsError(try FUSEStallGuard.timeoutSeconds(try KernelCommandLine(parsing: Array("fs-timeout=0".utf8))))
        XCTAssertThrowsError(try FUSEStallGuard.timeoutSeconds(try KernelCommandLine(parsing: Array("fs-timeout=soon".utf8))))
        XCTAssertEqual(FUSEStallGuard(timeoutSeconds: 7).timeout, 7_000_000_000)
    }
}
