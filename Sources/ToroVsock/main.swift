// toro-vsock: the host side of Toro's virtio-vsock (virtio 1.2 §5.10) as a vhost-user
// back-end (QEMU docs/interop/vhost-user.rst), with Firecracker-style hybrid Unix sockets
// (docs/vsock.md) and TCP port forwarding. See VsockOptions.usage.
import VhostUser

let options = VsockOptions.fromCommandLine()
BackendLog.verbose = options.verbose
VsockServer.serve { () throws(SystemError) in try VsockServer(options: options) }
