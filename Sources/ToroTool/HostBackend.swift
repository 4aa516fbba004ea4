// A host back-end process `toro run` starts beside QEMU: `toro-vsock` (VsockBackend.swift)
// and `toro-fs` (FSBackend.swift). Each serves one vhost-user socket QEMU connects to at
// start-up.
//
// Life cycle: built with the host tool (unless TORO_NO_BUILD: `toro test` builds them once
// up front, and a build here would wait on the running `swift test`'s lock on .build),
// started before QEMU with its socket in a folder of its own, watched while the guest
// runs, stopped after QEMU. A back-end exits by itself when QEMU disconnects; if one dies
// while the guest still runs, toro stops QEMU and reports it in one line (status 125), so
// no process is left behind.
//
// Waiting: Foundation's `Process.waitUntilExit` spins a run loop on Linux (a watcher
// thread took half a core for as long as the guest ran, on machines with two), so the
// watcher polls `isRunning` every 50 ms instead.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class HostBackend: @unchecked Sendable {
    /// The SwiftPM product, also the process name in messages ("toro-fs").
    public let product: String
    /// What it is, for messages ("the virtio-fs back-end").
    public let role: String
    /// The folder holding its socket(s); removed by `stop`.
    public let directory: String
    public let socketPath: String
    let process = Process()
    private let lock = NSLock()
    private var stoppedOnPurpose = false

    init(product: String, role: String, directory: String, socketPath: String) {
        self.product = product
        self.role = role
        self.directory = directory
        self.socketPath = socketPath
    }

    /// Builds `product` when needed and returns its path.
    public static func executable(_ product: String, role: String, paths: Paths) throws(ToolFailure) -> String {
        let path = paths.root + "/.build/debug/" + product
        if KernelBuilder.skipBuild {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw ToolFailure(.buildFailed, "TORO_NO_BUILD is set but \(path) does not exist; run swift build --product \(product)")
            }
            return path
        }
        Console.progress("building \(role) (\(product))…")
        var build = Subprocess(["swift", "build", "--product", product])
        build.directory = paths.root
        build.mergeStderr = true
        let result = build.run()
        guard result.exitCode == 0 else {
            throw ToolFailure(.buildFailed, "building \(product) failed: " + (result.output.split(separator: "\n").last.map(String.init) ?? ""))
        }
        return path
    }

    /// Starts `product` with `arguments` and waits (up to 10 s) for `socketPath` to appear.
    /// `directory` is emptied and created first.
    public static func start(_ product: String, role: String, paths: Paths, directory: String,
                             socketPath: String, arguments: [String]) throws(ToolFailure) -> HostBackend {
        let binary = try executable(product, role: role, paths: paths)
        let backend = HostBackend(product: product, role: role, directory: directory, socketPath: socketPath)
        try makePrivateDirectory(directory)
        backend.process.executableURL = URL(fileURLWithPath: binary)
        backend.process.arguments = arguments
        do {
            try backend.process.run()
        } catch {
            throw ToolFailure(.qemuFailed, "could not start \(product): \(error)")
        }
        ChildRegistry.add(pid: backend.process.processIdentifier, group: false)
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: socketPath) {
            guard backend.process.isRunning, Date() < deadline else {
                let status = backend.process.isRunning ? "" : " (it exited with status \(backend.process.terminationStatus))"
                backend.stop()
                throw ToolFailure(.qemuFailed, "\(product) did not open its socket \(socketPath)\(status)")
            }
            usleep(10_000)
        }
        return backend
    }

    /// Creates `path` as a folder only this user can enter (0700). A leftover of an earlier
    /// run is reused only if it is a real folder (not a symlink) that this user owns; its
    /// contents are removed first. Anything else at that path in a shared /tmp (another
    /// user's folder, a link planted towards /etc while toro runs as root) is refused, so
    /// the back-end's socket is never created through someone else's link.
    static func makePrivateDirectory(_ path: String) throws(ToolFailure) {
        sweepStaleDirectories()
        if mkdir(path, 0o700) == 0 { return }
        let why = errnoText()
        var info = stat()
        guard errno == EEXIST, lstat(path, &info) == 0 else {
            throw ToolFailure(.qemuFailed, "cannot create the back-end folder \(path): \(why)")
        }
        guard info.st_mode & S_IFMT == S_IFDIR, info.st_uid == geteuid() else {
            throw ToolFailure(.qemuFailed, "\(path) exists and is not a folder of this user's; remove it and run again")
        }
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in leftovers { try? FileManager.default.removeItem(atPath: path + "/" + name) }
        chmod(path, 0o700)
    }

    /// Removes the back-end folders (`toro-vsock-PID`, `toro-fs-PID`) of runs whose toro is
    /// gone: a run stopped by a signal exits at once and leaves its folder behind. Only real
    /// folders this user owns whose PID no longer exists are removed.
    static func sweepStaleDirectories(in parent: String = NSTemporaryDirectory()) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
        for name in names {
            guard let pid = staleRunPID(name), kill(pid, 0) != 0 && errno == ESRCH else { continue }
            let path = (parent.hasSuffix("/") ? parent : parent + "/") + name
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == geteuid() else { continue }
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    /// The PID in a back-end folder's name, or nil for any other name.
    static func staleRunPID(_ name: String) -> pid_t? {
        for prefix in ["toro-vsock-", "toro-fs-"] where name.hasPrefix(prefix) {
            let digits = name.dropFirst(prefix.count)
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let pid = pid_t(digits), pid > 0 else { return nil }
            return pid
        }
        return nil
    }

    /// Calls `died` (on another thread) if the back-end exits before `stop`.
    public func watch(_ died: @escaping @Sendable (String) -> Void) {
        Thread.detachNewThread { [self] in
            waitForExit()
            lock.lock()
            let purposeful = stoppedOnPurpose
            lock.unlock()
            if !purposeful {
                let how = process.terminationReason == .uncaughtSignal
                    ? "was killed by signal \(process.terminationStatus)" : "exited with status \(process.terminationStatus)"
                died("\(role) (\(product)) \(how) while the guest ran; the guest was stopped")
            }
        }
    }

    func waitForExit() {
        while process.isRunning { usleep(50_000) }
    }

    public func stop() {
        lock.lock()
        stoppedOnPurpose = true
        lock.unlock()
        if process.isRunning {
            process.terminate()
            waitForExit()
        }
        ChildRegistry.remove(pid: process.processIdentifier)
        try? FileManager.default.removeItem(atPath: directory)
    }
}
