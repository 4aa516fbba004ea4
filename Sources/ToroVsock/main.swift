// toro-vsock: the host side of Toro's virtio-vsock (virtio 1.2 §5.10) as a vhost-user
// back-end (QEMU docs/interop/vhost-user.rst), with Firecracker-style hybrid Unix sockets
// (docs/vsock.md) and TCP port forwarding. See VsockOptions.usage.
import VhostUser

var options = VsockOptions.fromCommandLine()
BackendLog.verbose = options.verbose
// One descriptor per connection, plus a reserve for the listeners, QEMU's socket, its
// eventfds and memory-table descriptors: the cap is lowered to fit a low hard `ulimit -n`
// (silently for the default, with a line for a cap given on the command line).
let reserve = 64
let available = Posix.raiseDescriptorLimit(to: options.maxConnections + reserve)
if available < options.maxConnections + reserve {
    let fitted = max(1, available - reserve)
    if options.maxConnections != VsockDevice.defaultMaxConnections {
        BackendLog.line("ulimit -n is \(available): serving at most \(fitted) connections "
                        + "(raise the hard limit for --max-connections \(options.maxConnections))")
    }
    options.maxConnections = fitted
}
VsockServer.serve { () throws(SystemError) in try VsockServer(options: options) }
