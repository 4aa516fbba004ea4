// The vsock back-end `toro run -p` starts beside QEMU: `toro-vsock`, the project's
// vhost-user server for QEMU's vhost-user-vsock-device (this host has no
// /dev/vhost-vsock), which also listens on 127.0.0.1:HOSTPORT for each `-p` and bridges
// every TCP connection to the guest port.
//
// Life cycle: built with the host tool, started before QEMU (QEMU connects to its
// socket at start-up), stopped after QEMU. If it dies while the guest runs, toro stops
// QEMU too and reports it in one line (status 125): no process is left behind.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class VsockBackend: @unchecked Sendable {
    public static let guestCID = 3

    public let directory: String
    public var socketPath: String { directory + "/vhost-user.sock" }
    /// The hybrid Unix socket (Firecracker's convention): `CONNECT <port>\n`.
    public var hybridPath: String { directory + "/vsock.sock" }
    let process = Process()
    private let lock = NSLock()
    private var stoppedOnPurpose = false

    init(directory: String) { self.directory = directory }

    /// The arguments toro-vsock gets for `ports`.
    public static func arguments(socket: String, hybrid: String, ports: [PortForward]) -> [String] {
        ["--socket", socket, "--uds", hybrid, "--cid", "\(guestCID)"]
            + ports.flatMap { ["--forward", "\($0.host):\($0.guest)"] }
    }

    /// Builds toro-vsock when needed and returns its path.
    static func executable(paths: Paths) throws(ToolFailure) -> String {
        let path = paths.root + "/.build/debug/toro-vsock"
        // `toro test` builds it once up front; a build here would wait on the running
        // `swift test`'s lock on .build.
        if KernelBuilder.skipBuild {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw ToolFailure(.buildFailed, "TORO_NO_BUILD is set but \(path) does not exist; run swift build --product toro-vsock")
            }
            return path
        }
        Console.progress("building the vsock back-end (toro-vsock)…")
        var build = Subprocess(["swift", "build", "--product", "toro-vsock"])
        build.directory = paths.root
        build.mergeStderr = true
        let result = build.run()
        guard result.exitCode == 0 else {
            throw ToolFailure(.buildFailed, "building toro-vsock failed: " + (result.output.split(separator: "\n").last.map(String.init) ?? ""))
        }
        return path
    }

    /// Starts the back-end and waits (up to 10 s) for its vhost-user socket to appear.
    public static func start(paths: Paths, ports: [PortForward]) throws(ToolFailure) -> VsockBackend {
        let binary = try executable(paths: paths)
        let directory = NSTemporaryDirectory() + "toro-vsock-\(getpid())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let backend = VsockBackend(directory: directory)
        backend.process.executableURL = URL(fileURLWithPath: binary)
        backend.process.arguments = arguments(socket: backend.socketPath, hybrid: backend.hybridPath, ports: ports)
        do {
            try backend.process.run()
        } catch {
            throw ToolFailure(.qemuFailed, "could not start toro-vsock: \(error)")
        }
        ChildRegistry.add(pid: backend.process.processIdentifier, group: false)
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: backend.socketPath) {
            guard backend.process.isRunning, Date() < deadline else {
                backend.stop()
                throw ToolFailure(.qemuFailed, "toro-vsock did not open its socket \(backend.socketPath)")
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
                died("the vsock back-end (toro-vsock) \(how) while the guest ran; the guest was stopped")
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
