// toro-vsock's and toro-fs's command lines and the hybrid handshake parser (Firecracker
// docs/vsock.md).
import XCTest
@testable import VhostUser

final class OptionsTests: XCTestCase {
    func testParsesEveryOption() throws {
        let options = try VsockOptions.parse(["--socket", "/tmp/a.sock", "--uds=/tmp/v.sock", "--cid", "7",
                                              "--forward", "8080:80", "--forward=2222:22", "--verbose"])
        XCTAssertEqual(options.socketPath, "/tmp/a.sock")
        XCTAssertEqual(options.udsPath, "/tmp/v.sock")
        XCTAssertEqual(options.guestCID, 7)
        XCTAssertEqual(options.forwards, [VsockForward(hostPort: 8080, guestPort: 80), VsockForward(hostPort: 2222, guestPort: 22)])
        XCTAssertTrue(options.verbose)
        XCTAssertEqual(try VsockOptions.parse(["--socket", "s"]).guestCID, 3)
    }

    func testBadOptions() {
        func message(_ arguments: [String]) -> String? {
            do { _ = try VsockOptions.parse(arguments); return nil } catch { return error.message }
        }
        XCTAssertEqual(message([]), "--socket PATH is required")
        XCTAssertEqual(message(["--socket"]), "--socket needs a value")
        XCTAssertEqual(message(["--socket", "s", "--cid", "2"]), "--cid: '2' is not a guest CID (3...4294967294)")
        XCTAssertEqual(message(["--socket", "s", "--forward", "80"]),
                       "--forward: '80' is not HOSTPORT:GUESTPORT (1-65535:1-4294967294)")
        XCTAssertEqual(message(["--socket", "s", "--forward", "70000:1"]),
                       "--forward: '70000:1' is not HOSTPORT:GUESTPORT (1-65535:1-4294967294)")
        XCTAssertEqual(message(["--socket", "s", "-p", "80:1", "-p", "80:2"]), "--forward: host port 80 given twice")
        XCTAssertEqual(message(["--socket", "s", "--bogus"]), "unknown option '--bogus' (see --help)")
    }

    func testFSOptions() throws {
        let options = try FSOptions.parse(["--socket=/tmp/f.sock", "--share", "/srv/data:ro", "--debug"])
        XCTAssertEqual(options.socketPath, "/tmp/f.sock")
        XCTAssertEqual(options.sharePath, "/srv/data")
        XCTAssertTrue(options.readOnly)
        XCTAssertTrue(options.debug)
        XCTAssertFalse(try FSOptions.parse(["--socket", "s", "--share", "d"]).readOnly)
        func message(_ arguments: [String]) -> String? {
            do { _ = try FSOptions.parse(arguments); return nil } catch { return error.message }
        }
        XCTAssertEqual(message(["--share", "d"]), "--socket PATH is required")
        XCTAssertEqual(message(["--socket", "s"]), "--share DIR is required")
        XCTAssertEqual(message(["--socket", "s", "--share"]), "--share needs a value")
        XCTAssertEqual(message(["--socket", "s", "--uds", "u"]), "unknown option '--uds' (see --help)")
        XCTAssertEqual(message(["--socket", "s", "--share", "d", "--max-nodes", "1"]), "--max-nodes: '1' is not a count (2...1048576)")
        XCTAssertEqual(message(["--socket", "s", "--share", "d", "--max-handles", "x"]), "--max-handles: 'x' is not a count (1...1048576)")
    }

    func testFSCapsAndTheirFitToTheDescriptorLimit() throws {
        let defaults = try FSOptions.parse(["--socket", "s", "--share", "d"]).limits
        XCTAssertEqual(defaults, FUSEServerLimits(maxNodes: 16384, maxHandles: 4096))
        let options = try FSOptions.parse(["--socket", "s", "--share", "d", "--max-nodes", "500", "--max-handles=20"])
        XCTAssertEqual(options.limits, FUSEServerLimits(maxNodes: 500, maxHandles: 20))
        XCTAssertEqual(options.limits.fitted(descriptorLimit: 1 << 20), options.limits, "room enough: unchanged")
        // ulimit -n 1024: 960 descriptors for the guest, a quarter of them for handles.
        XCTAssertEqual(defaults.fitted(descriptorLimit: 1024), FUSEServerLimits(maxNodes: 720, maxHandles: 240))
        XCTAssertTrue(FSOptions.usage.contains("--max-nodes N") && FSOptions.usage.contains("default 16384"))
        XCTAssertTrue(FSOptions.usage.contains("--max-handles N") && FSOptions.usage.contains("default 4096"))
    }

    func testVsockConnectionCap() throws {
        XCTAssertEqual(try VsockOptions.parse(["--socket", "s"]).maxConnections, 1024)
        XCTAssertEqual(try VsockOptions.parse(["--socket", "s", "--max-connections", "7"]).maxConnections, 7)
        XCTAssertThrowsError(try VsockOptions.parse(["--socket", "s", "--max-connections", "0"])) {
            XCTAssertEqual(($0 as? OptionError)?.message, "--max-connections: '0' is not a count (1...1048576)")
        }
        XCTAssertTrue(VsockOptions.usage.contains("--max-connections N") && VsockOptions.usage.contains("default 1024"))
    }

    func testHandshake() {
        XCTAssertEqual(HybridHandshake.parse(Array("CONN".utf8)), .incomplete)
        XCTAssertEqual(HybridHandshake.parse(Array("CONNECT 52\nabc".utf8)), .connect(port: 52, rest: Array("abc".utf8)))
        XCTAssertEqual(HybridHandshake.parse(Array("CONNECT 52\r\n".utf8)), .connect(port: 52, rest: []))
        XCTAssertEqual(HybridHandshake.parse(Array("CONNECT x\n".utf8)), .invalid("bad port 'x'"))
        XCTAssertEqual(HybridHandshake.parse(Array("LISTEN 5\n".utf8)), .invalid("expected 'CONNECT <port>', got 'LISTEN 5'"))
        XCTAssertEqual(HybridHandshake.parse([UInt8](repeating: 65, count: 80)),
                       .invalid("no CONNECT line in the first 64 bytes"))
        XCTAssertEqual(HybridHandshake.okLine(localPort: 1 << 30), Array("OK 1073741824\n".utf8))
    }
}
