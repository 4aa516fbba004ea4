// `--share DIR[:ro]`: accepted once on either platform, refused when repeated; the
// toro-fs arguments and the QEMU arguments it adds (shared memfd memory, the
// vhost-user-fs-device with tag "toro"), alone and beside the vsock back-end.

import XCTest
@testable import ToroTool

final class ShareOptionsTests: XCTestCase {
    func failure(_ arguments: [String]) -> ToolFailure? {
        do {
            _ = try RunOptions.parse(arguments, workingDirectory: "/")
            return nil
        } catch {
            return error
        }
    }

    func testOneShareOnMicroVM() throws {
        let (options, _) = try RunOptions.parse(["--service", "static-web", "--share", "bin:ro", "-p", "8080:80"],
                                                workingDirectory: "/usr")
        XCTAssertEqual(options.shares, [SharedFolder(path: "/usr/bin", readOnly: true)])
        let (writable, _) = try RunOptions.parse(["--share", "/tmp"])
        XCTAssertEqual(writable.shares, [SharedFolder(path: "/tmp", readOnly: false)])
        XCTAssertTrue(writable.given.contains("--share"))
    }

    func testRefusals() {
        let twice = failure(["--share", "/tmp", "--share", "/tmp:ro"])
        XCTAssertEqual(twice?.status, .badArgument)
        XCTAssertEqual(twice?.message, "--share given 2 times: the guest mounts one shared folder (/tmp)")
        let twiceOnLegacy = failure(["--platform", "legacy", "--share", "/tmp", "--share", "/usr"])
        XCTAssertEqual(twiceOnLegacy?.message, "--share given 2 times: the guest mounts one shared folder (/tmp)")
        XCTAssertEqual(failure(["--share", "/no/such/dir"])?.status, .badArgument)
    }

    func testBackendArguments() {
        XCTAssertEqual(FSBackend.arguments(socket: "/t/fs.sock", share: SharedFolder(path: "/s", readOnly: false)),
                       ["--socket", "/t/fs.sock", "--share", "/s"])
        XCTAssertEqual(FSBackend.arguments(socket: "/t/fs.sock", share: SharedFolder(path: "/s d", readOnly: true)),
                       ["--socket", "/t/fs.sock", "--share", "/s d", "--read-only"])
        XCTAssertTrue(FSBackend.directory(forRun: 42).hasSuffix("toro-fs-42"))
    }

    func testQEMUArgumentsWithAShare() {
        var command = QEMUCommand(platform: .microvm, accelerator: .tcg, memoryMiB: 64, cpus: 1,
                                  kernelPath: "/k.elf", kernelCommandLine: "service=static-web")
        command.fsSocket = "/t/fs.sock"
        XCTAssertEqual(command.arguments, [
            "qemu-system-x86_64", "-M", "microvm,pic=off,rtc=on,acpi=off,memory-backend=mem", "-accel", "tcg",
            "-m", "64", "-smp", "1",
            "-object", "memory-backend-memfd,id=mem,size=64M,share=on", "-global", "virtio-mmio.force-legacy=false",
            "-chardev", "socket,id=fs0,path=/t/fs.sock", "-device", "vhost-user-fs-device,chardev=fs0,tag=toro",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", "/k.elf", "-append", "service=static-web",
        ])
    }

    func testQEMUArgumentsWithBothBackends() {
        var command = QEMUCommand(platform: .microvm, accelerator: .tcg, memoryMiB: 128, cpus: 2,
                                  kernelPath: "/k.elf", kernelCommandLine: "service=static-web")
        command.vsockSocket = "/v/vhost-user.sock"
        command.fsSocket = "/t/fs.sock"
        let arguments = command.arguments
        XCTAssertEqual(arguments.filter { $0 == "-object" }.count, 1, "one shared memory backend for both")
        XCTAssertEqual(arguments.filter { $0.hasPrefix("memory-backend-memfd") }, ["memory-backend-memfd,id=mem,size=128M,share=on"])
        let chardevs = arguments.indices.filter { arguments[$0] == "-chardev" }.map { arguments[$0 + 1] }
        XCTAssertEqual(chardevs, ["socket,id=vsock0,path=/v/vhost-user.sock", "socket,id=fs0,path=/t/fs.sock"])
        XCTAssertTrue(arguments.contains("vhost-user-vsock-device,chardev=vsock0"))
        XCTAssertTrue(arguments.contains("vhost-user-fs-device,chardev=fs0,tag=toro"))
    }
}
