// How QEMU's exit code and the console become toro's exit status.

import XCTest
@testable import ToroTool

final class StatusTests: XCTestCase {
    let exitLine = "[   0.000100] boot: console ready\r\nready: hello\r\n[   0.012345] exit: 0\r\n"

    func testGuestStatusFromQEMUExitCode() {
        XCTAssertEqual(ExitMapping.guestStatus(qemuExitCode: 1, sawExitLine: true), .success)
        XCTAssertNil(ExitMapping.guestStatus(qemuExitCode: 1, sawExitLine: false))
        XCTAssertEqual(ExitMapping.guestStatus(qemuExitCode: 3, sawExitLine: false), .serviceFailed)
        XCTAssertEqual(ExitMapping.guestStatus(qemuExitCode: 5, sawExitLine: true), .badCommandLine)
        XCTAssertEqual(ExitMapping.guestStatus(qemuExitCode: 7, sawExitLine: false), .panic)
        XCTAssertNil(ExitMapping.guestStatus(qemuExitCode: 0, sawExitLine: true))
        XCTAssertNil(ExitMapping.guestStatus(qemuExitCode: 9, sawExitLine: true))
        XCTAssertNil(ExitMapping.guestStatus(qemuExitCode: 2, sawExitLine: true))
    }

    func testExitLineDetection() {
        XCTAssertTrue(ExitMapping.hasExitLine(exitLine))
        XCTAssertFalse(ExitMapping.hasExitLine("exit: 0\r\n"))               // not a log line
        XCTAssertFalse(ExitMapping.hasExitLine("[   0.000100] boot: exit: 0\r\n"))
    }

    func testInterpret() {
        func status(_ t: Termination, _ out: String = "", _ err: String = "") -> (ToroStatus, String?) {
            Boot.interpret(t, output: out, errors: err, timeout: 7)
        }
        XCTAssertEqual(status(.exited(1), exitLine).0, .success)
        XCTAssertNil(status(.exited(1), exitLine).1)
        XCTAssertEqual(status(.exited(7)).0, .panic)
        XCTAssertEqual(status(.exited(7)).0.rawValue, 3)
        XCTAssertEqual(status(.timedOut).0, .timeout)
        XCTAssertEqual(status(.timedOut).1, "timeout after 7 s (guest killed)")
        let qemuError = status(.exited(1), "", "qemu-system-x86_64: -kernel x: could not load kernel\nmore")
        XCTAssertEqual(qemuError.0, .qemuFailed)
        XCTAssertEqual(qemuError.1, "QEMU failed (exit code 1): qemu-system-x86_64: -kernel x: could not load kernel")
        XCTAssertEqual(status(.exited(0)).0, .qemuFailed)
        XCTAssertTrue(status(.exited(0)).1!.contains("triple fault"))
        XCTAssertEqual(status(.signaled(9)).0, .qemuFailed)
        XCTAssertEqual(status(.failedToStart("ENOENT")).0, .qemuFailed)
    }

    func testStatusTable() {
        XCTAssertEqual(ToroStatus.allCases.map(\.rawValue), [0, 1, 2, 3, 64, 69, 70, 124, 125])
        for status in ToroStatus.allCases {
            XCTAssertEqual(status.reason == nil, status == .success)
            XCTAssertTrue(Usage.overview.contains("  \(status.rawValue) "), "usage lacks \(status.rawValue)")
        }
    }

    func testTimestampRecognition() {
        XCTAssertTrue(KernelLog.isLogLine("[   0.001234] boot: x"))
        XCTAssertTrue(KernelLog.isLogLine("[12345.000001] x"))
        XCTAssertTrue(KernelLog.isLogLine("[0.000000] "))
        XCTAssertFalse(KernelLog.isLogLine("[   0.01234] x"))      // five digits
        XCTAssertFalse(KernelLog.isLogLine("[   .001234] x"))
        XCTAssertFalse(KernelLog.isLogLine("[   0.001234]x"))
        XCTAssertFalse(KernelLog.isLogLine(" [   0.001234] x"))
        XCTAssertFalse(KernelLog.isLogLine("ready: hello"))
        XCTAssertEqual(KernelLog.stripTimestamp("[ 1.000000] exit: 3"), "exit: 3")
        let text = "SeaBIOS\r\nBooting from ROM..[   0.000001] boot"
        XCTAssertEqual(KernelLog.firstTimestamp(in: text).map { String(text[$0...]) }, "[   0.000001] boot")
        XCTAssertNil(KernelLog.firstTimestamp(in: "[x] no"))
    }
}
