// toro-vsock: the host side of Toro's virtio-vsock (virtio 1.2 §5.10) as a vhost-user
// back-end (QEMU docs/interop/vhost-user.rst), with Firecracker-style hybrid Unix sockets
// (docs/vsock.md) and TCP port forwarding. See VsockOptions.usage.
import VhostUser

let options = VsockOptions.fromCommandLine()
BackendLog.verbose = options.verbose
// One descriptor per connection, plus listeners, QEMU's socket and eventfds.
let available = Posix.raiseDescriptorLimit(to: options.maxConnections + 64)
if available < options.maxConnections + 64 {
    BackendLog.line("ulimit -n is \(available), below --max-connections \(options.maxConnections) + 64: "
                    + "past it clients wait while accepting pauses")
}
VsockServer.serve { () throws(SystemError) in try VsockServer(options: options) }
