// toro-fs: the host side of Toro's virtio-fs (virtio 1.2 §5.11) as a vhost-user back-end
// for QEMU's vhost-user-fs-device (docs/interop/vhost-user.rst), serving one host folder
// over FUSE 7.31, confined to it. See FSOptions.usage.
import Glibc
import VhostUser

BackendLog.prefix = "toro-fs: "
let options = FSOptions.fromCommandLine()
if let problem = options.shareProblem() {
    BackendLog.line(problem)
    exit(66)
}
BackendLog.verbose = options.debug
FSServer.serve { () throws(SystemError) in try FSServer(options: options) }
