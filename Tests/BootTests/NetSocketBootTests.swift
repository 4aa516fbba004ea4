// Tier 2: `toro run --platform legacy --net-socket PATH` puts the guest's NIC on a Unix
// stream socket the test listens on: QEMU connects, and the guest's first frame (hostping
// resolving its gateway, 10.0.2.2, by ARP) arrives behind a 4-byte big-endian length.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ToroTool

final class NetSocketBootTests: XCTestCase {
    func testTheGuestsFramesArriveOnTheSocketWithTheirLength() throws {
        guard Harness.preflight() else { return }
        let path = NSTemporaryDirectory() + "toro-netsock-\(getpid()).sock"
        unlink(path)
        defer { unlink(path) }
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(listener, 0)
        defer { close(listener) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        XCTAssertEqual(listen(listener, 1), 0)

        let run = ResultBox<ProcessResult>(count: 1)
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            run.set(0, Harness.toro(["run", "--platform", "legacy", "--service", "hostping", "--net-socket", path,
                                     "--timeout", "60"], limit: 120))
            finished.signal()
        }
        // QEMU connects at start; the first frame follows once the guest is up.
        var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&ready, 1, 60_000), 1, "QEMU never connected to \(path)")
        let link = accept(listener, nil, nil)
        XCTAssertGreaterThanOrEqual(link, 0)
        defer { close(link) }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(link, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func readExactly(_ count: Int) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            var got = 0
            while got < count {
                let n = bytes[got...].withUnsafeMutableBytes { recv(link, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { break }
                got += n
            }
            return Array(bytes[0..<got])
        }
        // Frames until the ARP request for the gateway (the guest may announce itself first).
        var sawGatewayRequest = false
        for _ in 0..<10 where !sawGatewayRequest {
            let header = readExactly(4)
            guard header.count == 4 else { break }
            let length = header.reduce(0) { $0 << 8 | Int($1) }
            XCTAssertTrue((42...1518).contains(length), "a frame length of \(length)")
            let frame = readExactly(length)
            XCTAssertEqual(frame.count, length)
            guard frame.count >= 42, frame[12..<14].elementsEqual([0x08, 0x06]) else { continue }
            XCTAssertEqual(Array(frame[0..<6]), [UInt8](repeating: 0xff, count: 6), "an ARP request is broadcast")
            XCTAssertEqual(Array(frame[28..<32]), [10, 0, 2, 15], "from the guest's address")
            sawGatewayRequest = frame[20..<22].elementsEqual([0, 1]) && frame[38..<42].elementsEqual([10, 0, 2, 2])
        }
        XCTAssertTrue(sawGatewayRequest, "no ARP request for 10.0.2.2, where hostping connects")
        close(link)
        // Nobody answers: hostping gives up on its own, well before the timeout.
        guard finished.wait(timeout: .now() + 130) == .success else { return XCTFail("toro run did not end") }
        if let result = run.values.first {
            XCTAssertEqual(result.termination, .exited(1), Harness.describe(result))
            XCTAssertTrue(result.output.contains("ready: hostping"), Harness.describe(result))
        }
    }
}
