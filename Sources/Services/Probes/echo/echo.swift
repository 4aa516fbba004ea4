// `echo`: the network probe. It listens on a socket port (7, the echo protocol's, unless
// `port=N`) and sends every byte of each connection back, in order, until the peer ends its
// stream; then it closes the connection. Connections are served at once, one thread each,
// under the connection limits every socket service has (ConnectionServer.swift:
// `max-conns=`, `backlog=`, `idle-timeout=`). After `ready: echo` it prints
// `echo: listening on N`.
//
// `connections=N` (1...1,000,000; for tests): after N connections have been accepted and
// each has finished, the service exits with status 0. Without it, echo serves until the
// socket device fails.
//
// The boot tests drive it on both platforms: microvm moves 1 MiB each way through `-p`
// (virtio-vsock), legacy moves 16 MiB each way over a lossy link to a Linux client in a
// network namespace (Toro's own TCP/IP on virtio-net).
//
// Memory: each connection's buffer (16 KiB) is admitted against MemoryBudget before it is
// allocated; a connection the budget refuses is closed at once.
import Core
import SocketServer

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "echo",
            summary: "echoes each connection's bytes back on port 7 (port=N) until its end of stream; connections=N exits after N",
            devices: [.sockets]) { Echo.run($0) }
}

enum Echo {
    static let bufferSize = 16384

    static func run(_ context: ServiceContext) -> ExitStatus {
        let connections: Int?
        do throws(KernelArgumentError) {
            connections = try context.commandLine.number("connections", minimum: 1, maximum: 1_000_000)
        } catch {
            Log.write("echo: ")
            error.describe()
            Log.put(10)
            return .badCommandLine
        }
        guard let sockets = context.sockets else {
            Log.write("echo: no socket device (on microvm, start with -p HOSTPORT:7)\n")
            return .serviceFailed
        }
        return ConnectionServer.run(context, sockets: sockets, name: "echo", defaultPort: 7, connections: connections,
                                    listening: { port in
                                        Log.write("echo: listening on ")
                                        Log.decimal(UInt64(port))
                                        Log.put(10)
                                    },
                                    idle: {}, serve: { serve($0) })
    }

    /// Echoes `client` until its end of stream (or an error), then closes it.
    static func serve(_ client: any StreamSocket) {
        defer { client.close() }
        guard MemoryBudget.admit(bufferSize, for: "an echo buffer") else { return }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count: Int
            do throws(SocketError) {
                count = try client.read(into: buffer)
            } catch {
                return
            }
            guard count > 0, count <= buffer.count else { return }
            do throws(SocketError) {
                try client.writeAll(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            } catch {
                return
            }
        }
    }
}
