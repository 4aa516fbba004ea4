// `LineReader` (Wire) reading from a kernel socket: what kv and hostping call.
import Core
import Wire

extension LineReader {
    /// Reads from `socket` until there is an event to report.
    public mutating func next(from socket: any StreamSocket) throws(SocketError) -> LineEvent {
        while true {
            if let event = nextEvent() { return event }
            // Array's closure-taking accessors throw untyped errors: carry ours out by hand.
            var failure: SocketError?
            let count = chunk.withUnsafeMutableBytes { raw -> Int in
                do throws(SocketError) { return try socket.read(into: raw) } catch { failure = error; return 0 }
            }
            if let failure { throw failure }
            guard count > 0 else {
                finish()
                continue
            }
            let data = chunk
            data.withUnsafeBytes { raw in append(UnsafeRawBufferPointer(rebasing: raw[0 ..< min(count, raw.count)])) }
        }
    }
}
