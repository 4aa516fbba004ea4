// Sockets on the command line: `-p H:G` on both platforms (toro-vsock on microvm, QEMU's
// user networking with hostfwd on legacy), the NIC a legacy socket service gets without
// `-p`, and `--net-socket PATH` (a legacy NIC on a Unix stream socket); every mistake is
// one line with status 64.

import XCTest
@testable import ToroTool
#if canImport(Glibc)
import Glibc
#endif

final class NetworkOptionsTests: XCTestCase {
    var folder = ""

    override func setUp() {
        folder = NSTemporaryDirectory() + "toro-netopt-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// A listening Unix socket at `path` (closed when the test ends).
    func listeningSocket(_ path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0, "bind \(path)")
        XCTAssertEqual(listen(fd, 1), 0)
        addTeardownBlock { close(fd) }
    }

    func parse(_ arguments: [String], command: String = "run") throws -> RunOptions {
        try RunOptions.parse(arguments, command: command, workingDirectory: folder).0
    }

    func assertBadArgument(_ arguments: [String], command: String = "run", message: String,
                           file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try RunOptions.parse(arguments, command: command, workingDirectory: folder)
            XCTFail("expected an error for \(arguments)", file: file, line: line)
        } catch {
            XCTAssertEqual(error.status, .badArgument, file: file, line: line)
            XCTAssertEqual(error.message, message, file: file, line: line)
        }
    }

    func qemu(_ arguments: [String]) throws -> [String] {
        QEMUCommand(options: try parse(arguments), accelerator: .tcg, kernelPath: "/k.elf").arguments
    }

    /// The arguments between `-smp …` and `-nodefaults`: the devices of a legacy command.
    func devices(_ arguments: [String]) -> [String] {
        guard let smp = arguments.firstIndex(of: "-smp"), let end = arguments.firstIndex(of: "-nodefaults") else { return [] }
        return Array(arguments[(smp + 2)..<end])
    }

    func testLegacyPortsBecomeHostForwardsOnLoopback() throws {
        let arguments = try qemu(["--platform", "legacy", "--service", "kv", "-p", "8080:80", "-p", "2222:22"])
        XCTAssertEqual(devices(arguments), [
            "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=tcp:127.0.0.1:2222-:22",
            "-device", "virtio-net-pci,netdev=net0,disable-legacy=on",
        ])
        XCTAssertTrue(QEMUCommand(options: try parse(["--platform", "legacy", "--service", "kv", "-p", "8080:80"]),
                                  accelerator: .tcg, kernelPath: "/k.elf").shellLine
            .contains(" -netdev user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80 -device virtio-net-pci,netdev=net0,disable-legacy=on "))
    }

    func testALegacySocketServiceGetsTheNICWithoutPorts() throws {
        // hostping connects out: user networking, no forwards.
        XCTAssertEqual(devices(try qemu(["--platform", "legacy", "--service", "hostping"])), [
            "-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,disable-legacy=on",
        ])
        XCTAssertTrue(try parse(["--service", "hostping"]).wantsNetwork)
        XCTAssertTrue(try parse(["--service", "kv"]).wantsNetwork)
        // A service without sockets gets no NIC, unless a port is forwarded anyway.
        XCTAssertEqual(devices(try qemu(["--platform", "legacy", "--service", "hello"])), [])
        XCTAssertFalse(try parse(["--service", "hello"]).wantsNetwork)
        XCTAssertTrue(try parse(["--service", "hello", "-p", "8080:80"]).wantsNetwork)
        XCTAssertEqual(devices(try qemu(["--platform", "legacy", "--service", "hello", "-p", "8080:80"])).first, "-netdev")
    }

    func testMicroVMCommandHasNoNICWhateverTheOptions() throws {
        let arguments = try qemu(["--service", "kv", "-p", "8080:80"])
        XCTAssertFalse(arguments.contains("-netdev"))
        XCTAssertFalse(arguments.contains { $0.hasPrefix("virtio-net") })
    }

    func testLegacyDiskAndNICTogether() throws {
        var options = try parse(["--platform", "legacy", "--service", "kv", "-p", "8080:80"])
        options.disk = "/d.img"
        let arguments = QEMUCommand(options: options, accelerator: .tcg, kernelPath: "/k.elf").arguments
        XCTAssertEqual(devices(arguments), [
            "-drive", "file=/d.img,if=none,id=disk0,format=raw", "-device", "virtio-blk-pci,drive=disk0,disable-legacy=on",
            "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80", "-device", "virtio-net-pci,netdev=net0,disable-legacy=on",
        ])
    }

    func testNetSocketPutsTheNICOnAStreamSocket() throws {
        let path = folder + "/link.sock"
        try listeningSocket(path)
        let options = try parse(["--platform", "legacy", "--service", "kv", "--net-socket", "link.sock"])
        XCTAssertEqual(options.netSocket, path, "relative to the working directory")
        XCTAssertTrue(options.wantsNetwork)
        XCTAssertEqual(devices(QEMUCommand(options: options, accelerator: .tcg, kernelPath: "/k.elf").arguments), [
            "-netdev", "stream,id=net0,server=off,addr.type=unix,addr.path=\(path)",
            "-device", "virtio-net-pci,netdev=net0,disable-legacy=on",
        ])
        // Even for a service without sockets: the user asked for the NIC.
        let hello = try parse(["--platform", "legacy", "--net-socket", path])
        XCTAssertEqual(devices(QEMUCommand(options: hello, accelerator: .tcg, kernelPath: "/k.elf").arguments).first, "-netdev")
        XCTAssertEqual(options.given.contains("--net-socket"), true)
    }

    func testNetSocketPathCommasAreDoubled() {
        XCTAssertEqual(LegacyNetwork.stream(path: "/t/a,b.sock").netdev,
                       "stream,id=net0,server=off,addr.type=unix,addr.path=/t/a,,b.sock")
        XCTAssertEqual(LegacyNetwork.user(forwards: []).netdev, "user,id=net0")
    }

    func testNetSocketMistakes() throws {
        let path = folder + "/link.sock"
        try listeningSocket(path)
        assertBadArgument(["--platform", "legacy", "--net-socket", folder + "/none.sock"],
                          message: "--net-socket: no such socket '\(folder)/none.sock' (start the program that listens on it first)")
        let plain = folder + "/plain"
        FileManager.default.createFile(atPath: plain, contents: Data())
        assertBadArgument(["--platform", "legacy", "--net-socket", plain], message: "--net-socket: '\(plain)' is not a Unix socket")
        assertBadArgument(["--net-socket", path],
                          message: "--net-socket \(path) needs virtio-net, which only legacy has (add --platform legacy)")
        assertBadArgument(["--platform", "legacy", "--net-socket", path, "-p", "8080:80"],
                          message: "-p 8080:80 and --net-socket \(path) both give the NIC its network: -p forwards through "
                          + "QEMU's user networking, --net-socket puts the guest on your link instead; choose one")
        assertBadArgument(["--platform", "legacy", "--net-socket", path, "--net-socket", path],
                          message: "--net-socket given twice: the guest has one NIC")
        assertBadArgument(["--net-socket", path], command: "compare",
                          message: "--net-socket does not apply to compare: microvm has no NIC (use -p HOSTPORT:GUESTPORT)")
        assertBadArgument(["--platform", "legacy", "--net-socket"], message: "--net-socket needs a value")
        // A socket moved where its path no longer fits a socket address.
        let deep = folder + "/" + String(repeating: "d", count: 110)
        try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
        XCTAssertEqual(rename(path, deep + "/link.sock"), 0)
        assertBadArgument(["--platform", "legacy", "--net-socket", deep + "/link.sock"],
                          message: "--net-socket: the path '\(deep)/link.sock' is longer than a Unix socket address allows (107 bytes)")
    }

    func testPortMistakes() throws {
        assertBadArgument(["--platform", "legacy", "-p", "8080:80", "-p", "8080:81"],
                          message: "-p: host port 8080 is forwarded twice (each host port forwards to one guest port)")
        assertBadArgument(["-p", "8080:80", "--publish", "8080:80"],
                          message: "-p: host port 8080 is forwarded twice (each host port forwards to one guest port)")
        // Legacy -p is no longer refused, on run or compare.
        XCTAssertEqual(try parse(["--platform", "legacy", "-p", "8080:80", "-p", "8081:80"]).ports,
                       [PortForward(host: 8080, guest: 80), PortForward(host: 8081, guest: 80)])
        XCTAssertEqual(try parse(["-p", "8080:80"], command: "compare").ports, [PortForward(host: 8080, guest: 80)])
    }

    func testTheCommandRefusesBeforeBuilding() {
        XCTAssertEqual(CLI.main(["run", "--platform", "legacy", "--net-socket", "/no/such.sock"]), ToroStatus.badArgument.rawValue)
        XCTAssertEqual(CLI.main(["run", "--net-socket", "/no/such.sock"]), ToroStatus.badArgument.rawValue)
        XCTAssertEqual(CLI.main(["run", "--platform", "legacy", "-p", "1:80", "-p", "1:81"]), ToroStatus.badArgument.rawValue)
    }

    func testHelpDescribesLegacyNetworking() {
        XCTAssertTrue(Usage.overview.contains("[-p HOSTPORT:GUESTPORT ... | --net-socket PATH]"))
        XCTAssertTrue(Usage.overview.contains("-netdev user,hostfwd=tcp:127.0.0.1:H-:G"))
        XCTAssertTrue(Usage.overview.contains("./toro run --platform legacy --service kv -p 8080:80"))
        XCTAssertTrue(Usage.overview.contains("--net-socket PATH legacy only"))
        XCTAssertFalse(Usage.overview.contains("no TCP/IP yet"))
    }
}
