// The legacy disk options: `--share DIR[:ro]` on legacy (an ext2 image, DiskImage.swift) and
// `--disk IMAGE`, parsed and refused; the QEMU arguments each adds (virtio-blk-pci, modern
// only, read-only for :ro); the image's size and inode count; e2fsprogs in the install list.

import XCTest
@testable import ToroTool

final class LegacyDiskOptionsTests: XCTestCase {
    func failure(_ arguments: [String], command: String = "run") -> ToolFailure? {
        do {
            _ = try RunOptions.parse(arguments, command: command, workingDirectory: "/")
            return nil
        } catch {
            return error
        }
    }

    /// A regular file that exists for the length of the test.
    func temporaryFile() throws -> String {
        let path = NSTemporaryDirectory() + "toro-disk-option-\(getpid())-\(name.hashValue).img"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(count: 4096)))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testShareOnLegacyIsAccepted() throws {
        let (options, _) = try RunOptions.parse(["--platform", "legacy", "--share", "bin:ro"], workingDirectory: "/usr")
        XCTAssertEqual(options.platform, .legacy)
        XCTAssertEqual(options.shares, [SharedFolder(path: "/usr/bin", readOnly: true)])
        XCTAssertNil(options.disk)
    }

    func testDiskOnLegacy() throws {
        let image = try temporaryFile()
        let folder = (image as NSString).deletingLastPathComponent
        let name = (image as NSString).lastPathComponent
        let (options, _) = try RunOptions.parse(["--platform", "legacy", "--disk", name], workingDirectory: folder)
        XCTAssertEqual(options.disk, image)
        XCTAssertTrue(options.given.contains("--disk"))
    }

    func testDiskRefusals() throws {
        let image = try temporaryFile()
        let microvm = failure(["--disk", image])
        XCTAssertEqual(microvm?.status, .badArgument)
        XCTAssertEqual(microvm?.message, "--disk \(image) needs virtio-blk, which only legacy has (add --platform legacy)")
        let both = failure(["--platform", "legacy", "--disk", image, "--share", "/tmp"])
        XCTAssertEqual(both?.status, .badArgument)
        XCTAssertEqual(both?.message, "--disk \(image) and --share /tmp both give the guest its disk: choose one")
        let missing = failure(["--platform", "legacy", "--disk", "/no/such.img"])
        XCTAssertEqual(missing?.status, .badArgument)
        XCTAssertEqual(missing?.message, "--disk: no such file '/no/such.img' (make an ext2 image with mke2fs -t ext2 FILE SIZE)")
        XCTAssertEqual(failure(["--platform", "legacy", "--disk", "/tmp"])?.message, "--disk: '/tmp' is not a disk image file")
        XCTAssertEqual(failure(["--platform", "legacy", "--disk", image, "--disk", image])?.message,
                       "--disk given twice: the guest has one disk")
        let compare = failure(["--disk", image], command: "compare")
        XCTAssertEqual(compare?.status, .badArgument)
        XCTAssertEqual(compare?.message, "--disk does not apply to compare: microvm has no block device (use --share DIR)")
        for refusal in [microvm, both, missing, compare] { XCTAssertFalse(refusal?.message.contains("\n") ?? true) }
    }

    func legacyCommand() -> QEMUCommand {
        QEMUCommand(platform: .legacy, accelerator: .tcg, memoryMiB: 64, cpus: 1,
                    kernelPath: "/k/toro-legacy.elf", kernelCommandLine: "service=fs-manifest")
    }

    func testQEMUArgumentsForAShareImage() {
        var command = legacyCommand()
        command.disk = DiskAttachment(path: "/tmp/toro-disk-abc/share.ext2", readOnly: false)
        XCTAssertEqual(command.arguments, [
            "qemu-system-x86_64", "-M", "pc", "-accel", "tcg", "-m", "64", "-smp", "1,sockets=1",
            "-drive", "file=/tmp/toro-disk-abc/share.ext2,if=none,id=disk0,format=raw",
            "-device", "virtio-blk-pci,drive=disk0,disable-legacy=on",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", "/k/toro-legacy.elf", "-append", "service=fs-manifest",
        ])
    }

    func testQEMUArgumentsReadOnlyAndEscaped() {
        var command = legacyCommand()
        command.disk = DiskAttachment(path: "/a,b/share.ext2", readOnly: true)
        let arguments = command.arguments
        let drive = arguments[arguments.firstIndex(of: "-drive")! + 1]
        XCTAssertEqual(drive, "file=/a,,b/share.ext2,if=none,id=disk0,format=raw,readonly=on")
        XCTAssertTrue(command.shellLine.contains(" -drive file=/a,,b/share.ext2,if=none,id=disk0,format=raw,readonly=on -device virtio-blk-pci,drive=disk0,disable-legacy=on "))
    }

    func testQEMUArgumentsForDisk() throws {
        let image = try temporaryFile()
        let (options, _) = try RunOptions.parse(["--platform", "legacy", "--disk", image])
        let command = QEMUCommand(options: options, accelerator: .tcg, kernelPath: "/k.elf")
        XCTAssertEqual(command.disk, DiskAttachment(path: image, readOnly: false))
        XCTAssertTrue(command.arguments.contains("file=\(image),if=none,id=disk0,format=raw"))
        XCTAssertTrue(command.arguments.contains("virtio-blk-pci,drive=disk0,disable-legacy=on"))
        // A shared folder's image is attached by run once built, not from the options.
        let (shared, _) = try RunOptions.parse(["--platform", "legacy", "--share", "/tmp"])
        XCTAssertNil(QEMUCommand(options: shared, accelerator: .tcg, kernelPath: "/k.elf").disk)
    }

    func testMicroVMNeverGetsADrive() {
        var command = QEMUCommand(platform: .microvm, accelerator: .tcg, memoryMiB: 64, cpus: 1,
                                  kernelPath: "/k.elf", kernelCommandLine: "")
        command.disk = DiskAttachment(path: "/d.img", readOnly: false)
        XCTAssertFalse(command.arguments.contains("-drive"))
    }

    func testImageSizeAndInodes() {
        let mib: Int64 = 1 << 20
        var tree = FolderTree()
        XCTAssertEqual(DiskImage.size(for: tree), 64 * mib)
        XCTAssertEqual(DiskImage.inodes(for: tree, size: 64 * mib), 8192, "one per 8 KiB")
        tree.entries["big"] = .file(size: 100 * mib)
        XCTAssertEqual(DiskImage.size(for: tree), 217 * mib, "2 × (100 MiB + 4 KiB + 256 B) + 16 MiB, rounded up to a MiB")
        var many = FolderTree()
        for index in 0..<10_000 { many.entries["f\(index)"] = .file(size: 1) }
        XCTAssertEqual(DiskImage.size(for: many), 100 * mib)
        XCTAssertEqual(DiskImage.inodes(for: many, size: 100 * mib), 2 * 10_000 + 1024)
        let arguments = DiskImage.mke2fsArguments(source: "/s d", image: "/i.ext2", tree: FolderTree(), blockSize: 4096)
        XCTAssertEqual(arguments, ["-q", "-F", "-t", "ext2", "-I", "256", "-m", "0", "-N", "8192", "-b", "4096",
                                   "-d", "/s d", "/i.ext2", "65536k"])
    }

    func testE2fsprogsAreInstalledWhenNeeded() throws {
        var options = RunOptions()
        XCTAssertEqual(Installer.forBooting(options), [Installer.qemu])
        options.platform = .legacy
        XCTAssertEqual(Installer.forBooting(options), [Installer.qemu])
        options.shares = [SharedFolder(path: "/tmp", readOnly: true)]
        XCTAssertEqual(Installer.forBooting(options).map(\.command), ["qemu-system-x86_64", "mke2fs", "e2fsck", "debugfs"])
        XCTAssertTrue(Installer.forTesting.contains(Installer.debugfs))
        XCTAssertEqual(Installer.installCommand(for: Installer.forBooting(options), sudo: false),
                       "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-x86 e2fsprogs")
    }
}
