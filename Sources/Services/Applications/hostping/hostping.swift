// `hostping`: the guest connects out. It opens a stream to the host (vsock CID 2) on
// port `port=N` (default 1234), sends `ping from Toro\n`, prints the line the host answers
// and exits 0; a refused connection or a closed stream is reported and exits 1.
import Core
import SocketServer
import Wire

@_silgen_name("toro_service")
public func service() -> Service {
    Service(name: "hostping",
            summary: "connects out to the host over vsock (CID 2, -- port=N) and prints its answer",
            devices: [.sockets]) { HostPing.run($0) }
}

enum HostPing {
    static func run(_ context: ServiceContext) -> ExitStatus {
        guard let sockets = context.sockets else {
            Log.write("hostping: no socket device\n")
            return .serviceFailed
        }
        // A value that is not a port number falls back to the default, as it always has.
        let port = (try? context.commandLine.number("port", maximum: Int(UInt32.max))).map { UInt32($0) } ?? 1234
        context.ready()
        let stream: any StreamSocket
        do {
            stream = try sockets.connect(cid: 2, port: port)
        } catch {
            Log.write(error == .connectionRefused ? "hostping: connection refused\n" : "hostping: connect failed\n")
            return .serviceFailed
        }
        defer { stream.close() }
        do {
            try stream.writeAll("ping from Toro\n")
            var reader = LineReader(maximumLength: 256)
            switch try reader.next(from: stream) {
            case .line(let line):
                Log.write("hostping: host answered: ")
                for byte in line where byte >= 32 && byte < 127 { Log.put(byte) }
                Log.put(10)
                return .success
            case .tooLong, .end:
                Log.write("hostping: no answer line\n")
                return .serviceFailed
            }
        } catch {
            Log.write("hostping: the stream failed\n")
            return .serviceFailed
        }
    }
}
