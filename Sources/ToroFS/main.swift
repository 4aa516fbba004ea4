// toro-fs: the host side of Toro's virtio-fs (virtio 1.2 §5.11) as a vhost-user back-end
// for QEMU's vhost-user-fs-device (docs/interop/vhost-user.rst), serving one host folder
// over FUSE 7.31, confined to it. See FSOptions.usage.
import Glibc
import VhostUser

BackendLog.prefix = "toro-fs: "
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.contains("--help") || arguments.contains("-h") {
    print(FSOptions.usage)
    exit(0)
}
let options: FSOptions
do {
    options = try FSOptions.parse(arguments)
} catch {
    BackendLog.line("\(error)")
    exit(64)
}
if let problem = options.shareProblem() {
    BackendLog.line(problem)
    exit(66)
}
BackendLog.verbose = options.debug
FSServer.installSignalHandlers()
let status: Int32
do {
    let server = try FSServer(options: options)
    status = server.run()
} catch {
    BackendLog.line("\(error)")
    status = 1
}
exit(status)
