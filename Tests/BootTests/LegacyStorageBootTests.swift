// Tier 2-3: Legacy's storage path end to end under QEMU: PCI, virtio-pci, virtio-blk, the
// buffer cache and ext2, against the host side's ext2 image (mke2fs -d, e2fsck, debugfs).
//   * `./toro compare` of fs-manifest and files with their Compat folders: the same
//     transcript on both platforms (virtio-fs on microvm) and the same folder afterwards;
//   * what `files` wrote to a `--disk` image is there at the next boot (fs-manifest lists
//     it), and the image passes `e2fsck -fn`;
//   * an ext4 image is refused with one line and its bytes are unchanged;
//   * `--share DIR:ro` changes nothing in DIR;
//   * a virtio-blk and a virtio-net device on one interrupt line (slots 2 and 6: SeaBIOS
//     gives both IRQ 10): the disk works, the net device is left alone (fs-manifest uses
//     no sockets).

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import ToroTool

final class LegacyStorageBootTests: XCTestCase {
    func folder(_ name: String) -> String {
        NSTemporaryDirectory() + "toro-legacy-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Runs a host tool, failing the test with its output when it exits non-zero (unless
    /// `allowFailure`); returns its output.
    @discardableResult
    func host(_ arguments: [String], allowFailure: Bool = false, file: StaticString = #filePath, line: UInt = #line) -> (status: Int32, output: String) {
        guard let tool = Installer.which(arguments[0]) else {
            XCTFail("\(arguments[0]) is missing: run ./toro test, which installs e2fsprogs", file: file, line: line)
            return (-1, "")
        }
        var process = Subprocess([tool] + arguments.dropFirst())
        process.timeout = 60
        let result = process.run()
        let status = result.exitCode ?? -1
        if status != 0 && !allowFailure {
            XCTFail("\(arguments.joined(separator: " ")) exited \(status):\n\(result.output)\(result.errorOutput)", file: file, line: line)
        }
        return (status, result.output + result.errorOutput)
    }

    func testCompareFSManifestAndFilesAgreeOnBothPlatforms() {
        guard Harness.preflight() else { return }
        for service in ["fs-manifest", "files"] {
            let result = Harness.toro(["compare", "--service", service], limit: 600)
            let dump = Harness.describe(result)
            XCTAssertEqual(result.termination, .exited(0), dump)
            XCTAssertTrue(result.output.contains("match: legacy matches Compat/\(service)/expected"), dump)
            XCTAssertTrue(result.output.contains("match: microvm matches Compat/\(service)/expected"), dump)
            XCTAssertTrue(result.output.contains("the shared folder's microvm and legacy copies are identical afterwards"), dump)
        }
    }

    func testWhatFilesWroteToADiskIsThereAtTheNextBootAndTheImageIsClean() throws {
        guard Harness.preflight() else { return }
        let work = folder("disk")
        try FileManager.default.createDirectory(atPath: work + "/src", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        try "before\n".write(toFile: work + "/src/before.txt", atomically: true, encoding: .utf8)
        let image = work + "/disk.ext2"
        host(["mke2fs", "-q", "-F", "-t", "ext2", "-d", work + "/src", image, "16M"])

        let first = Harness.toro(["run", "--platform", "legacy", "--service", "files", "--disk", image, "--timeout", "300"], limit: 360)
        XCTAssertEqual(first.termination, .exited(0), Harness.describe(first))
        XCTAssertTrue(first.output.contains("files: every step as expected"), Harness.describe(first))
        XCTAssertTrue(first.output.contains("ext2: cache hits"), "the unmount logged the cache's statistics\n" + Harness.describe(first))
        host(["e2fsck", "-fn", image])

        let second = Harness.toro(["run", "--platform", "legacy", "--service", "fs-manifest", "--disk", image, "--timeout", "300"], limit: 360)
        let dump = Harness.describe(second)
        XCTAssertEqual(second.termination, .exited(0), dump)
        let lines = Harness.lines(second.output)
        XCTAssertTrue(lines.contains("before.txt 7 " + crc("before\n")), dump)
        XCTAssertTrue(lines.contains("files-out/kept.txt 17 " + crc("written by files\n")), "the first boot's file is on the disk\n" + dump)
        XCTAssertTrue(lines.contains("fs-manifest: 2 files"), dump)
        let check = host(["e2fsck", "-fn", image])
        XCTAssertFalse(check.output.contains("Fix?"), check.output)
    }

    func testAnExt4ImageIsRefusedWithOneLineAndLeftAsItWas() throws {
        guard Harness.preflight() else { return }
        let work = folder("ext4")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let image = work + "/disk.ext4"
        host(["mke2fs", "-q", "-F", "-t", "ext4", image, "16M"])
        let before = try Data(contentsOf: URL(fileURLWithPath: image))
        let result = Harness.toro(["run", "--platform", "legacy", "--service", "fs-manifest", "--disk", image, "--timeout", "120"], limit: 180)
        let dump = Harness.describe(result)
        XCTAssertEqual(result.termination, .exited(1), "fs-manifest finds no files: status 1\n" + dump)
        let refusals = Harness.lines(result.output).filter { $0.contains("virtio-blk") && $0.contains("ext2:") }
        XCTAssertEqual(refusals.count, 1, dump)
        XCTAssertTrue(refusals.first?.contains("incompatible features") == true || refusals.first?.contains("feature") == true,
                      "the refusal names the features\n" + dump)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: image)), before, "the image's bytes are unchanged")
    }

    func testReadOnlyShareChangesNothing() throws {
        guard Harness.preflight() else { return }
        let share = folder("ro")
        try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: share) }
        try "keep me\n".write(toFile: share + "/keep.txt", atomically: true, encoding: .utf8)
        let before = try FileManager.default.subpathsOfDirectory(atPath: share).sorted()
        let result = Harness.toro(["run", "--platform", "legacy", "--service", "files", "--share", share + ":ro", "--timeout", "120"], limit: 180)
        let dump = Harness.describe(result)
        XCTAssertEqual(result.termination, .exited(1), "files cannot write a read-only folder\n" + dump)
        XCTAssertTrue(result.output.contains("read-only"), dump)
        XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: share).sorted(), before, dump)
        XCTAssertEqual(try String(contentsOfFile: share + "/keep.txt", encoding: .utf8), "keep me\n")
    }

    func testABlockAndANetworkDeviceShareOneInterruptLine() throws {
        guard Harness.preflight() else { return }
        let work = folder("shared-irq")
        try FileManager.default.createDirectory(atPath: work + "/src", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        try "shared line\n".write(toFile: work + "/src/a.txt", atomically: true, encoding: .utf8)
        let image = work + "/disk.ext2"
        host(["mke2fs", "-q", "-F", "-t", "ext2", "-d", work + "/src", image, "16M"])
        // The command toro would run, with the disk in slot 2 and a virtio-net in slot 6:
        // SeaBIOS routes INTA of both to IRQ 10 (its pci_irqs[(pin-1 + slot-1) & 3]).
        let printed = Harness.toro(["run", "--platform", "legacy", "--service", "fs-manifest", "--disk", image, "--print-command"])
        guard let line = Harness.lines(printed.output).last(where: { $0.hasPrefix("qemu-system-x86_64 ") }) else {
            return XCTFail("no QEMU command line\n" + Harness.describe(printed))
        }
        var arguments = line.split(separator: " ").map(String.init).map { $0.replacingOccurrences(of: "'", with: "") }
        guard let device = arguments.firstIndex(where: { $0.hasPrefix("virtio-blk-pci,") }) else {
            return XCTFail("no virtio-blk-pci in \(line)")
        }
        arguments[device] += ",addr=2"
        arguments += ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,disable-legacy=on,addr=6"]
        var qemu = Subprocess(arguments)
        qemu.timeout = 120
        let result = qemu.run()
        let output = result.output + result.errorOutput
        XCTAssertEqual(result.exitCode, 1, "isa-debug-exit: the guest's status 0 is QEMU's exit 1\n" + output)
        let lines = Harness.lines(output)
        XCTAssertTrue(lines.contains { $0.contains("devices: virtio-blk at PCI 0:2.0, IRQ 10") }, output)
        XCTAssertTrue(lines.contains { $0.contains("devices: virtio-net at PCI 0:6.0, IRQ 10: the service does not use it, left alone") },
                      output)
        XCTAssertTrue(lines.contains("a.txt 12 " + crc("shared line\n")), output)
        XCTAssertTrue(lines.contains("fs-manifest: 1 files") || lines.contains("fs-manifest: 1 file"), output)
    }

    func crc(_ text: String) -> String {
        String(format: "%08x", CRC32Reference.checksum(Array(text.utf8)))
    }
}

/// CRC-32 (IEEE, reflected, as zlib), written here independently of the kernel's.
enum CRC32Reference {
    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
