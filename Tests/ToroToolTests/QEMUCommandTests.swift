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
        XCTAssertEqual(GuestPlatform.legacy.imageName, "toro-legacy.elf")
        XCTAssertEqual(Paths(root: "/r").image(.microvm, service: "kv"), "/r/.build-kernel/images/kv/toro-microvm.elf")
    }

    func testServicesListingGroupsApplicationsAndProbes() {
        let lines = Services.listing().split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, Services.all.count + 2)
        XCTAssertEqual(lines.first, "applications:")
        let probes = lines.firstIndex { $0.hasPrefix("probes") }!
        XCTAssertTrue(lines[1..<probes].contains { $0.hasPrefix("  hello ") })
        XCTAssertTrue(lines[probes...].contains { $0.hasPrefix("  fault ") })
        XCTAssertEqual(Services.named("kv")?.kind, .application)
        XCTAssertEqual(Services.named("memtest")?.kind, .probe)
        XCTAssertEqual(Services.named("static-web")?.module, "static_web")
        XCTAssertNil(Services.named("nosuch"))
    }

    /// Every folder under Sources/Services/{Applications,Probes} declares a service the
    /// tool can read, named like its folder, and the thirteen we ship are all there.
    func testEveryServiceFolderDeclaresItsService() {
        let root = Paths.fromEnvironment().root
        for entry in Services.catalog(root: root) {
            if case .failure(let failure) = entry { XCTFail(failure.message) }
        }
        let names = Set(Services.all.map(\.name))
        for name in ["hello", "kv", "static-web", "fs-manifest", "hostping", "fault", "memtest", "intercore",
                     "threads", "clock", "threadstress", "stackoverflow", "irqtest"] {
            XCTAssertTrue(names.contains(name), name)
        }
        XCTAssertEqual(Services.named("kv")?.devices, ["sockets", "files"])
        XCTAssertEqual(Services.named("hello")?.devices, [])
    }

    func testServiceDeclarationsAreParsedOrRefused() throws {
        let good = """
            @_silgen_name("toro_service")
            public func service() -> Service {
                Service(name: "greeter", summary: "says hello", devices: [.sockets]) { _ in .success }
            }
            """
        let info = try Services.parse(good, kind: .application, file: "g.swift")
        XCTAssertEqual(info, ServiceInfo(name: "greeter", summary: "says hello", kind: .application, devices: ["sockets"]))
        XCTAssertThrowsError(try Services.parse(good.replacingOccurrences(of: ".sockets", with: ".disks"),
                                                kind: .application, file: "g.swift"))
        XCTAssertThrowsError(try Services.parse(good.replacingOccurrences(of: "\"greeter\"", with: "\"Greeter\""),
                                                kind: .application, file: "g.swift"))
        XCTAssertThrowsError(try Services.parse(good.replacingOccurrences(of: "summary: \"says hello\", ", with: ""),
                                                kind: .application, file: "g.swift"))
        XCTAssertTrue(Services.isValidName("static-web"))
        XCTAssertFalse(Services.isValidName("9lives"))
        XCTAssertFalse(Services.isValidName("a_b"))
    }
}
