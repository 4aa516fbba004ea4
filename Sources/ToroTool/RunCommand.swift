// `toro run`: validate, install what is missing, build, boot, and exit with the guest's
// status (see ExitStatus.swift for the table). `toro build` lives here too: it is the
// build half of run.
//
// A shared folder on legacy is an ext2 image (DiskImage.swift): built after the kernel,
// attached as virtio-blk-pci, and after the guest exits (any status) checked and written
// back into the folder, with one line saying what happened; the run's status stays the
// guest's. Stopping toro (Ctrl-C, SIGTERM) stops the guest and still writes the folder
// back, then exits with 128 + the signal: a server's saved state (kv's SAVE) is kept.
// `--print-command` shows the mke2fs line that would build it first.
//
// Sockets (RunOptions.wantsNetwork): a microvm run starts toro-vsock; a legacy run gets a
// virtio-net NIC on QEMU's user networking (with `-p`'s hostfwd rules, each behind toro's
// own front: LegacyFront.swift) or on `--net-socket PATH`. slirp accepts a forwarded
// connection before the guest answers, so a client waits for the service's `ready:` line,
// as on microvm.

import Foundation

public enum RunCommand {
    public static func main(_ arguments: [String], paths: Paths) -> Int32 {
        do throws(ToolFailure) {
            let (options, _) = try RunOptions.parse(arguments, command: "run",
                                                    workingDirectory: Paths.userDirectory())
            try options.checkMemory(minimumMiB: ELFImage.minimumMemoryMiB(path: paths.image(options.platform, service: options.service)))
            let accelerator = try options.accel.resolve(on: HostFacts.probe())
            if !options.printCommand { try Installer.ensure(Installer.forBooting(options)) }
            let image = try KernelBuilder(paths: paths).build(options.platform, service: options.service)
            var command = QEMUCommand(options: options, accelerator: accelerator, kernelPath: image)
            // The socket device: on microvm toro-vsock beside QEMU; on legacy the NIC is part
            // of QEMU's own command line (QEMUCommand). One rule decides both (wantsNetwork).
            let wantsSockets = options.wantsNetwork && options.platform == .microvm
            let share = options.platform == .microvm ? options.shares.first : nil
            let legacyShare = options.platform == .legacy ? options.shares.first : nil
            if options.printCommand {
                // Each back-end's line first (started in the background), QEMU's last.
                if let legacyShare {
                    let tree = try FolderTree.scan(legacyShare.path)
                    if !tree.leftOut.isEmpty {
                        Console.line("# toro builds the image from a copy of the folder without: " + tree.leftOutSummary)
                    }
                    let mke2fs = ["mke2fs"] + DiskImage.mke2fsArguments(source: legacyShare.path, image: DiskImage.printedImage, tree: tree)
                    Console.line(mke2fs.map(shellQuote).joined(separator: " "))
                    command.disk = DiskAttachment(path: DiskImage.printedImage, readOnly: legacyShare.readOnly)
                }
                if let share {
                    let directory = "/tmp/toro-fs"
                    command.fsSocket = directory + "/fs.sock"
                    let backend = [paths.root + "/.build/debug/toro-fs"]
                        + FSBackend.arguments(socket: command.fsSocket!, share: share)
                    Console.line(backend.map(shellQuote).joined(separator: " ") + " &")
                }
                if wantsSockets {
                    let directory = "/tmp/toro-vsock"
                    command.vsockSocket = directory + "/vhost-user.sock"
                    let backend = [paths.root + "/.build/debug/toro-vsock"]
                        + VsockBackend.arguments(socket: command.vsockSocket!, hybrid: directory + "/vsock.sock", ports: options.ports)
                    Console.line(backend.map(shellQuote).joined(separator: " ") + " &")
                }
                Console.line(command.shellLine)
                return 0
            }
            // Legacy -p: toro's own front listens on each host port with a full backlog and
            // slirp's hostfwd gets an internal port (LegacyFront.swift); started before QEMU.
            let front = try LegacyFront.attach(to: &command)
            var shareDisk: ShareDisk? = nil
            if let legacyShare {
                let disk: ShareDisk
                do throws(ToolFailure) {
                    disk = try DiskImage.build(legacyShare)
                } catch {
                    front?.stop()
                    throw error
                }
                shareDisk = disk
                command.disk = DiskAttachment(path: disk.imagePath, readOnly: legacyShare.readOnly)
                let left = disk.tree.leftOut.isEmpty ? "" : "; left out: " + disk.tree.leftOutSummary
                Console.progress("built an ext2 image of \(legacyShare.path) (\(disk.tree.entries.count) entries\(left))")
            }
            var fsBackend: HostBackend? = nil
            if let share {
                fsBackend = try FSBackend.start(paths: paths, share: share)
                command.fsSocket = fsBackend!.socketPath
            }
            var backend: HostBackend? = nil
            if wantsSockets {
                do throws(ToolFailure) {
                    backend = try VsockBackend.start(paths: paths, ports: options.ports)
                } catch {
                    fsBackend?.stop()
                    throw error
                }
                command.vsockSocket = backend!.socketPath
            }
            let died = DiedNote()
            let onDeath: @Sendable (String) -> Void = { message in
                // A back-end also exits, normally, when QEMU closes its socket on the way
                // out; only a back-end that is gone while QEMU still runs is a failure.
                usleep(300_000)
                if died.guestFinished { return }
                died.set(message)
                ChildRegistry.killAll()
            }
            backend?.watch(onDeath)
            fsBackend?.watch(onDeath)
            let cpus = options.cpus == 1 ? "1 CPU" : "\(options.cpus) CPUs"
            Console.progress("booting \(options.service) on \(options.platform.rawValue) (\(accelerator.rawValue), \(cpus), \(options.memoryMiB) MiB)")
            // Ctrl-C (or SIGTERM) stops a legacy guest with a shared folder and still writes
            // the folder back: what the guest saved before it stopped is kept.
            ChildRegistry.finishBeforeExit = shareDisk != nil
            let outcome = Boot.run(command, timeout: options.timeoutSeconds, echo: true)
            died.guestFinished = true
            LegacyFront.finish(front)
            backend?.stop()
            fsBackend?.stop()
            if let shareDisk {
                let report = DiskImage.finish(shareDisk).report
                if report.isError { Console.error(report.line) } else { Console.progress(report.line) }
            }
            if ChildRegistry.pendingSignal != 0 {
                Console.progress("stopped by signal \(ChildRegistry.pendingSignal)")
                return 128 + ChildRegistry.pendingSignal
            }
            if let message = died.get() {
                Console.error(message)
                return ToroStatus.qemuFailed.rawValue
            }
            if let message = outcome.message { Console.error(message) }
            return outcome.status.rawValue
        } catch {
            Console.error(error.message)
            return error.status.rawValue
        }
    }
}

public enum BuildCommand {
    /// `toro build [--service NAME|all] [--platform microvm|legacy|all]`: progress on stderr,
    /// then each image's path on stdout (default: hello on both platforms).
    public static func main(_ arguments: [String], paths: Paths) -> Int32 {
        do throws(ToolFailure) {
            var platforms = GuestPlatform.allCases
            var services = ["hello"]
            var reader = ArgumentReader(arguments)
            while let flag = try reader.nextFlag() {
                if flag == "--service" {
                    let name = try reader.value(for: flag)
                    if name == "all" { services = Services.all.map(\.name); continue }
                    guard Services.named(name) != nil else {
                        throw ToolFailure(.badArgument, "unknown service '\(name)' (known: \(Services.all.map(\.name).joined(separator: ", ")), all)")
                    }
                    services = [name]
                    continue
                }
                guard flag == "--platform" else { throw ArgumentReader.unknown(flag, command: "build") }
                let name = try reader.value(for: flag)
                if name == "all" { platforms = GuestPlatform.allCases; continue }
                guard let platform = GuestPlatform(rawValue: name) else {
                    throw ToolFailure(.badArgument, "unknown platform '\(name)' (choose \(GuestPlatform.names), all)")
                }
                platforms = [platform]
            }
            if !reader.passthrough.isEmpty {
                throw ToolFailure(.badArgument, "build takes no kernel arguments")
            }
            let builder = KernelBuilder(paths: paths)
            var images: [String] = []
            for service in services {
                for platform in platforms { images.append(try builder.build(platform, service: service)) }
            }
            for image in images { Console.line(image) }
            return 0
        } catch {
            Console.error(error.message)
            return error.status.rawValue
        }
    }
}

/// A message one thread leaves for another.
final class DiedNote: @unchecked Sendable {
    private let lock = NSLock()
    private var message: String?
    private var finished = false
    var guestFinished: Bool {
        get { lock.lock(); defer { lock.unlock() }; return finished }
        set { lock.lock(); finished = newValue; lock.unlock() }
    }
    /// Keeps the first message: a back-end that dies takes the other down with the guest.
    func set(_ text: String) { lock.lock(); if message == nil { message = text }; lock.unlock() }
    func get() -> String? { lock.lock(); defer { lock.unlock() }; return message }
}
