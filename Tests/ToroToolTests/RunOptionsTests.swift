// Argument parsing and validation of `toro run` / `toro compare`: every error is one
// line with status 64.

import XCTest
@testable import ToroTool

final class RunOptionsTests: XCTestCase {
    func parse(_ args: [String], command: String = "run") throws -> RunOptions {
        try RunOptions.parse(args, command: command).0
    }

    func assertBadArgument(_ args: [String], command: String = "run", mentions: String,
                           file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try RunOptions.parse(args, command: command)
            XCTFail("expected an error for \(args)", file: file, line: line)
        } catch {
            XCTAssertEqual(error.status, .badArgument, file: file, line: line)
            XCTAssertTrue(error.message.contains(mentions), "'\(error.message)' lacks '\(mentions)'", file: file, line: line)
            XCTAssertFalse(error.message.contains("\n"), "not one line: \(error.message)", file: file, line: line)
        }
    }

    func testDefaults() throws {
        let options = try parse([])
        XCTAssertEqual(options.platform, .microvm)
        XCTAssertEqual(options.service, "hello")
        XCTAssertEqual(options.cpus, 1)
        XCTAssertEqual(options.memoryMiB, 64)
        XCTAssertEqual(options.accel, .auto)
        XCTAssertEqual(options.timeoutSeconds, 60)
        XCTAssertFalse(options.printCommand)
        XCTAssertEqual(options.kernelCommandLine, "service=hello")
    }

    func testEveryOption() throws {
        let options = try parse(["--platform", "legacy", "--service", "fault", "--cpus", "4", "--memory=128",
                                 "--accel", "tcg", "--timeout", "5", "--print-command", "--", "a=1", "--b"])
        XCTAssertEqual(options.platform, .legacy)
        XCTAssertEqual(options.service, "fault")
        XCTAssertEqual(options.cpus, 4)
        XCTAssertEqual(options.memoryMiB, 128)
        XCTAssertEqual(options.accel, .tcg)
        XCTAssertEqual(options.timeoutSeconds, 5)
        XCTAssertTrue(options.printCommand)
        XCTAssertEqual(options.kernelArgs, ["a=1", "--b"])
        XCTAssertEqual(options.kernelCommandLine, "service=fault a=1 --b")
        XCTAssertEqual(options.given, ["--platform", "--service", "--cpus", "--memory", "--accel", "--timeout", "--print-command"])
    }

    func testUnknownServiceAndPlatform() {
        assertBadArgument(["--service", "nosuch"], mentions: "unknown service 'nosuch'")
        assertBadArgument(["--platform", "nosuch"], mentions: "unknown platform 'nosuch'")
        assertBadArgument(["--accel", "hvf"], mentions: "unknown accelerator 'hvf'")
    }

    func testNumbers() {
        assertBadArgument(["--cpus", "0"], mentions: "--cpus must be at least 1, got 0")
        assertBadArgument(["--cpus", "17"], mentions: "--cpus 17: the kernel supports at most 16 CPUs")
        assertBadArgument(["--cpus", "256"], mentions: "--cpus 256: the kernel supports at most 16 CPUs")
        assertBadArgument(["--cpus", "two"], mentions: "--cpus needs a number of CPUs")
        assertBadArgument(["--cpus", "-1"], mentions: "--cpus needs")
        assertBadArgument(["--memory", "0"], mentions: "--memory must be between 1")
        assertBadArgument(["--memory", "64M"], mentions: "--memory needs a size in MiB")
        assertBadArgument(["--memory", "99999999999999999999999"], mentions: "--memory needs")
        assertBadArgument(["--timeout", "0"], mentions: "--timeout must be between 1")
        assertBadArgument(["--timeout", "1.5"], mentions: "--timeout needs")
    }

    func testMissingValuesAndUnknownFlags() {
        assertBadArgument(["--cpus"], mentions: "--cpus needs a value")
        assertBadArgument(["--memory", "--", "x"], mentions: "--memory needs a value")
        assertBadArgument(["--service="], mentions: "--service needs a value")
        assertBadArgument(["--frobnicate"], mentions: "unknown option '--frobnicate'")
        assertBadArgument(["stray"], mentions: "unexpected argument 'stray'")
        assertBadArgument(["--print-command=yes"], mentions: "takes no value")
    }

    func testMemoryMinimum() throws {
        let options = try parse(["--memory", "1"])
        XCTAssertThrowsError(try options.checkMemory(minimumMiB: 2)) { error in
            let failure = error as! ToolFailure
            XCTAssertEqual(failure.status, .badArgument)
            XCTAssertTrue(failure.message.contains("too little memory for the kernel"))
        }
        XCTAssertNoThrow(try options.checkMemory(minimumMiB: 1))
    }

    func testPortsAreValidated() throws {
        for bad in ["80", "80:", ":80", "0:80", "80:65536", "a:b", "80:80:80", "-1:80"] {
            assertBadArgument(["-p", bad], mentions: "HOSTPORT:GUESTPORT")
        }
        let (options, _) = try RunOptions.parse(["-p", "8080:80", "--publish", "1:65535"], workingDirectory: "/tmp")
        XCTAssertEqual(options.ports, [PortForward(host: 8080, guest: 80), PortForward(host: 1, guest: 65535)])
        XCTAssertEqual(try parse(["--platform", "legacy", "-p", "8080:80"]).ports, [PortForward(host: 8080, guest: 80)])
    }

    func testSharesAreValidated() throws {
        assertBadArgument(["--share", "/no/such/folder"], mentions: "no such folder")
        assertBadArgument(["--share", "\(#filePath):ro"], mentions: "not a folder")
        assertBadArgument(["--share", ":ro"], mentions: "--share needs DIR")
        assertBadArgument(["--platform", "legacy", "--share", "/tmp", "--share", "/"], mentions: "one shared folder")
        assertBadArgument(["--share", "/tmp", "--share", "/"], mentions: "one shared folder")
        let (relative, _) = try RunOptions.parse(["--share", "."], workingDirectory: "/tmp")
        XCTAssertEqual(relative.shares, [SharedFolder(path: "/tmp/.", readOnly: false)], "relative to the working directory")
    }

    func testCompareOptions() throws {
        let (options, expect) = try RunOptions.parse(["--service", "hello", "--expect", "x/expected"],
                                                     command: "compare", workingDirectory: "/home/me")
        XCTAssertEqual(options.service, "hello")
        XCTAssertEqual(expect, "/home/me/x/expected")
        assertBadArgument(["--platform", "legacy"], command: "compare", mentions: "does not apply to compare")
        assertBadArgument(["--print-command"], command: "compare", mentions: "does not apply to compare")
        assertBadArgument(["--expect", "f"], command: "run", mentions: "unknown option '--expect'")
    }
}
