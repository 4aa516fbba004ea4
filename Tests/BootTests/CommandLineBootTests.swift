// Tier 2: the user's command line. Bad arguments give one line on stderr and status 64
// and start nothing; --print-command prints a line that boots when pasted into a shell.

import Foundation
import XCTest
import ToroTool

final class CommandLineBootTests: XCTestCase {
    func assertRefused(_ arguments: [String], mentions: String, file: StaticString = #filePath, line: UInt = #line) {
        let result = Harness.toro(arguments, limit: 30)
        let dump = "toro \(arguments.joined(separator: " ")): \(Harness.describe(result))"
        XCTAssertEqual(result.termination, .exited(64), dump, file: file, line: line)
        let errorLines = result.errorOutput.split(separator: "\n")
        XCTAssertEqual(errorLines.count, 1, "expected one line on stderr\n" + dump, file: file, line: line)
        XCTAssertTrue(result.errorOutput.hasPrefix("toro: "), dump, file: file, line: line)
        XCTAssertTrue(result.errorOutput.contains(mentions), dump, file: file, line: line)
        XCTAssertEqual(result.output, "", "printed guest output: a QEMU started\n" + dump, file: file, line: line)
        XCTAssertLessThan(result.seconds, 10, "too slow for a refusal: something was built or started\n" + dump,
                          file: file, line: line)
    }

    func testTooLittleMemory() {
        guard Harness.preflight() else { return }
        assertRefused(["run", "--memory", "1"], mentions: "too little memory for the kernel")
    }

    func testUnknownService() {
        guard Harness.preflight() else { return }
        assertRefused(["run", "--service", "nosuch"], mentions: "unknown service 'nosuch'")
    }

    func testUnknownPlatform() {
        guard Harness.preflight() else { return }
        assertRefused(["run", "--platform", "nosuch"], mentions: "unknown platform 'nosuch'")
    }

    func testDevicesTheKernelLacksAreRefused() {
        guard Harness.preflight() else { return }
        assertRefused(["run", "--platform", "legacy", "-p", "8080:80", "-p", "8080:81"], mentions: "forwarded twice")
        assertRefused(["run", "--platform", "legacy", "--net-socket", "/no/such.sock"], mentions: "no such socket")
        assertRefused(["run", "--share", Harness.root, "--disk", Harness.root + "/Package.swift"], mentions: "--disk")
        assertRefused(["run", "--platform", "legacy", "--disk", "/no/such/image"], mentions: "no such file")
        assertRefused(["run", "--share", "/no/such/folder"], mentions: "no such folder")
    }

    func testPrintedCommandBootsWhenPasted() throws {
        guard Harness.preflight() else { return }
        let printed = Harness.toro(["run", "--platform", "legacy", "--print-command"], limit: 120)
        XCTAssertEqual(printed.termination, .exited(0), Harness.describe(printed))
        let lines = printed.output.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, Harness.describe(printed))
        guard let line = lines.first else { return }
        XCTAssertTrue(line.hasPrefix("qemu-system-x86_64 -M pc "), String(line))
        XCTAssertTrue(line.contains(" -append service=hello"), String(line))
        var shell = Subprocess(["/bin/sh", "-c", String(line)])
        shell.timeout = 60
        let booted = shell.run()
        XCTAssertEqual(booted.termination, .exited(1), "guest status 0 is QEMU exit code 1\n" + Harness.describe(booted))
        XCTAssertTrue(booted.output.contains("ready: hello"), Harness.describe(booted))
    }

    /// Legacy networking on the command line: each `-p` is a hostfwd on 127.0.0.1 for a
    /// modern-only virtio-net NIC, and the printed line is what `run` starts.
    func testLegacyPortsArePrintedAsUserNetworking() throws {
        guard Harness.preflight() else { return }
        let printed = Harness.toro(["run", "--platform", "legacy", "--service", "kv", "-p", "18080:80", "-p", "18081:81",
                                    "--print-command"], limit: 240)
        XCTAssertEqual(printed.termination, .exited(0), Harness.describe(printed))
        let lines = Harness.lines(printed.output).filter { !$0.isEmpty }
        XCTAssertEqual(lines.count, 1, Harness.describe(printed))
        XCTAssertTrue(lines.last?.contains(" -netdev user,id=net0,hostfwd=tcp:127.0.0.1:18080-:80,hostfwd=tcp:127.0.0.1:18081-:81"
                                           + " -device virtio-net-pci,netdev=net0,disable-legacy=on ") ?? false,
                      Harness.describe(printed))
    }
}
