// The virtio-fs back-end `toro run --share DIR[:ro]` starts beside QEMU: `toro-fs`, the
// project's vhost-user server for QEMU's vhost-user-fs-device, confined to DIR (it refuses
// symlinks that lead out of it; with `--read-only` every change is refused).
//
// Life cycle, as for the vsock back-end (VsockBackend.swift): built with the host tool
// unless TORO_NO_BUILD, started before QEMU (QEMU connects to its socket at start-up),
// stopped after QEMU. It exits 0 by itself when QEMU disconnects; if it dies while the
// guest runs, toro stops QEMU too and reports it in one line (status 125).
// Its socket lives in a folder of its own, `toro-fs-<pid of toro>/fs.sock` under the
// temporary folder; the boot tests find the process by that path in /proc/*/cmdline.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class FSBackend: @unchecked Sendable {
    public let directory: String
    public var socketPath: String { directory + "/fs.sock" }
    let process = Process()
    private let lock = NSLock()
    private var stoppedOnPurpose = false

    init(directory: String) { self.directory = directory }

    /// The folder `toro run` (whose pid is `pid`) keeps the back-end's socket in.
    public static func directory(forRun pid: Int32) -> String {
        NSTemporaryDirectory() + "toro-fs-\(pid)"
    }

    /// The arguments toro-fs gets for `share`.
    public static func arguments(socket: String, share: SharedFolder) -> [String] {
        ["--socket", socket, "--share", share.path] + (share.readOnly ? ["--read-only"] : [])
    }

    /// Builds toro-fs when needed and returns its path.
    public static func executable(paths: Paths) throws(ToolFailure) -> String {
        let path = paths.root + "/.build/debug/toro-fs"
        // `toro test` builds it once up front; a build here would wait on the running
        // `swift test`'s lock on .build.
        if KernelBuilder.skipBuild {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw ToolFailure(.buildFailed, "TORO_NO_BUILD is set but \(path) does not exist; run swift build --product toro-fs")
            }
            return path
        }
        Console.progress("building the virtio-fs back-end (toro-fs)…")
        var build = Subprocess(["swift", "build", "--product", "toro-fs"])
        build.directory = paths.root
        build.mergeStderr = true
        let result = build.run()
        guard result.exitCode == 0 else {
            throw ToolFailure(.buildFailed, "building toro-fs failed: " + (result.output.split(separator: "\n").last.map(String.init) ?? ""))
        }
        return path
    }

    /// Starts the back-end for `share` and waits (up to 10 s) for its vhost-user socket.
    public static func start(paths: Paths, share: SharedFolder) throws(ToolFailure) -> FSBackend {
        let binary = try executable(paths: paths)
        let backend = FSBackend(directory: directory(forRun: getpid()))
        try? FileManager.default.removeItem(atPath: backend.directory)
        try? FileManager.default.createDirectory(atPath: backend.directory, withIntermediateDirectories: true)
        backend.process.executableURL = URL(fileURLWithPath: binary)
        backend.process.arguments = arguments(socket: backend.socketPath, share: share)
        do {
            try backend.process.run()
        } catch {
            throw ToolFailure(.qemuFailed, "could not start toro-fs: \(error)")
        }
        ChildRegistry.add(pid: backend.process.processIdentifier, group: false)
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: backend.socketPath) {
            guard backend.process.isRunning, Date() < deadline else {
                let status = backend.process.isRunning ? "" : " (it exited with status \(backend.process.terminationStatus))"
                backend.stop()
                throw ToolFailure(.qemuFailed, "toro-fs did not open its socket \(backend.socketPath)\(status)")
            }
            usleep(10_000)
        }
        return backend
    }

    /// Calls `died` (on another thread) if the back-end exits before `stop`.
    public func watch(_ died: @escaping @Sendable (String) -> Void) {
        let process = self.process
        Thread.detachNewThread { [self] in
            process.waitUntilExit()
            lock.lock()
            let purposeful = stoppedOnPurpose
            lock.unlock()
            if !purposeful {
                let how = process.terminationReason == .uncaughtSignal
                    ? "was killed by signal \(process.terminationStatus)" : "exited with status \(process.terminationStatus)"
                died("the virtio-fs back-end (toro-fs) \(how) while the guest ran; the guest was stopped")
            }
        }
    }

    public func stop() {
        lock.lock()
        stoppedOnPurpose = true
        lock.unlock()
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        ChildRegistry.remove(pid: process.processIdentifier)
        try? FileManager.default.removeItem(atPath: directory)
    }
}
