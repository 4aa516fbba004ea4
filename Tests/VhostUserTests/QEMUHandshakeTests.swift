// The real thing: QEMU 7.2's vhost-user-vsock-device against the `toro-vsock` binary,
// booting the do-nothing PVH kernel (.build-kernel/null-pvh.elf, from `./toro build`),
// which exits through isa-debug-exit at once. QEMU must get through its start-up
// handshake (GET_FEATURES ... GET_CONFIG, DESIGN.md) without "expecting
// VHOST_USER_PROTOCOL_F_CONFIG" or any other vhost error, and toro-vsock must exit 0 when
// QEMU goes away. Missing QEMU, kernel or binary fail the test with the reason.
import XCTest
import VhostUserTestSupport
import Foundation

final class QEMUHandshakeTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// The toro-vsock binary next to the test bundle (or TORO_VSOCK).
    func binary() -> String? {
        if let path = ProcessInfo.processInfo.environment["TORO_VSOCK"] { return path }
        var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path]
        candidates += Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent().path }
        candidates += [".build-vhost/debug", ".build/debug"].map { QEMUHandshakeTests.root + "/" + $0 }
        return candidates.map { $0 + "/toro-vsock" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    func which(_ name: String) -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    struct Outcome { var status: Int32; var stderr: String; var timedOut: Bool }

    func start(_ executable: String, _ arguments: [String]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, errors)
    }

    func finish(_ process: Process, _ errors: Pipe, timeout: Double) -> Outcome {
        let end = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < end { usleep(20_000) }
        let timedOut = process.isRunning
        if timedOut { process.terminate(); process.waitUntilExit() }
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return Outcome(status: process.terminationStatus, stderr: text, timedOut: timedOut)
    }

    func testBadOptionExits64WithOneLine() throws {
        guard let vsock = binary() else { return XCTFail("toro-vsock is not built: swift build --product toro-vsock") }
        let (process, errors) = try start(vsock, ["--socket", "/tmp/x", "--cid", "1"])
        let outcome = finish(process, errors, timeout: 10)
        XCTAssertEqual(outcome.status, 64)
        XCTAssertEqual(outcome.stderr, "toro-vsock: --cid: '1' is not a guest CID (3...4294967294)\n")
    }

    func testQEMUCompletesTheVhostUserHandshake() throws {
        guard let qemu = which("qemu-system-x86_64") else {
            return XCTFail("qemu-system-x86_64 is not on PATH: run ./toro test, which installs it")
        }
        guard let vsock = binary() else { return XCTFail("toro-vsock is not built: swift build --product toro-vsock") }
        let kernel = QEMUHandshakeTests.root + "/.build-kernel/null-pvh.elf"
        guard FileManager.default.fileExists(atPath: kernel) else {
            return XCTFail("\(kernel) is missing: run ./toro build")
        }
        let directory = temporaryDirectory()
        defer { removeDirectory(directory) }
        let socket = directory + "/vhost.sock"
        let (backend, backendErrors) = try start(vsock, ["--socket", socket, "--uds", directory + "/v.sock", "--verbose"])
        let ready = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: socket) && Date() < ready { usleep(10_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: socket), "toro-vsock created its socket")

        let arguments = [
            "-M", "microvm,pic=off,rtc=on,acpi=off,memory-backend=mem", "-accel", "tcg", "-m", "64",
            "-object", "memory-backend-memfd,id=mem,size=64M,share=on",
            "-global", "virtio-mmio.force-legacy=false",
            "-chardev", "socket,id=vsock0,path=\(socket)",
            "-device", "vhost-user-vsock-device,chardev=vsock0",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "null",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", kernel,
        ]
        let (qemuProcess, qemuErrors) = try start(qemu, arguments)
        let qemuOutcome = finish(qemuProcess, qemuErrors, timeout: 60)
        let backendOutcome = finish(backend, backendErrors, timeout: 10)
        let dump = "QEMU (status \(qemuOutcome.status)):\n\(qemuOutcome.stderr)\ntoro-vsock (status \(backendOutcome.status)):\n\(backendOutcome.stderr)"

        XCTAssertFalse(qemuOutcome.timedOut, dump)
        // null-pvh writes 0 to isa-debug-exit: QEMU exits (0 << 1) | 1.
        XCTAssertEqual(qemuOutcome.status, 1, dump)
        XCTAssertFalse(qemuOutcome.stderr.contains("vhost"), dump)
        XCTAssertFalse(qemuOutcome.stderr.contains("Failed"), dump)
        XCTAssertFalse(qemuOutcome.stderr.contains("expecting VHOST_USER_PROTOCOL_F_CONFIG"), dump)
        XCTAssertFalse(backendOutcome.timedOut, "toro-vsock exits when QEMU disconnects\n" + dump)
        XCTAssertEqual(backendOutcome.status, 0, dump)
        for step in ["<- GET_FEATURES", "<- GET_PROTOCOL_FEATURES", "<- SET_PROTOCOL_FEATURES", "<- SET_OWNER",
                     "<- GET_CONFIG", "QEMU disconnected"] {
            XCTAssertTrue(backendOutcome.stderr.contains(step), "missing '\(step)'\n" + dump)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: socket), "toro-vsock removes its socket on exit")
    }
}
