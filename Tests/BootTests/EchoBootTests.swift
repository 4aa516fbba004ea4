// Tier 2: the `echo` probe (Sources/Services/Probes/echo) on MicroVM through `-p` (toro-vsock,
// virtio-vsock): 1 MiB of seeded bytes goes in while the echo is read back at the same time,
// the client ends its sending side, reads to the end of the stream, and what came back is
// the same bytes; with `connections=1` the guest then exits 0.
//
// `EchoExchange` is the client: the lossy-link test (LossyLinkBootTests.swift) runs the same
// exchange from a network namespace against legacy's own TCP/IP.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import TestSupport
import ToroTool

final class EchoBootTests: XCTestCase {
    func testMicroVMEchoesOneMebibyteBothWays() throws {
        guard Harness.preflight() else { return }
        guard let guest = ServiceGuest.boot(service: "echo", port: true, guestPort: 7, timeout: 300,
                                            kernelArguments: ["connections=1"]) else { return }
        defer { ServiceGuest.stop(guest) }
        let dump = { ServiceGuest.describe(guest) }
        XCTAssertNotNil(guest.waitForLine(timeout: 10, where: { $0 == "echo: listening on 7" }), dump())
        let payload = EchoExchange.payload(count: 1 << 20, seed: 7)
        let client = try KVClient.connect(port: guest.port, within: 10, timeout: 60)
        let outcome = EchoExchange.run(fd: client.fd, payload: payload, deadline: 120)
        client.close()
        print("echo boot test (microvm): \(outcome.summary)")
        XCTAssertNil(outcome.failure, outcome.summary + "\n" + dump())
        XCTAssertEqual(outcome.received.count, payload.count, outcome.summary)
        XCTAssertNil(outcome.firstDifference(from: payload), outcome.summary)
        XCTAssertEqual(guest.wait(timeout: 60), .exited(0), "connections=1: the guest exits 0 once the connection is done\n" + dump())
    }
}

/// One echo exchange over a connected TCP socket: a thread writes the payload and then shuts
/// the sending side down, while the caller's thread reads everything that comes back until
/// the end of the stream.
enum EchoExchange {
    struct Outcome: Sendable {
        var received: [UInt8]
        /// Why the exchange stopped early (nil: the stream ended normally).
        var failure: String?
        var seconds: Double
        var sent: Int

        var summary: String {
            let rate = seconds > 0 ? Double(received.count) / seconds / 1_048_576 : 0
            return "\(sent) bytes sent, \(received.count) echoed in \(String(format: "%.1f", seconds)) s "
                + "(\(String(format: "%.2f", rate)) MiB/s each way)" + (failure.map { "; \($0)" } ?? "")
        }

        /// The first offset where `received` and `expected` differ (a length difference counts).
        func firstDifference(from expected: [UInt8]) -> Int? {
            if received == expected { return nil }
            let common = min(received.count, expected.count)
            if let index = (0..<common).first(where: { received[$0] != expected[$0] }) { return index }
            return received.count == expected.count ? nil : common
        }
    }

    /// `count` seeded pseudo-random bytes (TestSupport's SplitMix64).
    static func payload(count: Int, seed: UInt64) -> [UInt8] {
        var generator = RNG(seed: seed)
        var words = [UInt64](repeating: 0, count: (count + 7) / 8)
        for index in words.indices { words[index] = generator.next().littleEndian }
        return words.withUnsafeBytes { Array($0.prefix(count)) }
    }

    /// Runs the exchange on `fd` (connected, blocking; the caller closes it). `deadline`
    /// bounds the whole exchange in seconds; a read or write that makes no progress for
    /// `stall` seconds ends it too. The socket's timeouts are set here.
    static func run(fd: Int32, payload: [UInt8], deadline: Double, stall: Double = 60) -> Outcome {
        var limit = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let begin = Date()
        let end = begin.addingTimeInterval(deadline)
        let writer = WriterState()
        let written = DispatchSemaphore(value: 0)
        let sendPayload = payload
        Thread.detachNewThread {
            writer.run(fd: fd, payload: sendPayload, end: end, stall: stall)
            written.signal()
        }
        var received: [UInt8] = []
        received.reserveCapacity(payload.count)
        var chunk = [UInt8](repeating: 0, count: 65536)
        var failure: String?
        var lastProgress = Date()
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                received.append(contentsOf: chunk[0..<count])
                lastProgress = Date()
                if received.count > payload.count {
                    failure = "more bytes came back than were sent"
                    break
                }
                continue
            }
            if count == 0 { break }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK {
                let now = Date()
                if now >= end { failure = "the deadline of \(Int(deadline)) s passed"; break }
                if now.timeIntervalSince(lastProgress) >= stall {
                    failure = "nothing came back for \(Int(stall)) s"
                    break
                }
                continue
            }
            failure = "recv: \(String(cString: strerror(error)))"
            break
        }
        if failure != nil { shutdown(fd, Int32(SHUT_RDWR)) }   // unblocks the writer
        written.wait()
        if failure == nil, let writeFailure = writer.failure { failure = writeFailure }
        if failure == nil && received.count < payload.count && writer.sent == payload.count {
            failure = "the stream ended after \(received.count) of \(payload.count) bytes"
        }
        return Outcome(received: received, failure: failure, seconds: Date().timeIntervalSince(begin), sent: writer.sent)
    }

    /// The writing side's progress, read by the caller after the writer finished.
    final class WriterState: @unchecked Sendable {
        var sent = 0
        var failure: String?

        func run(fd: Int32, payload: [UInt8], end: Date, stall: Double) {
            var lastProgress = Date()
            while sent < payload.count {
                let count = payload.withUnsafeBytes { raw in
                    Glibc.send(fd, raw.baseAddress! + sent, min(65536, raw.count - sent), Int32(MSG_NOSIGNAL))
                }
                if count > 0 {
                    sent += count
                    lastProgress = Date()
                    continue
                }
                let error = errno
                if count < 0 && error == EINTR { continue }
                if count < 0 && (error == EAGAIN || error == EWOULDBLOCK) {
                    let now = Date()
                    if now >= end { failure = "writing: the deadline passed after \(sent) bytes"; return }
                    if now.timeIntervalSince(lastProgress) >= stall {
                        failure = "writing: no progress for \(Int(stall)) s after \(sent) bytes"
                        return
                    }
                    continue
                }
                failure = "send after \(sent) bytes: \(String(cString: strerror(error)))"
                return
            }
            shutdown(fd, Int32(SHUT_WR))
        }
    }
}
