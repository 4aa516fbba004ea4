// toro-fs: the host side of Toro's virtio-fs (virtio 1.2 §5.11) as a vhost-user back-end
// for QEMU's vhost-user-fs-device (docs/interop/vhost-user.rst), serving one host folder
// over FUSE 7.31, confined to it. See FSOptions.usage.
import Glibc
import VhostUser

BackendLog.prefix = "toro-fs: "
var options = FSOptions.fromCommandLine()
if let problem = options.shareProblem() {
    BackendLog.line(problem)
    exit(66)
}
BackendLog.verbose = options.debug
// The caps are what one guest may hold; the process needs them plus a reserve. The
// defaults fit themselves silently; caps given on the command line say when they cannot.
let wanted = options.limits.maxNodes + options.limits.maxHandles + FUSEServerLimits.reserve
let available = Posix.raiseDescriptorLimit(to: wanted)
let fitted = options.limits.fitted(descriptorLimit: available)
if fitted != options.limits {
    if options.limits != FUSEServerLimits() {
        BackendLog.line("ulimit -n is \(available): serving at most \(fitted.maxNodes) nodes and \(fitted.maxHandles) handles "
                        + "(raise the hard limit for --max-nodes \(options.limits.maxNodes) --max-handles \(options.limits.maxHandles))")
    }
    options.limits = fitted
}
FSServer.serve { () throws(SystemError) in try FSServer(options: options) }
