// The vsock back-end `toro run -p` starts beside QEMU: `toro-vsock`, the project's
// vhost-user server for QEMU's vhost-user-vsock-device (this host has no
// /dev/vhost-vsock), which also listens on 127.0.0.1:HOSTPORT for each `-p` and bridges
// every TCP connection to the guest port. Life cycle: HostBackend.swift.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum VsockBackend {
    public static let guestCID = 3
    public static let product = "toro-vsock"
    public static let role = "the vsock back-end"

    /// The arguments toro-vsock gets for `ports`.
    public static func arguments(socket: String, hybrid: String, ports: [PortForward]) -> [String] {
        ["--socket", socket, "--uds", hybrid, "--cid", "\(guestCID)"]
            + ports.flatMap { ["--forward", "\($0.host):\($0.guest)"] }
    }

    /// Builds toro-vsock when needed and returns its path.
    static func executable(paths: Paths) throws(ToolFailure) -> String {
        try HostBackend.executable(product, role: role, paths: paths)
    }

    /// Starts toro-vsock for `ports`: its vhost-user socket and the hybrid socket
    /// (Firecracker's convention, `CONNECT <port>\n`) live in `toro-vsock-<pid>`.
    public static func start(paths: Paths, ports: [PortForward]) throws(ToolFailure) -> HostBackend {
        let directory = NSTemporaryDirectory() + "toro-vsock-\(getpid())"
        let socket = directory + "/vhost-user.sock"
        return try HostBackend.start(product, role: role, paths: paths, directory: directory, socketPath: socket,
                                     arguments: arguments(socket: socket, hybrid: directory + "/vsock.sock", ports: ports))
    }
}
