// toro-vsock: the host side of Toro's virtio-vsock (virtio 1.2 §5.10) as a vhost-user
// back-end (QEMU docs/interop/vhost-user.rst), with Firecracker-style hybrid Unix sockets
// (docs/vsock.md) and TCP port forwarding. See VsockOptions.usage.
import Glibc
import VhostUser

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.contains("--help") || arguments.contains("-h") {
    print(VsockOptions.usage)
    exit(0)
}
let options: VsockOptions
do {
    options = try VsockOptions.parse(arguments)
} catch {
    BackendLog.line("\(error)")
    exit(64)
}
BackendLog.verbose = options.verbose
VsockServer.installSignalHandlers()
let status: Int32
do {
    let server = try VsockServer(options: options)
    status = server.run()
} catch {
    BackendLog.line("\(error)")
    status = 1
}
exit(status)
