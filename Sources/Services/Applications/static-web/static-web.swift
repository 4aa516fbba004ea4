// `static-web`: serves the shared folder over HTTP/1.1 on a socket port (80 unless
// `port=N`): `./toro run --service static-web --share ./site -p 8080:80`, then
// `curl http://127.0.0.1:8080/`. The protocol is StaticFileHandler's (tested on the
// host); this file only wires it to the platform.
//
// One thread per connection, all on CPU 0 with the socket device (ConnectionServer.swift),
// each with its own 64 KiB buffer; the file system is called directly (every call names a path or a
// handle, so no per-thread VFS is needed; the back-end serialises its own calls).
// When the last client has gone, a thread of its own logs
//   static-web: idle, heap in use B bytes in N allocations, R requests
// (also once at start): the boot test compares those figures to prove nothing leaks.
// Without `--share` or without `-p`, one line names the missing flag and the service fails.
import Core
import SocketServer
import StaticFiles

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "static-web",
            summary: "serves the shared folder over HTTP/1.1; microvm with --share DIR -p HOSTPORT:80",
            devices: [.sockets, .files]) { StaticWeb.run($0) }
}

final class StaticWebShared {
    var requests = 0

    func logHeap() {
        KernelMemory.drainRemoteFrees()
        Kernel.logHeap("static-web: idle, heap", KernelMemory.statistics())
        Log.write(", ")
        Log.decimal(requests)
        Log.write(" requests\n")
    }
}

enum StaticWeb {
    static func run(_ context: ServiceContext) -> ExitStatus {
        let sockets = context.sockets
        let fileSystem = context.fileSystem
        guard let sockets, let fileSystem else {
            if sockets == nil && fileSystem == nil {
                Log.write("static-web: no shared folder and no socket device (on microvm, start with --share DIR -p HOSTPORT:80)\n")
            } else if fileSystem == nil {
                Log.write("static-web: no shared folder (on microvm, start with --share DIR)\n")
            } else {
                Log.write("static-web: no socket device (on microvm, start with -p HOSTPORT:80)\n")
            }
            return .serviceFailed
        }
        let shared = StaticWebShared()
        let handler = StaticFileHandler(fileSystem: fileSystem)
        return ConnectionServer.run(context, sockets: sockets, name: "static-web", idle: { shared.logHeap() }) { client in
            shared.requests += handler.serve(client)
        }
    }
}
