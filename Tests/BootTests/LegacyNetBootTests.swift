// Tier 2: legacy's IPv4 against a real Linux peer. As root, the test makes a network
// namespace of its own holding a tap device (10.0.3.1/24, no route out), boots kv on legacy
// with its virtio-net on that tap (`ip=10.0.3.15/24 gateway=10.0.3.1`), and from inside
// the namespace:
//   * pings the guest (Linux resolves it by ARP first: its neighbour entry must then hold
//     the guest's MAC), with the largest echo one frame carries, and with one Linux has to
//     fragment (dropped by the guest, which then still answers);
//   * talks to kv over TCP on port 80 (the IPv4 layer under Toro's TCP).
// The namespace (and the tap in it) is removed at the end, also on failure. The QEMU command
// is `toro run --print-command`'s, with the tap's -netdev and virtio-net-pci added.
//
// Without root, /dev/net/tun, `ip` or `ping` the test fails with the reason; `./toro test`
// installs iproute2 and iputils-ping. A malformed `ip=` needs no root: it stops the boot
// with the bad-argument status and one line (QEMU's user networking gives the NIC).

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ToroTool

final class LegacyNetBootTests: XCTestCase {
    static let guestMAC = "52:54:00:12:34:56"
    static let guestAddress = "10.0.3.15"

    /// Runs `arguments` (the first found on PATH), failing the test with its output when it
    /// exits non-zero unless `allowFailure`.
    @discardableResult
    func host(_ arguments: [String], allowFailure: Bool = false, timeout: Double = 60,
              file: StaticString = #filePath, line: UInt = #line) -> (status: Int32, output: String) {
        guard let tool = Installer.which(arguments[0]) else {
            XCTFail("\(arguments[0]) is missing: run ./toro test, which installs it", file: file, line: line)
            return (-1, "")
        }
        var process = Subprocess([tool] + arguments.dropFirst())
        process.timeout = timeout
        let result = process.run()
        let status = result.exitCode ?? -1
        if status != 0 && !allowFailure {
            XCTFail("\(arguments.joined(separator: " ")) exited \(status):\n\(result.output)\(result.errorOutput)",
                    file: file, line: line)
        }
        return (status, result.output + result.errorOutput)
    }

    /// `toro run --platform legacy --service SERVICE --print-command -- ARGS`'s QEMU command,
    /// split into words, without any network device it may carry.
    func qemuCommand(service: String, kernelArguments: [String], file: StaticString = #filePath, line: UInt = #line) -> [String]? {
        let printed = Harness.toro(["run", "--platform", "legacy", "--service", service, "--print-command", "--"] + kernelArguments)
        guard let text = Harness.lines(printed.output).last(where: { $0.hasPrefix("qemu-system-x86_64 ") }) else {
            XCTFail("no QEMU command line\n" + Harness.describe(printed), file: file, line: line)
            return nil
        }
        guard let words = LegacyNetBootTests.shellWords(text) else {
            XCTFail("cannot split the printed command: \(text)", file: file, line: line)
            return nil
        }
        var arguments: [String] = []
        var index = 0
        while index < words.count {
            let word = words[index]
            let next = index + 1 < words.count ? words[index + 1] : ""
            if word == "-netdev" || word == "-nic" || (word == "-device" && next.hasPrefix("virtio-net")) {
                index += 2
                continue
            }
            arguments.append(word)
            index += 1
        }
        return arguments
    }

    /// Splits a POSIX shell line as `shellQuote` writes it: plain words, '...' segments and
    /// backslash escapes outside them (its '\'' for a quote); nil for double quotes or an
    /// unterminated quote.
    static func shellWords(_ line: String) -> [String]? {
        var words: [String] = []
        var current = ""
        var inWord = false, quoted = false, escaped = false
        for character in line {
            if escaped {
                current.append(character)
                escaped = false
            } else if quoted {
                if character == "'" { quoted = false } else { current.append(character) }
            } else if character == "'" {
                quoted = true
                inWord = true
            } else if character == "\\" {
                escaped = true
                inWord = true
            } else if character == "\"" {
                return nil
            } else if character == " " {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        guard !quoted && !escaped else { return nil }
        if inWord { words.append(current) }
        return words
    }

    func testTheGuestAnswersARPAndPingFromALinuxPeer() throws {
        guard Harness.preflight() else { return }
        guard getuid() == 0 else {
            return XCTFail("this test needs root (it creates a network namespace and a tap device): run ./toro test as root")
        }
        guard access("/dev/net/tun", R_OK | W_OK) == 0 else {
            return XCTFail("/dev/net/tun is missing or not usable, so no tap device can be made (load the tun module)")
        }
        guard Installer.which("ip") != nil else { return XCTFail("ip is missing: run ./toro test, which installs iproute2") }
        guard Installer.which("ping") != nil else { return XCTFail("ping is missing: run ./toro test, which installs iputils-ping") }

        let tag = String(UInt32.random(in: 0x10000 ... 0xFFFFF), radix: 16)
        let namespace = "toro-net-\(getpid())-\(tag)"
        let tap = "toro\(tag)"                                    // within IFNAMSIZ (15)
        host(["ip", "netns", "add", namespace])
        defer {
            host(["ip", "-n", namespace, "link", "delete", tap], allowFailure: true)
            host(["ip", "netns", "delete", namespace])
        }
        host(["ip", "-n", namespace, "link", "set", "lo", "up"])
        host(["ip", "-n", namespace, "tuntap", "add", "dev", tap, "mode", "tap"])
        host(["ip", "-n", namespace, "address", "add", "10.0.3.1/24", "dev", tap])
        host(["ip", "-n", namespace, "link", "set", tap, "up"])

        guard var qemu = qemuCommand(service: "kv", kernelArguments: ["ip=10.0.3.15/24", "gateway=10.0.3.1"]) else { return }
        qemu += ["-netdev", "tap,id=n0,ifname=\(tap),script=no,downscript=no",
                 "-device", "virtio-net-pci,netdev=n0,disable-legacy=on"]
        guard let ip = Installer.which("ip") else { return }
        let guest = try BackgroundProcess([ip, "netns", "exec", namespace] + qemu)
        defer { _ = guest.stop() }
        func dump() -> String {
            "--- guest stdout\n" + guest.outputLines.joined(separator: "\n") + "\n--- guest stderr\n" + guest.errorLines.joined(separator: "\n")
        }
        guard guest.waitForLine(timeout: 120, where: { $0 == "ready: kv" }) != nil else {
            return XCTFail("kv never became ready\n" + dump())
        }
        XCTAssertTrue(guest.outputLines.contains { $0.contains("devices: virtio-net at PCI ")
                && $0.hasSuffix(", MAC \(Self.guestMAC), 10.0.3.15/24 via 10.0.3.1") }, dump())

        func ping(_ options: [String]) -> (status: Int32, output: String) {
            host(["ip", "netns", "exec", namespace, "ping", "-n"] + options + [Self.guestAddress], allowFailure: true, timeout: 90)
        }
        let first = ping(["-c", "3", "-i", "0.5", "-W", "5"])
        XCTAssertEqual(first.status, 0, first.output + dump())
        XCTAssertTrue(first.output.contains("3 packets transmitted, 3 received"), first.output + dump())

        let neighbour = host(["ip", "-n", namespace, "neigh", "show", Self.guestAddress, "dev", tap])
        XCTAssertTrue(neighbour.output.contains("lladdr \(Self.guestMAC)"),
                      "Linux resolved the guest by ARP: \(neighbour.output)\n" + dump())

        // The largest echo one frame carries: 1472 + 8 + 20 = 1500, DF set.
        let largest = ping(["-c", "1", "-W", "5", "-s", "1472", "-M", "do", "-p", "a5"])
        XCTAssertEqual(largest.status, 0, largest.output + dump())
        XCTAssertTrue(largest.output.contains("1 received"), largest.output + dump())
        XCTAssertFalse(largest.output.contains("wrong data"), "ping checks the echoed bytes\n" + largest.output)

        // Linux fragments a 3000-byte echo; the guest drops fragments, so no reply...
        let fragmented = ping(["-c", "1", "-W", "3", "-s", "3000", "-M", "dont"])
        XCTAssertNotEqual(fragmented.status, 0, fragmented.output + dump())
        XCTAssertTrue(fragmented.output.contains("0 received"), fragmented.output + dump())
        // ...and answers the next ordinary one.
        let after = ping(["-c", "1", "-W", "5"])
        XCTAssertEqual(after.status, 0, "the guest still answers after the fragments\n" + after.output + dump())

        // TCP over the same interface: kv's line protocol on port 80.
        let script = "exec 3<>/dev/tcp/\(Self.guestAddress)/80 && printf 'SET net 42\\nGET net\\n' >&3 && timeout 20 head -n 2 <&3"
        let kv = host(["ip", "netns", "exec", namespace, "bash", "-c", script], allowFailure: true, timeout: 60)
        XCTAssertEqual(kv.status, 0, kv.output + dump())
        XCTAssertEqual(Harness.lines(kv.output).filter { !$0.isEmpty }, ["OK", "VALUE 42"], kv.output + dump())
        XCTAssertNil(guest.termination, "the guest is still running\n" + dump())
    }

    func testAMalformedAddressStopsTheBootWithOneLine() {
        guard Harness.preflight() else { return }
        guard var qemu = qemuCommand(service: "kv", kernelArguments: ["ip=10.0.3.15"]) else { return }
        qemu += ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,disable-legacy=on"]
        var process = Subprocess(qemu)
        process.timeout = 120
        let result = process.run()
        let output = result.output + result.errorOutput
        XCTAssertEqual(result.exitCode, 5, "isa-debug-exit: the guest's status 2 (bad argument) is QEMU's exit 5\n" + output)
        XCTAssertTrue(Harness.lines(output).contains("devices: kernel argument ip needs an address and prefix length like 10.0.2.15/24"),
                      output)
        XCTAssertFalse(output.contains("ready: kv"), "the service never starts\n" + output)
    }
}
