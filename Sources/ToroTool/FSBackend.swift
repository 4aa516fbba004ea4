// The virtio-fs back-end `toro run --share DIR[:ro]` starts beside QEMU: `toro-fs`, the
// project's vhost-user server for QEMU's vhost-user-fs-device, confined to DIR (it refuses
// symlinks that lead out of it; with `--read-only` every change is refused).
//
// Life cycle: HostBackend.swift.
// Its socket lives in a folder of its own, `toro-fs-<pid of toro>/fs.sock` under the
// temporary folder; the boot tests find the process by that path in /proc/*/cmdline.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum FSBackend {
    public static let product = "toro-fs"
    public static let role = "the virtio-fs back-end"

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
        try HostBackend.executable(product, role: role, paths: paths)
    }

    /// Starts the back-end for `share` and waits (up to 10 s) for its vhost-user socket.
    public static func start(paths: Paths, share: SharedFolder) throws(ToolFailure) -> HostBackend {
        let directory = directory(forRun: getpid())
        let socket = directory + "/fs.sock"
        return try HostBackend.start(product, role: role, paths: paths, directory: directory, socketPath: socket,
                                     arguments: arguments(socket: socket, share: share))
    }
}
