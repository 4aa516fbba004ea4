// A scripted StreamSocket for the socket-API tests (LineReader). (StaticWebTests keeps its
// own `ScriptedSocket`.)
@testable import Core
import Wire
import SocketServer

func bytes(_ text: StaticString) -> [UInt8] {
    text.withUTF8Buffer { Array($0) }
}

/// A StreamSocket that hands out scripted chunks, then end of stream (or an error), and
/// records what is written, taking at most `writeLimit` bytes per call.
final class ScriptedStream: StreamSocket {
    var chunks: [[UInt8]]
    var failure: SocketError?
    var written: [UInt8] = []
    var writeLimit: Int
    var reads = 0
    var closed = false

    init(_ chunks: [[UInt8]], failure: SocketError? = nil, writeLimit: Int = .max) {
        self.chunks = chunks
        self.failure = failure
        self.writeLimit = writeLimit
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SocketError) -> Int {
        reads += 1
        guard !chunks.isEmpty else {
            if let failure { throw failure }
            return 0
        }
        var chunk = chunks.removeFirst()
        let count = min(chunk.count, buffer.count)
        for i in 0 ..< count { buffer[i] = chunk[i] }
        chunk.removeFirst(count)
        if !chunk.isEmpty { chunks.insert(chunk, at: 0) }
        return count
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(SocketError) -> Int {
        if closed { throw .closed }
        let count = min(bytes.count, writeLimit)
        written += bytes[0 ..< count]
        return count
    }

    func close() { closed = true }
}
