// What the socket services (kv, static-web, echo) share: listen on the port `port=N` names
// (80 unless the service gives another default) with the connection limits of `max-conns=`, `backlog=` and `idle-timeout=`
// (Core/Network/ConnectionLimits.swift: defaults from memory, a newcomer beyond them is
// reset at once, silent clients are closed), accept forever, one thread per connection on CPU 0 (where the socket
// device's driver runs; the scheduler is cooperative, so state shared by those threads
// needs no lock), and an idle report whenever the last client has gone (also once before
// the first): the boot tests compare those heap figures to prove a connection leaks nothing.
//
// With `connections: N` (echo's `connections=N`, for tests) the server accepts N
// connections, waits until each has finished, and returns success; without it, it serves
// until the socket device fails.
//
// Rules for callers: `serve` owns the socket and closes it; `idle` runs on a thread of its
// own, after the finished connection's thread has ended and released what it held;
// `listening` runs once, right after `ready: <service>`, with the port.
import Core

public enum ConnectionServer {
    /// Serves until the socket device fails; returns the service's status. `name` prefixes
    /// the log lines ("kv: cannot listen on port 80").
    public static func run(_ context: ServiceContext, sockets: any SocketProvider, name: StaticString,
                           defaultPort: UInt32 = 80, connections: Int? = nil, listening: (UInt32) -> Void = { _ in },
                           idle: @escaping () -> Void, serve: @escaping (any StreamSocket) -> Void) -> ExitStatus {
        let port: UInt32
        let limits: ConnectionLimits
        do throws(KernelArgumentError) {
            port = UInt32(try context.commandLine.number("port", minimum: 1, maximum: Int(UInt32.max)) ?? Int(defaultPort))
            limits = try ConnectionLimits(commandLine: context.commandLine)
        } catch {
            Log.write(name)
            Log.write(": ")
            error.describe()
            Log.put(10)
            return .badCommandLine
        }
        let listener: any Listener
        do {
            listener = try sockets.listen(port: port, limits: limits)
        } catch {
            Log.write(name)
            Log.write(": cannot listen on port ")
            Log.decimal(UInt64(port))
            Log.put(10)
            return .serviceFailed
        }
        let clients = Counter()
        Scheduler.spawn(on: 0) { idle() }
        context.ready()
        listening(port)
        var handles: [ThreadHandle] = []          // kept only with `connections`
        var accepted = 0
        while true {
            if let connections, accepted >= connections {
                listener.close()
                for handle in handles { handle.join() }
                return .success
            }
            let client: any StreamSocket
            do {
                client = try listener.accept()
            } catch {
                Log.timestamp()
                Log.write(name)
                Log.write(": the socket device failed; the service stops\n")
                return .serviceFailed
            }
            clients.value += 1
            accepted += 1
            let started = Scheduler.spawn(on: 0) {
                serve(client)
                clients.value -= 1
                if clients.value == 0 { Scheduler.spawn(on: 0) { idle() } }
            }
            if let started {
                if connections != nil { handles.append(started) }
            } else {
                client.close()
                clients.value -= 1
            }
        }
    }

    final class Counter {
        var value = 0
    }
}
