// QEMU command lines for both platforms, the accelerator choice, and shell quoting.

import XCTest
@testable import ToroTool

final class QEMUCommandTests: XCTestCase {
    func testMicroVMCommandLine() throws {
        var options = RunOptions()
        options.cpus = 2
        options.memoryMiB = 128
        options.kernelArgs = ["x=1"]
        let command = QEMUCommand(options: options, accelerator: .tcg, kernelPath: "/k/toro-microvm.elf")
        XCTAssertEqual(command.arguments, [
            "qemu-system-x86_64", "-M", "microvm,pic=off,rtc=on,acpi=off", "-accel", "tcg",
            "-m", "128", "-smp", "2", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", "/k/toro-microvm.elf", "-append", "service=hello x=1",
        ])
    }

    func testLegacyCommandLineWithKVM() {
        var options = RunOptions()
        options.platform = .legacy
        options.service = "fault"
        options.cpus = 4
        let command = QEMUCommand(options: options, accelerator: .kvm, kernelPath: "/k/toro-legacy.elf")
        XCTAssertEqual(command.arguments, [
            "qemu-system-x86_64", "-M", "pc", "-accel", "kvm", "-cpu", "host",
            "-m", "64", "-smp", "4,sockets=4", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", "/k/toro-legacy.elf", "-append", "service=fault",
        ])
    }

    func testShellLine() {
        var options = RunOptions()
        options.kernelArgs = ["it's", "a b"]
        let command = QEMUCommand(options: options, accelerator: .tcg, kernelPath: "/path with space/k.elf")
        XCTAssertTrue(command.shellLine.hasPrefix("qemu-system-x86_64 -M microvm,pic=off,rtc=on,acpi=off -accel tcg "))
        XCTAssertTrue(command.shellLine.hasSuffix("-kernel '/path with space/k.elf' -append 'service=hello it'\\''s a b'"))
        XCTAssertEqual(shellQuote(""), "''")
        XCTAssertEqual(shellQuote("isa-debug-exit,iobase=0xf4"), "isa-debug-exit,iobase=0xf4")
        XCTAssertEqual(shellQuote("$HOME"), "'$HOME'")
    }

    func testAcceleratorChoice() throws {
        let pvm = HostFacts(kvmIsPVM: true, kvmUsable: true)
        let hardware = HostFacts(kvmIsPVM: false, kvmUsable: true)
        let none = HostFacts(kvmIsPVM: false, kvmUsable: false)
        XCTAssertEqual(try AccelChoice.auto.resolve(on: pvm), .tcg)
        XCTAssertEqual(try AccelChoice.auto.resolve(on: hardware), .kvm)
        XCTAssertEqual(try AccelChoice.auto.resolve(on: none), .tcg)
        XCTAssertEqual(try AccelChoice.tcg.resolve(on: hardware), .tcg)
        XCTAssertEqual(try AccelChoice.kvm.resolve(on: hardware), .kvm)
        for host in [pvm, none] {
            XCTAssertThrowsError(try AccelChoice.kvm.resolve(on: host)) { error in
                let failure = error as! ToolFailure
                XCTAssertEqual(failure.status, .badArgument)
                XCTAssertFalse(failure.message.contains("\n"))
            }
        }
        XCTAssertThrowsError(try AccelChoice.kvm.resolve(on: pvm)) { error in
            XCTAssertTrue((error as! ToolFailure).message.contains("kvm-pvm"))
        }
        XCTAssertEqual(Accelerator.kvm.qemuArguments, ["-accel", "kvm", "-cpu", "host"])
    }

    func testPlatformFacts() {
        XCTAssertEqual(GuestPlatform.microvm.entrySymbol, "pvh_start")
        XCTAssertEqual(GuestPlatform.legacy.entrySymbol, "multiboot_start")
        XCTAssertEqual(GuestPlatform.microvm.product, "MicroVMKernel")
        XCTAssertEqual(GuestPlatform.legacy.imageName, "toro-legacy.elf")
        XCTAssertEqual(Paths(root: "/r").image(.microvm), "/r/.build-kernel/toro-microvm.elf")
    }

    func testServicesListing() {
        let lines = Services.listing().split(separator: "\n")
        XCTAssertEqual(lines.count, Services.all.count)
        XCTAssertTrue(lines[0].hasPrefix("hello "))
        XCTAssertNotNil(Services.named("memtest"))
        XCTAssertNil(Services.named("nosuch"))
    }
}
